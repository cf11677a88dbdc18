"""Credentials for tests: one local CA per test run (the same code `vpctl up`
uses), certificates and tokens for any principal, and the channel and flag sets
that go with them.

Helpers that start servers (stack.running_stack, e2e.E2EStack) are secure by
default: TLS, mTLS identities, bearer tokens. Pass secure=False for an explicitly
insecure stack (plaintext, no authentication)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from services.common.auth.datadir import Credentials, worker_identity
from services.common.auth.principals import Principal, Role
from services.common.auth.tokens import TokenEntry, TokenStore, new_token, token_hash
from services.common.security import INSECURE_CHANNEL, ChannelSecurity, ServerSecurity


@dataclass
class Pki:
    credentials: Credentials

    def identity(self, identity: str) -> str:
        """Make sure identity ("client", "operator", "dispatcher", "worker-<vp_id>") has a certificate."""
        if identity.startswith("worker-"):
            self.credentials.ensure(lanes=[identity.removeprefix("worker-")])
        return identity

    def worker(self, vp_id: str) -> str:
        return self.identity(worker_identity(vp_id))

    def channel_security(self, identity: str, *, token: str | None = None) -> ChannelSecurity:
        """mTLS as identity; with token, the bearer token (which then names the caller)."""
        self.identity(identity)
        c = self.credentials
        return ChannelSecurity(ca_pem=c.ca.read_bytes(), cert_pem=c.cert(identity).read_bytes(),
                               key_pem=c.key(identity).read_bytes(), token=token)

    def token_only(self, token: str | None) -> ChannelSecurity:
        """TLS that verifies the server, no client certificate: the token alone names the caller."""
        return ChannelSecurity(ca_pem=self.credentials.ca.read_bytes(), token=token)

    def server_security(self, tokens: TokenStore | None = None, *, require_client_cert: bool = True
                        ) -> ServerSecurity:
        c = self.credentials
        return ServerSecurity(cert_pem=c.server_cert.read_bytes(), key_pem=c.server_key.read_bytes(),
                              client_ca_pem=c.ca.read_bytes(), require_client_cert=require_client_cert,
                              tokens=tokens if tokens is not None else c.load_tokens())

    def server_args(self, *, require_client_cert: bool = True) -> list[str]:
        return self.credentials.server_args(require_client_cert=require_client_cert)

    def channel_args(self, identity: str) -> list[str]:
        return self.credentials.channel_args(self.identity(identity))

    def client_env(self, identity: str = "client") -> dict[str, str]:
        """Environment a client process (vpctl, vp-mcp) resolves its credentials from."""
        c = self.credentials
        self.identity(identity)
        return {"VP_TLS_CA": str(c.ca), "VP_TLS_CLIENT_CERT": str(c.cert(identity)),
                "VP_TLS_CLIENT_KEY": str(c.key(identity))}


@functools.cache
def shared_pki() -> Pki:
    root = Path(tempfile.mkdtemp(prefix="vp-test-pki-"))
    atexit.register(shutil.rmtree, root, True)
    credentials = Credentials(root)
    credentials.ensure(lanes=["vp.coder.primary", "vp.general.primary"])
    return Pki(credentials)


def mint_tokens(principals: dict[str, Principal]) -> tuple[TokenStore, dict[str, str]]:
    """A token store for the given principals and their plain tokens, by key."""
    tokens = {key: new_token() for key in principals}
    store = TokenStore([TokenEntry(principals[key], token_hash(tokens[key])) for key in principals])
    return store, tokens


def principal(role: Role, name: str, *vp_ids: str) -> Principal:
    return Principal(name, role, frozenset(vp_ids))


def channel_for(pki: Pki | None, identity: str) -> ChannelSecurity:
    return INSECURE_CHANNEL if pki is None else pki.channel_security(identity)
