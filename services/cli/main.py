"""vpctl: operate VP Mission Control from a shell.

    vpctl dispatch --vp-id vp.coder.primary --type code --objective "fix the flaky test" --wait
    vpctl list --state running
    vpctl events --consumer ops --follow

Exit codes scripts may rely on are listed once, in services/cli/exit_codes.py (and in --help).
Errors are one line on stderr: code, reason, field violations; never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys

from services.cli.rollout import add_parser as add_rollout_parser
from services.cli import exit_codes
from services.client import ClientError
from services.common.cli_config import DEFAULT_HOST, EnvArgumentParser, host_port, positive_float
from services.common.logging_setup import configure_logging
from services.common.telemetry.tracing import configure_tracing

log = logging.getLogger("vpctl")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in help (once: not when the text already says it, nor for
    switches and unset options), epilog (exit codes) kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, "", argparse.SUPPRESS) or not action.option_strings:
            return text
        return super()._get_help_string(action)


class _Parser(EnvArgumentParser):
    """Usage errors as a JSON object on stderr when --json is on the command line."""

    json_errors = False

    def error(self, message: str):  # noqa: ANN201 - argparse's signature
        if _Parser.json_errors:
            _print_json_error("INVALID_ARGUMENT", "USAGE", f"{self.prog}: {message}")
            self.exit(exit_codes.USAGE)
        super().error(message)


def _print_json_error(code: str, reason: str, message: str, **extra) -> None:
    print(json.dumps({"code": code, "reason": reason, "message": message, **extra}, separators=(",", ":")),
          file=sys.stderr, flush=True)


def _label(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key, val


def _json_object(value: str) -> dict:
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return data


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return number


def _on_off(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"on", "true", "1", "yes"}:
        return True
    if lowered in {"off", "false", "0", "no"}:
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got {value!r}")


def _add_json(parser: argparse.ArgumentParser) -> None:
    # Accepted after the subcommand too; SUPPRESS keeps a global --json intact.
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output: protobuf JSON, one object per line")


def build_parser() -> EnvArgumentParser:
    parser = _Parser(prog="vpctl", description="Operate VP Mission Control: dispatch, follow and "
                               "inspect missions, sessions and events.", epilog=exit_codes.EPILOG,
                               formatter_class=_Formatter)
    parser.add_env_argument("--dispatcher", env="VP_DISPATCHER_ADDR", default=f"{DEFAULT_HOST}:50052",
                            type=host_port, metavar="HOST:PORT", help="MissionControl (dispatcher) address")
    parser.add_env_argument("--registry", env="VP_REGISTRY_ADDR", default=f"{DEFAULT_HOST}:50051",
                            type=host_port, metavar="HOST:PORT", help="SessionRegistry address")
    parser.add_env_argument("--timeout", env="VPCTL_TIMEOUT", default=10.0, type=positive_float, metavar="S",
                            help="overall deadline of a command in seconds, retries included; waits and followed "
                                 "streams run as long as asked, but fail once the server has been out of reach "
                                 "for S seconds")
    parser.add_env_argument("--log-level", env="VPCTL_LOG_LEVEL", default="WARNING",
                            help="log level of client diagnostics (retries) on stderr")
    parser.add_argument("--json", action="store_true", default=False,
                        help="machine-readable output: protobuf JSON, one object per line")
    parser.add_env_argument("--data-dir", env="VP_DATA_DIR", default=".vp", metavar="DIR",
                            help="where `vpctl up` keeps its state and credentials (TLS certificates, tokens), "
                                 "used unless VP_TLS_CA names other files")
    parser.add_env_argument("--as", dest="identity", env="VPCTL_AS", default="client",
                            choices=["client", "operator"],
                            help="whose credentials from the data dir (retire, revive and reset-conversation always "
                                 "use the operator's)")
    parser.add_argument("--insecure", action="store_true", default=False,
                        help="plaintext without credentials (for a stack started with --insecure)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=exit_codes.EPILOG,
                           formatter_class=_Formatter)
        _add_json(p)
        return p

    p = command("dispatch", "dispatch a mission (with --wait: follow its progress until it ends)")
    p.add_argument("--vp-id", default="", help="requested lane, e.g. vp.coder.primary; omit it to let the "
                   "dispatcher's intent rules pick the lane for --type")
    p.add_argument("--type", required=True, help="mission type, e.g. code, task, research")
    p.add_argument("--objective", required=True, help="what to do, in natural language")
    p.add_argument("--idempotency-key", help="same key returns the same mission (default: generated)")
    p.add_argument("--target-path", help="absolute path the mission may write to")
    p.add_argument("--priority", type=int, default=0, help="higher runs first within a lane")
    p.add_argument("--max-attempts", type=_non_negative_int, default=0, help="total attempts; 0: server default")
    p.add_argument("--label", type=_label, action="append", metavar="KEY=VALUE", help="label (repeatable)")
    p.add_argument("--constraints", type=_json_object, metavar="JSON", help="constraints as a JSON object")
    p.add_argument("--deadline-seconds", type=positive_float, metavar="S",
                   help="deadline S seconds from now (part of the envelope: re-running the command with the "
                        "same --idempotency-key and this flag is a different envelope, i.e. a conflict)")
    p.add_argument("--budget-seconds", type=positive_float, metavar="S", help="run-time budget of one attempt")
    p.add_argument("--max-tokens", type=_positive_int, metavar="N",
                   help="token budget over all runs (crossing it blocks the mission: exit 7)")
    p.add_argument("--max-cost-usd", type=positive_float, metavar="X",
                   help="cost budget in USD over all runs (crossing it blocks the mission: exit 7)")
    p.add_argument("--fresh-context", action="store_true",
                   help="start the agent in a fresh conversation instead of continuing the VP's")
    p.add_argument("--wait", action="store_true", help="show live progress until the mission ends")
    p.add_argument("--wait-timeout", type=_non_negative_float, metavar="S",
                   help="with --wait: give up after S seconds (exit 5); default: no limit")

    p = command("get", "show one mission")
    p.add_argument("mission_id", metavar="MISSION_ID")

    p = command("list", "list missions, newest first")
    p.add_argument("--vp-id", help="only this lane")
    p.add_argument("--state", action="append", metavar="STATE",
                   help="only this state (repeatable): queued, running, blocked, completed, failed, cancelled, "
                        "timed_out")
    p.add_argument("--source-session", metavar="SESSION_ID", help="only missions from this session")
    p.add_argument("--limit", type=_positive_int, help="at most this many (the newest)")
    p.add_argument("--oldest-first", action="store_true", help="oldest first (default: newest first)")

    p = command("wait", "wait until a mission ends; exit 0 only if it COMPLETED")
    p.add_argument("mission_id", metavar="MISSION_ID")
    p.add_argument("--timeout", dest="wait_timeout", type=_non_negative_float, metavar="S",
                   help="give up after S seconds (exit 5); default: no limit")

    p = command("resume", "answer a BLOCKED mission (and/or raise its budget); it is queued again")
    p.add_argument("mission_id", metavar="MISSION_ID")
    p.add_argument("--answer", default="", help="the answer to the mission's question")
    p.add_argument("--max-tokens", type=_positive_int, metavar="N", help="raise the token budget to N")
    p.add_argument("--max-cost-usd", type=positive_float, metavar="X", help="raise the cost budget to X USD")
    p.add_argument("--wait", action="store_true", help="show live progress until the mission ends again")
    p.add_argument("--wait-timeout", type=_non_negative_float, metavar="S",
                   help="with --wait: give up after S seconds (exit 5); default: no limit")

    p = command("reset-conversation", "make a VP forget its agent conversation (its next mission starts fresh)")
    p.add_argument("vp_id", metavar="VP_ID")
    p.add_argument("--reason", default="", help="why, recorded in the vp.session.conversation_reset event")

    p = command("retire", "operator: take a VP session out of service (its worker stops)")
    p.add_argument("vp_id", metavar="VP_ID")
    p.add_argument("--reason", default="", help="why, recorded with the session")

    p = command("revive", "operator: bring a retired VP session back (a worker may acquire it again)")
    p.add_argument("vp_id", metavar="VP_ID")
    p.add_argument("--reason", default="", help="why, recorded in the vp.session.revived event")

    p = command("credentials", "create the local CA, certificates and tokens (for docker compose secrets)")
    p.add_argument("action", choices=["init"], help="init: create whatever is missing under --out")
    p.add_argument("--out", required=True, metavar="DIR", help="where to write them (tls/, auth/)")
    p.add_argument("--host", action="append", default=[], metavar="NAME",
                   help="extra DNS name or IP of the server certificate (repeatable), e.g. registry, dispatcher")
    p.add_argument("--lane", action="append", default=[], metavar="VP_ID",
                   help="a worker certificate for this lane (repeatable)")

    p = command("cancel", "cancel a mission")
    p.add_argument("mission_id", metavar="MISSION_ID")
    p.add_argument("--reason", default="", help="why, recorded with the cancel")

    p = command("artifacts", "list, print or download a mission's result artifacts")
    p.add_argument("mission_id", metavar="MISSION_ID")
    p.add_argument("--path", metavar="P", help="one file (relative path); printed unless --out is given")
    p.add_argument("--out", metavar="DIR", help="write the files into DIR (never outside it)")

    p = command("sessions", "list VP sessions (from the registry)")
    p.add_argument("--stale", action="store_true", help="only stale sessions (lease expired or heartbeat overdue)")
    p.add_argument("--status", action="append", metavar="STATUS",
                   help="only this effective status (repeatable): idle, active, paused, degraded, recovering, "
                        "retired")
    p.add_argument("--vp-prefix", metavar="PREFIX", help="only vp_ids starting with PREFIX")
    p.add_argument("--limit", type=_positive_int, help="at most this many")

    p = command("events", "print mission/session events after a cursor")
    p.add_argument("--after", type=_non_negative_int, default=0, metavar="N",
                   help="events with id > N (0 with --consumer: resume from its stored cursor)")
    p.add_argument("--consumer", metavar="NAME",
                   help="named consumer: its cursor is committed after each printed event, so a restart resumes")
    p.add_argument("--mission-id", help="only this mission")
    p.add_argument("--vp-id", help="only this lane")
    p.add_argument("--type", action="append", metavar="EVENT_TYPE", help="only this event type (repeatable)")
    p.add_argument("--follow", action="store_true", help="keep following new events")

    add_rollout_parser(command)
    p = command("flags", "show or change the routing flags at runtime (every dispatcher replica within a second)")
    p.add_argument("action", choices=["get", "set"], help="get: show them; set: change them (audited)")
    p.add_argument("--vp-id", default="", help="set: the lane to change (omit for the global --kill-switch)")
    p.add_argument("--kill-switch", type=_on_off, metavar="on|off",
                   help="set: every mission goes to its fallback (reason disabled)")
    p.add_argument("--enabled", type=_on_off, metavar="on|off", help="set: route missions to the lane")
    p.add_argument("--shadow", type=_on_off, metavar="on|off", help="set: run the lane as a shadow copy only")
    p.add_argument("--force-fallback", type=_on_off, metavar="on|off", help="set: send the lane's missions to its "
                   "fallback")
    p.add_argument("--max-in-flight", type=int, metavar="N", help="set: the lane's running-missions quota "
                   "(-1: back to the dispatcher's configured default)")
    p.add_argument("--max-queue", type=int, metavar="N", help="set: the lane's queue quota once it is full "
                   "(-1: back to the dispatcher's configured default)")
    p.add_argument("--reason", help="set: why (required; recorded in the vp.flags.changed audit event)")
    p.add_argument("--actor", default=os.environ.get("USER", ""), help="set: who, for the audit event "
                   "(default: $USER)")


    p = command("up", "start the embedded stack (registry, dispatcher, two workers on SQLite)")
    p.add_argument("--data-dir", metavar="DIR", default=os.environ.get("VP_DATA_DIR", ".vp"),
                   help="where the stack keeps its state (databases, workspaces) [env: VP_DATA_DIR]")
    p.add_argument("--no-demo", action="store_true", help="do not run the demo mission after start")
    p.add_argument("--metrics-base-port", metavar="PORT", type=int,
                   default=int(os.environ.get("VP_METRICS_BASE_PORT", "9101")),
                   help="Prometheus /metrics on 127.0.0.1: the registry on PORT, the dispatcher on PORT+1, the "
                        "vp.coder.primary worker on PORT+2, the vp.general.primary worker on PORT+3; 0: each picks "
                        "a free port (its log says which) [env: VP_METRICS_BASE_PORT]")
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _fail(args, error: ClientError | None, message: str) -> None:
    """One line on stderr: text, or under --json an object {code, reason, message}."""
    if not getattr(args, "json", False):
        print(f"vpctl: {_one_line(message)}", file=sys.stderr)
        return
    if error is None:
        _print_json_error("UNKNOWN", "", _one_line(message))
        return
    extra = {}
    if error.field_violations:
        extra["field_violations"] = [{"field": v.field, "description": v.description} for v in error.field_violations]
    if error.retry_delay is not None:
        extra["retry_delay_seconds"] = error.retry_delay.total_seconds()
    _print_json_error(error.code.name if error.code is not None else "UNKNOWN", error.reason, error.message, **extra)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    _Parser.json_errors = "--json" in (sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)  # usage errors exit 2 here
    if args.command is None:
        parser.print_help(sys.stderr)
        return exit_codes.USAGE
    try:
        configure_logging(args.log_level)
        configure_tracing("vpctl")
    except ValueError:
        parser.error(f"invalid --log-level {args.log_level!r}")
    if args.command == "up":
        from services.cli.up import run_up

        return run_up(args)
    if args.command == "credentials":
        from services.cli.up import run_credentials

        return run_credentials(args)
    from services.cli.commands import run_command

    try:
        return asyncio.run(run_command(args))
    except ClientError as error:
        _fail(args, error, error.summary())
        return exit_codes.for_status(error.code)
    except KeyboardInterrupt:
        _fail(args, None, "interrupted")
        return exit_codes.INTERRUPTED
    except BrokenPipeError:
        # Output piped into e.g. `head` that exited: not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return exit_codes.OK
    except OSError as error:
        _fail(args, None, str(error))
        return exit_codes.ERROR
    except Exception as error:  # noqa: BLE001 - one line, never a traceback
        log.debug("unexpected error", exc_info=True)
        _fail(args, None, f"internal error: {error!r}")
        return exit_codes.ERROR


if __name__ == "__main__":
    sys.exit(main())
