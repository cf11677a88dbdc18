"""vp-dispatcher: mission ledger, routing with fallback, worker streams."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

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
from services.common.security import (
    ChannelSecurity,
    ServerSecurity,
    add_channel_security_arguments,
    add_server_security_arguments,
    channel_security_from,
    server_security_from,
)
from services.common.telemetry.tracing import configure_tracing
from services.common.store import SqlStore
from services.common.store.engine import SHARED_DEFAULT_DB
from services.common.telemetry.metrics_server import add_metrics_argument, serve_metrics
from services.dispatcher.core import DispatcherCore
from services.dispatcher.registry_client import RegistryClient
from services.dispatcher.mission_owner import owner_lookup
from services.dispatcher.missions_api import MissionsApi
from services.common.validation import check_vp_id
from services.dispatcher.routing import (
    GENERAL,
    LaneConfig,
    default_lanes,
    describe_env_vars,
    flags_from_env,
    parse_rules,
    rules_from_lanes,
    validate_lanes,
)
from services.dispatcher.servicers import add_to_server
from services.dispatcher.settings import DispatcherSettings
from services.dispatcher.supervision import Supervisor
from services.dispatcher.worker_protocol import WorkerProtocol

log = logging.getLogger("vp.dispatcher")
DEFAULT_DB = SHARED_DEFAULT_DB
DEFAULT_METRICS = f"{DEFAULT_HOST}:9102"
#: Unary calls that may block for minutes: a drain ends them with DRAINING (streams always do).
LONG_UNARY_METHODS = ("/vp.v1.MissionControl/WaitMission",)


def _paths(value: str) -> tuple[Path, ...]:
    return tuple(Path(p) for p in value.split(os.pathsep) if p)


def build_parser() -> EnvArgumentParser:
    lanes = default_lanes()
    flag_help = "\n".join(f"  {name}: {text}" for name, text in describe_env_vars(lanes))
    parser = EnvArgumentParser(prog="vp-dispatcher", description="VP mission dispatcher (vp.v1.MissionControl, "
                               "vp.v1.WorkerChannel).", epilog=f"routing flags (environment):\n{flag_help}",
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_env_argument("--listen", env="VP_DISPATCHER_LISTEN", default=f"{DEFAULT_HOST}:50052", type=host_port,
                            help="HOST:PORT to bind; port 0 picks a free port")
    parser.add_env_argument("--db", env="VP_DB_URL", default=DEFAULT_DB,
                            help="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://...")
    parser.add_env_argument("--registry", env="VP_REGISTRY_ADDR", default=f"{DEFAULT_HOST}:50051", type=host_port,
                            help="registry HOST:PORT")
    parser.add_env_argument("--allowed-roots", env="VP_ALLOWED_ROOTS", default="", help=f"{os.pathsep}-separated "
                            "absolute roots a target_path may be under (the handoff root)")
    parser.add_env_argument("--protected-roots", env="VP_PROTECTED_ROOTS", default="", help=f"{os.pathsep}-separated "
                            "absolute roots a target_path may never be under")
    parser.add_env_argument("--coder-fallback-to-general", env="VP_CODER_FALLBACK_TO_GENERAL", default=False,
                            type=lambda v: v.lower() in {"1", "true", "yes", "on"},
                            help="re-route vp.coder.primary fallbacks to vp.general.primary instead of the caller")
    parser.add_env_argument("--extra-lanes", env="VP_EXTRA_LANES", default="",
                            help="comma-separated vp_ids served besides the two primary lanes (fallback: caller)")
    parser.add_env_argument("--intent-routes", env="VP_INTENT_ROUTES", default="",
                            help="mission_type -> lane(s) for missions that name no vp_id, e.g. "
                                 "'code=vp.coder.primary|vp.general.primary,*=vp.general.primary' (first usable lane "
                                 "wins; '*' is the default); entries replace the built-in map: each lane's mission "
                                 f"types ({rules_from_lanes(lanes, GENERAL).describe()})")
    parser.add_env_argument("--lane-max-in-flight", env="VP_LANE_MAX_IN_FLIGHT", default=64, type=int,
                            help="per-lane limit of running missions before queueing counts against capacity")
    parser.add_env_argument("--lane-max-queue", env="VP_LANE_MAX_QUEUE_DEPTH", default=10_000, type=int,
                            help="per-lane queue depth beyond which missions fall back (over_capacity)")
    parser.add_env_argument("--heartbeat-interval", env="VP_HEARTBEAT_INTERVAL_SECONDS", default=5.0,
                            type=positive_float, help="seconds between worker heartbeats (capped at lease TTL / 4)")
    parser.add_env_argument("--supervise-interval", env="VP_SUPERVISE_INTERVAL_SECONDS", default=0.5,
                            type=positive_float, help="seconds between deadline / lost-worker checks")
    parser.add_env_argument("--default-max-attempts", env="VP_DEFAULT_MAX_ATTEMPTS", default=3, type=int,
                            help="attempts when the envelope gives none")
    add_server_security_arguments(parser)
    add_channel_security_arguments(parser)
    add_metrics_argument(parser, env="VP_DISPATCHER_METRICS_LISTEN", default=DEFAULT_METRICS)
    add_drain_argument(parser)
    add_logging_arguments(parser)
    return parser


def settings_from(args) -> DispatcherSettings:
    lanes = default_lanes(coder_falls_back_to_general=args.coder_fallback_to_general)
    for vp_id in filter(None, (v.strip() for v in args.extra_lanes.split(","))):
        if check_vp_id(vp_id):
            raise ValueError(f"extra lane {vp_id!r} is not a valid vp_id")
        lanes[vp_id] = LaneConfig(vp_id, frozenset())
    lanes = {vp_id: replace(cfg, max_in_flight=args.lane_max_in_flight, max_queue_depth=args.lane_max_queue)
             for vp_id, cfg in lanes.items()}
    validate_lanes(lanes)
    intent = parse_rules(args.intent_routes, lanes, rules_from_lanes(lanes, GENERAL))
    return DispatcherSettings(
        intent=intent,
        lanes=lanes, flags=flags_from_env(os.environ, lanes), allowed_roots=_paths(args.allowed_roots),
        protected_roots=_paths(args.protected_roots), default_max_attempts=args.default_max_attempts,
        heartbeat_interval=timedelta(seconds=args.heartbeat_interval),
        supervise_interval=timedelta(seconds=args.supervise_interval),
    )


async def run(args, settings: DispatcherSettings, security: ServerSecurity, registry_security: ChannelSecurity) -> None:
    store = SqlStore(args.db)
    registry = RegistryClient(args.registry, settings.health_cache_ttl.total_seconds(), registry_security)
    core = DispatcherCore(store, SystemClock(), settings, registry)
    supervisor = Supervisor(core)
    reconciled = await supervisor.recover_lost_runs(reconciling=True)
    running = await start_server(args.listen, lambda server: add_to_server(MissionsApi(core), WorkerProtocol(core),
                                                                          server),
                                 long_unary_methods=LONG_UNARY_METHODS,
                                 gate=security.gate(owner_lookup(store)), credentials=security.credentials())
    log.info("vp-dispatcher listening on %s (registry %s, reconciled %d run(s))", running.address, args.registry,
             reconciled, extra={"address": running.address})

    async def stop() -> None:
        await core.close()
        await registry.close()
        await asyncio.to_thread(store.close)

    await serve_until_signal(running, background=[supervisor.run_forever], on_stop=stop,
                             drain_window=args.drain_window)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    configure_tracing("vp-dispatcher")
    try:
        settings = settings_from(args)
        security = server_security_from(args)
        registry_security = channel_security_from(args)
    except ValueError as exc:
        print(f"vp-dispatcher: {exc}", file=sys.stderr)
        return 2
    try:
        serve_metrics(args, DEFAULT_METRICS)  # a daemon thread: ends with the process
    except OSError as exc:
        print(f"vp-dispatcher: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(args, settings, security, registry_security))
    except BindError as exc:
        print(f"vp-dispatcher: {exc}", file=sys.stderr)
        return EXIT_CANNOT_LISTEN
    return 0


if __name__ == "__main__":
    sys.exit(main())
