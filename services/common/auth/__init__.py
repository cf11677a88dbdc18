"""Who is calling, and what they may do.

principals.py  roles and principals, SPIFFE-style identities in certificates
tokens.py      bearer tokens: a credentials file that stores only SHA-256 hashes
certs.py       a local CA and the certificates it issues (the `cryptography` package)
policy.py      the authorization matrix, as data (specs/trust-boundary-v1.md renders it)
gate.py        the Gate the edge interceptor asks on every call
"""
