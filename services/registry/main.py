"""vp-registry: the session registry service."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import timedelta

from services.common.cli_config import (
    DEFAULT_HOST,
    EnvArgumentParser,
    add_logging_arguments,
    host_port,
    positive_float,
)
from services.common.clock import SystemClock
from services.common.grpc_server import (
    EXIT_CANNOT_LISTEN,
    BindError,
    add_drain_argument,
    serve_until_signal,
    start_server,
)
from services.common.logging_setup import configure_logging
from services.common.security import ServerSecurity, add_server_security_arguments, server_security_from
from services.common.telemetry.tracing import configure_tracing
from services.common.store import SqlStore
from services.common.store.engine import SHARED_DEFAULT_DB
from services.common.telemetry.metrics_server import add_metrics_argument, serve_metrics
from services.registry.registry import SessionRegistry
from services.registry.servicer import SessionRegistryServicer, add_to_server
from services.registry.settings import RegistrySettings
from services.registry.sweeper import run_sweeper
from services.registry.workspaces import normalized_root

log = logging.getLogger("vp.registry")
DEFAULT_DB = SHARED_DEFAULT_DB
DEFAULT_METRICS = f"{DEFAULT_HOST}:9101"
DEFAULT_WORKSPACE_ROOT = ".vp/workspaces"  # the worker's default too


def build_parser() -> EnvArgumentParser:
    parser = EnvArgumentParser(prog="vp-registry", description="VP session registry (vp.v1.SessionRegistry).")
    parser.add_env_argument("--listen", env="VP_REGISTRY_LISTEN", default=f"{DEFAULT_HOST}:50051", type=host_port,
                            help="HOST:PORT to bind; port 0 picks a free port")
    parser.add_env_argument("--db", env="VP_DB_URL", default=DEFAULT_DB,
                            help="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://...")
    parser.add_env_argument("--lease-ttl", env="UA_VP_LEASE_TTL_SECONDS", default=30.0, type=positive_float,
                            help="default lease TTL in seconds")
    parser.add_env_argument("--sweep-interval", env="UA_VP_SWEEP_INTERVAL_SECONDS", default=5.0,
                            type=positive_float, help="seconds between stale-session sweeps")
    parser.add_env_argument("--recovery-grace", env="UA_VP_RECOVERY_GRACE_SECONDS", default=60.0, type=float,
                            help="seconds a session stays DEGRADED before RECOVERING")
    parser.add_env_argument("--heartbeat-stale", env="UA_VP_HEARTBEAT_STALE_SECONDS", default=None,
                            type=positive_float, help="seconds without heartbeat before a session reads stale "
                                                      "(default: 2 x lease TTL)")
    parser.add_env_argument("--workspace-root", env="VP_WORKSPACE_ROOT", default=DEFAULT_WORKSPACE_ROOT,
                            help="a new session's workspace_dir must be a directory under this root (the workers' "
                                 "--workspace-root)")
    add_server_security_arguments(parser)
    add_metrics_argument(parser, env="VP_REGISTRY_METRICS_LISTEN", default=DEFAULT_METRICS)
    add_drain_argument(parser)
    add_logging_arguments(parser)
    return parser


def settings_from(args) -> RegistrySettings:
    return RegistrySettings(
        lease_ttl=timedelta(seconds=args.lease_ttl),
        sweep_interval=timedelta(seconds=args.sweep_interval),
        recovery_grace=timedelta(seconds=args.recovery_grace),
        heartbeat_stale=timedelta(seconds=args.heartbeat_stale) if args.heartbeat_stale else None,
        workspace_root=normalized_root(args.workspace_root),
    )


async def run(args, security: ServerSecurity) -> None:
    settings = settings_from(args)
    # Lease renewals first: on a database file shared with a dispatcher they
    # must not wait behind its mission traffic.
    store = SqlStore(args.db, eager_writes=True)
    registry = SessionRegistry(store, SystemClock(), settings)
    running = await start_server(args.listen, lambda server: add_to_server(SessionRegistryServicer(registry), server),
                                 gate=security.gate(), credentials=security.credentials())
    log.info("vp-registry listening on %s", running.address, extra={"address": running.address})
    await serve_until_signal(
        running,
        background=[lambda: run_sweeper(registry.sweep_once, settings.sweep_interval.total_seconds())],
        on_stop=lambda: asyncio.to_thread(store.close),
        drain_window=args.drain_window,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    configure_tracing("vp-registry")
    try:
        settings_from(args)
        security = server_security_from(args)
    except ValueError as exc:
        print(f"vp-registry: {exc}", file=sys.stderr)
        return 2
    try:
        serve_metrics(args, DEFAULT_METRICS)  # a daemon thread: ends with the process
    except OSError as exc:
        print(f"vp-registry: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(args, security))
    except BindError as exc:
        print(f"vp-registry: {exc}", file=sys.stderr)
        return EXIT_CANNOT_LISTEN
    return 0


if __name__ == "__main__":
    sys.exit(main())
