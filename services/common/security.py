"""TLS and credentials for every listener and every channel, from flags with
environment equivalents.

Secure by default: a service refuses to start without a certificate and key
unless it is given --insecure (env VP_INSECURE=1), which means plaintext and no
authentication and logs a warning at start.

Server side   --tls-cert/--tls-key (VP_TLS_CERT/VP_TLS_KEY) the server certificate;
              --tls-ca (VP_TLS_CA) the CA client certificates must chain to;
              --tls-require-client-cert (VP_TLS_REQUIRE_CLIENT_CERT) mTLS: every
              caller presents a certificate, its SPIFFE URI SAN names the principal;
              --tokens-file (VP_TOKENS_FILE) the hashes-only bearer-token file.
Channel side  --tls-ca (VP_TLS_CA) the CA the server certificate must chain to;
              --tls-client-cert/--tls-client-key (VP_TLS_CLIENT_CERT/KEY) mTLS identity;
              --token-file (VP_TOKEN_FILE) a file holding this process's bearer token.

Clients (vpctl, the Python client, vp-mcp) resolve the same variables and
otherwise the credentials `vpctl up` wrote under the data dir (datadir.py)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from services.common.auth.gate import AuthGate, OwnerLookup
from services.common.auth.tokens import TokenStore
from services.common.cli_config import env_bool

log = logging.getLogger("vp.security")

INSECURE_WARNING = ("running with --insecure: plaintext gRPC and NO authentication; anyone who can reach the port "
                    "can act as any caller. Use only for local experiments.")


def _read(path: str | None, what: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class ServerSecurity:
    insecure: bool = False
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    client_ca_pem: bytes | None = None
    require_client_cert: bool = False
    tokens: TokenStore | None = None

    def credentials(self) -> grpc.ServerCredentials | None:
        if self.insecure:
            return None
        return grpc.ssl_server_credentials([(self.key_pem, self.cert_pem)], root_certificates=self.client_ca_pem,
                                           require_client_auth=self.require_client_cert)

    def gate(self, owner_of: OwnerLookup | None = None) -> AuthGate | None:
        return None if self.insecure else AuthGate(self.tokens, owner_of=owner_of)


INSECURE_SERVER = ServerSecurity(insecure=True)


@dataclass(frozen=True)
class ChannelSecurity:
    insecure: bool = False
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    token: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        transport = grpc.ssl_channel_credentials(self.ca_pem, self.key_pem, self.cert_pem)
        if self.token:
            return grpc.composite_channel_credentials(transport, grpc.access_token_call_credentials(self.token))
        return transport

    def aio_channel(self, address: str, options: Sequence[tuple[str, object]] = ()) -> grpc.aio.Channel:
        if self.insecure:
            return grpc.aio.insecure_channel(address, options=list(options))
        return grpc.aio.secure_channel(address, self.credentials(), options=list(options))

    def channel(self, address: str, options: Sequence[tuple[str, object]] = ()) -> grpc.Channel:
        if self.insecure:
            return grpc.insecure_channel(address, options=list(options))
        return grpc.secure_channel(address, self.credentials(), options=list(options))

    @classmethod
    def from_files(cls, *, ca: str | None, cert: str | None = None, key: str | None = None,
                   token_file: str | None = None) -> "ChannelSecurity":
        if not ca:
            raise ValueError("TLS needs the CA certificate (--tls-ca / VP_TLS_CA)")
        if bool(cert) != bool(key):
            raise ValueError("a client certificate needs its key and the other way round "
                             "(--tls-client-cert / --tls-client-key)")
        token = _read(token_file, "token file")
        return cls(ca_pem=_read(ca, "CA certificate"), cert_pem=_read(cert, "client certificate"),
                   key_pem=_read(key, "client key"), token=token.decode().strip() if token else None)


INSECURE_CHANNEL = ChannelSecurity(insecure=True)


def _flag(parser, *flags: str, env: str, help: str) -> None:  # noqa: A002
    parser.add_env_argument(*flags, env=env, default=None, help=help)


def _insecure_flag(parser) -> None:
    if "VP_INSECURE" in getattr(parser, "env_vars", {}):
        return
    raw = os.environ.get("VP_INSECURE", "")
    try:
        default = env_bool(raw)
    except ValueError as exc:
        parser.error(f"environment variable VP_INSECURE={raw!r} is invalid: {exc}")
    parser.env_vars["VP_INSECURE"] = "plaintext, no authentication"
    parser.add_argument("--insecure", action="store_true", default=default,
                        help="plaintext gRPC without authentication (logs a warning; never in production) "
                             "[env: VP_INSECURE]")


def add_server_security_arguments(parser) -> None:
    _insecure_flag(parser)
    _flag(parser, "--tls-cert", env="VP_TLS_CERT", help="PEM server certificate (with --tls-key)")
    _flag(parser, "--tls-key", env="VP_TLS_KEY", help="PEM private key of --tls-cert")
    if "VP_TLS_CA" not in parser.env_vars:
        _flag(parser, "--tls-ca", env="VP_TLS_CA", help="PEM CA certificate that peers' certificates chain to")
    raw = os.environ.get("VP_TLS_REQUIRE_CLIENT_CERT", "")
    parser.env_vars["VP_TLS_REQUIRE_CLIENT_CERT"] = "mTLS"
    parser.add_argument("--tls-require-client-cert", action="store_true", default=env_bool(raw),
                        help="mTLS: every caller presents a certificate chaining to --tls-ca; its "
                             "spiffe://vp/<role>/<name> URI SAN names the caller [env: VP_TLS_REQUIRE_CLIENT_CERT]")
    _flag(parser, "--tokens-file", env="VP_TOKENS_FILE",
          help="JSON file of principals and their bearer-token SHA-256 hashes (never plain tokens)")


def add_channel_security_arguments(parser) -> None:
    _insecure_flag(parser)
    if "VP_TLS_CA" not in parser.env_vars:
        _flag(parser, "--tls-ca", env="VP_TLS_CA", help="PEM CA certificate that peers' certificates chain to")
    _flag(parser, "--tls-client-cert", env="VP_TLS_CLIENT_CERT",
          help="PEM client certificate for mTLS (its URI SAN names this process)")
    _flag(parser, "--tls-client-key", env="VP_TLS_CLIENT_KEY", help="PEM private key of --tls-client-cert")
    _flag(parser, "--token-file", env="VP_TOKEN_FILE", help="file holding this process's bearer token")


def server_security_from(args: argparse.Namespace) -> ServerSecurity:
    """ValueError naming what is missing; --insecure logs the warning."""
    if args.insecure:
        log.warning(INSECURE_WARNING)
        return INSECURE_SERVER
    if not args.tls_cert or not args.tls_key:
        raise ValueError("TLS is required: give --tls-cert and --tls-key (VP_TLS_CERT / VP_TLS_KEY), or --insecure "
                         "for plaintext without authentication")
    if args.tls_require_client_cert and not args.tls_ca:
        raise ValueError("--tls-require-client-cert needs --tls-ca (the CA client certificates chain to)")
    if not args.tls_require_client_cert and not args.tokens_file:
        raise ValueError("nobody could call: give --tokens-file (bearer tokens) and/or --tls-require-client-cert "
                         "(mTLS)")
    return ServerSecurity(cert_pem=_read(args.tls_cert, "certificate"), key_pem=_read(args.tls_key, "key"),
                          client_ca_pem=_read(args.tls_ca, "CA certificate"),
                          require_client_cert=args.tls_require_client_cert,
                          tokens=TokenStore.load(args.tokens_file) if args.tokens_file else None)


def channel_security_from(args: argparse.Namespace) -> ChannelSecurity:
    if args.insecure:
        return INSECURE_CHANNEL
    if not args.tls_ca:
        raise ValueError("TLS is required: give --tls-ca (VP_TLS_CA) and a client certificate or --token-file, or "
                         "--insecure for plaintext without authentication")
    return ChannelSecurity.from_files(ca=args.tls_ca, cert=args.tls_client_cert, key=args.tls_client_key,
                                      token_file=args.token_file)
