"""vp-worker: serve one VP lane (e.g. vp.coder.primary) for the dispatcher.

Every flag has an environment variable (shown in --help); the flag wins.
``--command`` is ONE string: a JSON list of argv strings or a shell-like string
split with shlex (no shell ever runs it), e.g.

    vp-worker --dispatcher 127.0.0.1:50052 --registry 127.0.0.1:50051 \\
        --vp-id vp.coder.primary --workspace-root /srv/vp --executor subprocess \\
        --command 'python3 /opt/agent/run.py --mission {mission_id} {objective}'

SIGTERM or SIGINT drains (a second one cuts the drain short); exit status 0.
Status 2 is a configuration error, 1 a fatal runtime error (e.g. retired session).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import signal
import sys
from dataclasses import replace

from services.common.cli_config import EnvArgumentParser, add_logging_arguments, host_port, positive_float
from services.common.logging_setup import configure_logging
from services.common.security import add_channel_security_arguments, channel_security_from
from services.common.telemetry.tracing import configure_tracing
from services.common.telemetry.metrics_server import add_metrics_argument, serve_metrics
from services.worker.lane_config import (
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_LEASE_TTL,
    CONTAINMENT_MODES,
    WORKER_EXECUTORS,
    LaneConfig,
    parse_command,
    split_roots,
)
from services.worker.containment import procs as containment
from services.worker.service import run_worker
from services.worker.session import WorkerFatal

log = logging.getLogger("vp.worker")

DEFAULT_WORKSPACE_ROOT = ".vp/workspaces"


def _command(value: str) -> tuple[str, ...]:
    try:
        return parse_command(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _agent_args(value: str) -> list[str]:
    """Split like a shell would (no shell runs it): '--max-turns 5' is two arguments."""
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"cannot split {value!r}: {exc}") from None


def _roots(value: str) -> list[str]:
    return list(split_roots(value))


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return number


class _RootsAction(argparse.Action):
    """Repeatable; the first flag replaces the environment's list, later ones extend it."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        marker = f"_{self.dest}_from_flags"
        current = list(getattr(namespace, self.dest) or []) if getattr(namespace, marker, False) else []
        setattr(namespace, marker, True)
        setattr(namespace, self.dest, current + list(values))


def build_parser() -> EnvArgumentParser:
    parser = EnvArgumentParser(prog="vp-worker", description="VP worker: runs missions of one lane for the dispatcher "
                                                             "(vp.v1.WorkerChannel), holding the lane's lease.")
    parser.add_env_argument("--dispatcher", env="VP_DISPATCHER_ADDR", type=host_port, metavar="HOST:PORT",
                            help="dispatcher address (WorkerChannel)")
    parser.add_env_argument("--registry", env="VP_REGISTRY_ADDR", type=host_port, metavar="HOST:PORT",
                            help="session registry address")
    parser.add_env_argument("--vp-id", env="VP_WORKER_VP_ID", metavar="ID", help="lane to serve, e.g. vp.coder.primary")
    parser.add_env_argument("--workspace-root", env="VP_WORKSPACE_ROOT", default=DEFAULT_WORKSPACE_ROOT, metavar="DIR",
                            help="the session workspace is <DIR>/<vp_id> when the session is created "
                                 "(a resumed session keeps its stored workspace)")
    parser.add_env_argument("--executor", env="VP_WORKER_EXECUTOR", default="demo", choices=list(WORKER_EXECUTORS),
                            help="what runs a mission; claude-code and codex run that agent CLI "
                                 "(specs/agent-protocol-v1.md)")
    parser.add_env_argument("--command", env="VP_WORKER_COMMAND", type=_command, default=(), metavar="CMD",
                            help="subprocess executor: ONE string, a JSON list of argv strings or a shell-like "
                                 "string split with shlex (never run by a shell); placeholders {objective} "
                                 "{mission_id} {mission_dir} {workspace_dir} {target_path} {envelope_json}")
    parser.add_env_argument("--entry-point", env="VP_WORKER_ENTRY_POINT", default="", metavar="MOD:FN",
                            help="python executor: function called as fn(run, progress)")
    parser.add_env_argument("--agent-bin", env="VP_AGENT_BIN", default="", metavar="PATH",
                            help="claude-code / codex: the CLI binary (default: claude / codex on PATH)")
    parser.add_env_argument("--agent-model", env="VP_AGENT_MODEL", default="", metavar="MODEL",
                            help="claude-code / codex: passed as --model")
    parser.add_env_argument("--agent-arg", env="VP_AGENT_ARGS", dest="agent_args", type=_agent_args, default=[],
                            action=_RootsAction, metavar="ARG",
                            help="claude-code / codex: extra CLI arguments, a shell-like string; repeatable")
    parser.add_env_argument("--capacity", env="VP_WORKER_CAPACITY", default=1, type=_positive_int, metavar="N",
                            help="missions run at once")
    parser.add_env_argument("--allowed-root", env="VP_ALLOWED_ROOTS", dest="allowed_roots", type=_roots, default=[],
                            action=_RootsAction, metavar="DIR",
                            help=f"root a mission's target_path may be inside; repeatable (env: "
                                 f"{os.pathsep!r}-separated); none means no target_path is allowed")
    parser.add_env_argument("--protected-root", env="VP_PROTECTED_ROOTS", dest="protected_roots", type=_roots,
                            default=[], action=_RootsAction, metavar="DIR",
                            help=f"root a target_path must never be inside, even within an allowed root; "
                                 f"repeatable (env: {os.pathsep!r}-separated)")
    parser.add_env_argument("--lease-ttl", env="UA_VP_LEASE_TTL_SECONDS", default=DEFAULT_LEASE_TTL,
                            type=positive_float, metavar="SECONDS", help="lease TTL requested from the registry")
    parser.add_env_argument("--drain-timeout", env="VP_DRAIN_TIMEOUT_SECONDS", default=DEFAULT_DRAIN_TIMEOUT,
                            type=_non_negative_float, metavar="SECONDS",
                            help="on SIGTERM/SIGINT, how long in-flight missions may still run")
    add_channel_security_arguments(parser)
    parser.add_env_argument("--containment", env="VP_WORKER_CONTAINMENT", default="tokens",
                            choices=list(CONTAINMENT_MODES),
                            help="how agent processes are contained: tokens (process tokens, parent-death signal, "
                                 "subreaper, watchdog) or cgroup (also one cgroup v2 per run where the hierarchy is "
                                 "writable; falls back to tokens, with a warning, where it is not)")
    add_metrics_argument(parser, env="VP_WORKER_METRICS_LISTEN", default="")
    add_logging_arguments(parser)
    return parser


def config_from(args: argparse.Namespace) -> LaneConfig:
    """LaneConfig from parsed flags; ValueError lists every problem (the lane's first,
    then what TLS lacks)."""
    config = LaneConfig(
        vp_id=args.vp_id or "",
        workspace_root=args.workspace_root,
        dispatcher_addr=args.dispatcher or "",
        registry_addr=args.registry or "",
        executor=args.executor,
        command=tuple(args.command or ()),
        entry_point=args.entry_point or "",
        capacity=args.capacity,
        allowed_roots=tuple(args.allowed_roots or ()),
        protected_roots=tuple(args.protected_roots or ()),
        lease_ttl=args.lease_ttl,
        drain_timeout=args.drain_timeout,
        containment=args.containment,
        agent_bin=args.agent_bin or "",
        agent_model=args.agent_model or "",
        agent_args=tuple(args.agent_args or ()),
    )
    return replace(config, security=channel_security_from(args))


async def _serve(config: LaneConfig) -> int:
    loop = asyncio.get_running_loop()
    stop, force = asyncio.Event(), asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        if not stop.is_set():
            log.info("%s received: draining (send it again to stop at once)", sig.name, extra={"vp_id": config.vp_id})
            stop.set()
        else:
            log.warning("%s received again: cutting the drain short", sig.name, extra={"vp_id": config.vp_id})
            force.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await run_worker(config, stop_event=stop, force_event=force)
    except WorkerFatal as exc:
        log.error("vp-worker %s: %s", config.vp_id, exc, extra={"vp_id": config.vp_id})
        return 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("vp-worker %s stopped", config.vp_id, extra={"vp_id": config.vp_id})
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    configure_tracing("vp-worker")
    try:
        config = config_from(args)
    except ValueError as exc:
        print(f"vp-worker: {exc}", file=sys.stderr)
        return 2
    try:
        serve_metrics(args, "")  # a daemon thread: ends with the process
    except OSError as exc:
        print(f"vp-worker: {exc}", file=sys.stderr)
        return 2
    # Escaped descendants of agents are re-parented to this process, not to init.
    if not containment.become_subreaper():
        log.warning("cannot become a child subreaper; escaped agent descendants are found by token only")
    return asyncio.run(_serve(config))


if __name__ == "__main__":
    sys.exit(main())
