"""vp-mcp: VP Mission Control's MCP server (tools vp_*, durable tasks).

    vp-mcp                                  # stdio: for agent CLIs that launch their tools
    vp-mcp --transport http --listen 127.0.0.1:8765   # streamable HTTP at http://127.0.0.1:8765/mcp

It is a client of the dispatcher (--dispatcher) and the registry (--registry),
like vpctl; every flag has an environment equivalent. Logs go to stderr (stdout
carries the protocol on stdio).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import socket
import sys

from services.common.auth.datadir import resolve_client_security
from services.common.cli_config import DEFAULT_HOST, EnvArgumentParser, host_port, positive_float
from services.common.security import INSECURE_CHANNEL
from services.common.logging_setup import configure_logging
from services.mcp.server import Backends, build_server

log = logging.getLogger("vp.mcp")

DEFAULT_HTTP_LISTEN = f"{DEFAULT_HOST}:8765"


def build_parser() -> EnvArgumentParser:
    parser = EnvArgumentParser(prog="vp-mcp", description="MCP server exposing VP Mission Control to agents: the "
                               "vp_* tools and durable MCP tasks.")
    parser.add_env_argument("--dispatcher", env="VP_DISPATCHER_ADDR", default=f"{DEFAULT_HOST}:50052",
                            type=host_port, metavar="HOST:PORT", help="MissionControl (dispatcher) address")
    parser.add_env_argument("--registry", env="VP_REGISTRY_ADDR", default=f"{DEFAULT_HOST}:50051",
                            type=host_port, metavar="HOST:PORT", help="SessionRegistry address")
    parser.add_env_argument("--transport", env="VP_MCP_TRANSPORT", default="stdio", choices=["stdio", "http"],
                            help="stdio (launched by the agent) or http (streamable HTTP)")
    parser.add_env_argument("--listen", env="VP_MCP_LISTEN", default=DEFAULT_HTTP_LISTEN, type=host_port,
                            metavar="HOST:PORT", help="with --transport http: where to listen (port 0: any free "
                            "port, logged); a non-loopback host exposes the tools to the network")
    parser.add_env_argument("--path", env="VP_MCP_PATH", default="/mcp", help="with --transport http: the endpoint")
    parser.add_env_argument("--timeout", env="VP_MCP_TIMEOUT", default=10.0, type=positive_float, metavar="S",
                            help="deadline of each dispatcher/registry call in seconds (waits run longer)")
    parser.add_env_argument("--log-level", env="VP_LOG_LEVEL", default="INFO", help="log level (stderr)")
    # The same credentials as vpctl: the data dir `vpctl up` wrote, or the VP_TLS_* files, or --insecure.
    parser.add_env_argument("--data-dir", env="VP_DATA_DIR", default=".vp", metavar="DIR",
                            help="where `vpctl up` keeps the credentials (TLS certificates, tokens) vp-mcp uses, "
                                 "unless VP_TLS_CA (+ VP_TLS_CLIENT_CERT/KEY, VP_TOKEN_FILE) names other files; "
                                 "give an absolute path when an agent starts vp-mcp elsewhere")
    parser.add_env_argument("--as", dest="identity", env="VP_MCP_AS", default="client", choices=["client", "operator"],
                            help="whose credentials from the data dir")
    parser.add_argument("--insecure", action="store_true", default=False,
                        help="plaintext without credentials (for a stack started with --insecure) [env: VP_INSECURE]")
    return parser


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def serve_stdio(backends: Backends) -> None:
    from mcp.server.stdio import stdio_server

    server = build_server(backends)
    log.info("vp-mcp serving on stdio (dispatcher %s, registry %s)", backends.mission_control.address,
             backends.sessions.address)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def serve_http(backends: Backends, listen: str, path: str) -> None:
    import uvicorn

    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    server = build_server(backends)
    app = server.streamable_http_app(streamable_http_path=path, host=host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(128)
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if family == socket.AF_INET6 else bound[0]
    if not _is_loopback(host):
        log.warning("listening on a non-loopback address: anyone who can reach it can dispatch missions")
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    http = uvicorn.Server(config)
    # Logged once the socket accepts: connections queue from here on.
    log.info("vp-mcp listening on %s:%d (streamable HTTP, endpoint http://%s:%d%s)", shown, bound[1], shown,
             bound[1], path)
    await http.serve(sockets=[sock])


def channel_security(args: argparse.Namespace):
    """What vpctl would use with the same flags and environment."""
    if args.insecure:
        return INSECURE_CHANNEL
    return resolve_client_security(args.identity, data_dir=args.data_dir)


async def run(args: argparse.Namespace, security) -> None:
    if security.insecure:
        log.warning("no credentials (none in VP_TLS_*, none under %s, or --insecure): plaintext without "
                    "authentication; a secure stack will refuse the connection", args.data_dir)
    backends = Backends.connect(args.dispatcher, args.registry, timeout=args.timeout, security=security)
    try:
        if args.transport == "stdio":
            await serve_stdio(backends)
        else:
            await serve_http(backends, args.listen, args.path)
    finally:
        await backends.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_logging(args.log_level)
    except ValueError:
        print(f"vp-mcp: invalid --log-level {args.log_level!r}", file=sys.stderr)
        return 2
    try:
        security = channel_security(args)
    except (OSError, ValueError) as error:
        print(f"vp-mcp: cannot load credentials: {error}", file=sys.stderr)
        return 2
    if args.transport == "stdio":
        # stdio ends when the client closes stdin; SIGTERM must end it quietly too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        asyncio.run(run(args, security))
    except KeyboardInterrupt:
        return 0
    except OSError as error:
        print(f"vp-mcp: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
