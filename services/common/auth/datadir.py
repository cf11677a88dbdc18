"""The credentials `vpctl up` (and `vpctl credentials init`) keep under a data
dir, and how clients find them with no flags.

    <data dir>/tls/ca.pem, ca.key                 the local CA (ca.key stays here)
    <data dir>/tls/server.pem, server.key         every listener (localhost, 127.0.0.1, extra hosts)
    <data dir>/tls/<identity>.pem, <identity>.key client certificates, SPIFFE URI SAN:
        client    spiffe://vp/client/local
        operator  spiffe://vp/operator/local
        dispatcher spiffe://vp/service/dispatcher
        worker-<vp_id> spiffe://vp/worker/<vp_id>
    <data dir>/auth/tokens.json                   principals and token SHA-256 hashes only
    <data dir>/auth/<identity>.token              the plain tokens of client and operator (0600)

Created on first run, kept afterwards: restarting keeps every credential."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.auth import certs
from services.common.auth.principals import Principal, Role
from services.common.auth.tokens import TokenEntry, TokenStore, new_token, token_hash, write_secret, write_store
from services.common.cli_config import env_bool
from services.common.security import INSECURE_CHANNEL, ChannelSecurity

log = logging.getLogger("vp.security")

DEFAULT_DATA_DIR = ".vp"
DEFAULT_HOSTS = ("localhost", "127.0.0.1")
LOCAL = "local"
TOKEN_IDENTITIES = {"client": Principal(LOCAL, Role.CLIENT), "operator": Principal(LOCAL, Role.OPERATOR)}


def worker_identity(vp_id: str) -> str:
    return f"worker-{vp_id}"


def _principal_of(identity: str) -> Principal:
    if identity in TOKEN_IDENTITIES:
        return TOKEN_IDENTITIES[identity]
    if identity == "dispatcher":
        return Principal("dispatcher", Role.SERVICE)
    if identity.startswith("worker-"):
        vp_id = identity.removeprefix("worker-")
        return Principal(vp_id, Role.WORKER, frozenset({vp_id}))
    raise ValueError(f"unknown identity {identity!r}")


@dataclass(frozen=True)
class Credentials:
    root: Path

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def auth(self) -> Path:
        return self.root / "auth"

    @property
    def ca(self) -> Path:
        return self.tls / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.tls / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.tls / "server.key"

    @property
    def tokens_file(self) -> Path:
        return self.auth / "tokens.json"

    def cert(self, identity: str) -> Path:
        return self.tls / f"{identity}.pem"

    def key(self, identity: str) -> Path:
        return self.tls / f"{identity}.key"

    def token(self, identity: str) -> Path:
        return self.auth / f"{identity}.token"

    def exists(self) -> bool:
        return self.ca.is_file()

    def ensure(self, *, lanes: Iterable[str] = (), hosts: Iterable[str] = ()) -> bool:
        """Create whatever is missing; True when anything was created."""
        created = False
        self.tls.mkdir(parents=True, exist_ok=True)
        os.chmod(self.tls, 0o700)
        if not self.ca.is_file():
            ca = certs.create_ca()
            write_secret(self.tls / "ca.key", ca.key_pem.decode())
            self.ca.write_bytes(ca.cert_pem)
            created = True
        ca = certs.Issued(self.ca.read_bytes(), (self.tls / "ca.key").read_bytes())
        if not self.server_cert.is_file():
            issued = certs.issue(ca, "vp-server", hosts=tuple(dict.fromkeys([*DEFAULT_HOSTS, *hosts])), server=True)
            write_secret(self.server_key, issued.key_pem.decode())
            self.server_cert.write_bytes(issued.cert_pem)
            created = True
        identities = ["client", "operator", "dispatcher", *(worker_identity(v) for v in lanes)]
        for identity in identities:
            if not self.cert(identity).is_file():
                principal = _principal_of(identity)
                issued = certs.issue(ca, identity, uris=(principal.spiffe_id,), client=True)
                write_secret(self.key(identity), issued.key_pem.decode())
                self.cert(identity).write_bytes(issued.cert_pem)
                created = True
        if not self.tokens_file.is_file() or any(not self.token(i).is_file() for i in TOKEN_IDENTITIES):
            entries = []
            for identity, principal in TOKEN_IDENTITIES.items():
                token = new_token()
                write_secret(self.token(identity), token + "\n")
                entries.append(TokenEntry(principal, token_hash(token)))
            write_store(self.tokens_file, entries)
            created = True
        return created

    def channel_security(self, identity: str = "client") -> ChannelSecurity:
        token = self.token(identity)
        return ChannelSecurity.from_files(ca=str(self.ca), cert=str(self.cert(identity)), key=str(self.key(identity)),
                                          token_file=str(token) if token.is_file() else None)

    def server_args(self, *, require_client_cert: bool = True) -> list[str]:
        args = ["--tls-cert", str(self.server_cert), "--tls-key", str(self.server_key), "--tls-ca", str(self.ca),
                "--tokens-file", str(self.tokens_file)]
        return args + (["--tls-require-client-cert"] if require_client_cert else [])

    def channel_args(self, identity: str) -> list[str]:
        args = ["--tls-ca", str(self.ca), "--tls-client-cert", str(self.cert(identity)),
                "--tls-client-key", str(self.key(identity))]
        return args

    def load_tokens(self) -> TokenStore:
        return TokenStore.load(self.tokens_file)


def resolve_client_security(identity: str = "client", *, data_dir: str | Path | None = None,
                            env: Mapping[str, str] | None = None) -> ChannelSecurity:
    """What a client with no explicit settings uses: VP_INSECURE=1 -> plaintext; VP_TLS_CA
    (+ VP_TLS_CLIENT_CERT/KEY, VP_TOKEN_FILE) -> those files; otherwise the data dir
    (argument, VP_DATA_DIR, or .vp) when it holds credentials; otherwise plaintext with
    nothing to send (a secure server then refuses the connection)."""
    env = os.environ if env is None else env
    if env_bool(env.get("VP_INSECURE", "")):
        return INSECURE_CHANNEL
    if env.get("VP_TLS_CA"):
        return ChannelSecurity.from_files(ca=env["VP_TLS_CA"], cert=env.get("VP_TLS_CLIENT_CERT"),
                                          key=env.get("VP_TLS_CLIENT_KEY"), token_file=env.get("VP_TOKEN_FILE"))
    credentials = Credentials(Path(data_dir or env.get("VP_DATA_DIR") or DEFAULT_DATA_DIR))
    if credentials.exists():
        return credentials.channel_security(identity)
    log.debug("no credentials found (VP_TLS_CA unset, none under %s): plaintext", credentials.root)
    return INSECURE_CHANNEL
