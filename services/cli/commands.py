"""The vpctl subcommands. Each takes (args, ctx) and returns an exit code;
client failures propagate as ClientError and are mapped in main."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import datetime, timedelta, timezone

from services.cli import exit_codes
from services.cli.rollout import cmd_rollout
from services.cli.output import Output
from services.client import MissionControlClient, SessionsClient, is_terminal, mission_state_name
from services.common.contracts.vp.v1 import enums_pb2, mission_pb2
from services.common.auth.datadir import resolve_client_security
from services.common.security import INSECURE_CHANNEL

log = logging.getLogger("vpctl")

#: Event types after which the followed mission may have stopped (confirmed with GetMission).
END_EVENTS = frozenset({
    "vp.mission.completed", "vp.mission.failed", "vp.mission.cancelled", "vp.mission.timed_out",
    "vp.mission.blocked", "vp.mission.fallback",
})


# Commands only an operator can carry out (registry actions, routing flags; rollout
# evidence reads every caller's missions of a lane): they use the operator's credentials.
OPERATOR_COMMANDS = {"retire", "revive", "reset-conversation", "rollout", "flags"}


class Context:
    """Clients opened on first use and closed at the end of the command."""

    def __init__(self, args) -> None:
        self.args = args
        self.out = Output(bool(getattr(args, "json", False)))
        self._mc: MissionControlClient | None = None
        self._sessions: SessionsClient | None = None

    def security(self, identity: str | None = None):
        """TLS and credentials of the identity (--as, or the command's own, e.g. operator)."""
        if getattr(self.args, "insecure", False):
            return INSECURE_CHANNEL
        return resolve_client_security(identity or getattr(self.args, "identity", "client"),
                                       data_dir=getattr(self.args, "data_dir", None))

    def _operator_or_none(self) -> str | None:
        return "operator" if self.args.command in OPERATOR_COMMANDS else None

    @property
    def mission_control(self) -> MissionControlClient:
        if self._mc is None:
            self._mc = MissionControlClient(self.args.dispatcher, timeout=self.args.timeout,
                                            stream_timeout=self.args.timeout,
                                            security=self.security(self._operator_or_none()))
        return self._mc

    @property
    def sessions(self) -> SessionsClient:
        if self._sessions is None:
            self._sessions = SessionsClient(self.args.registry, timeout=self.args.timeout,
                                            security=self.security(self._operator_or_none()))
        return self._sessions

    async def close(self) -> None:
        for client in (self._mc, self._sessions):
            if client is not None:
                await client.close()


def _note(text: str) -> None:
    print(f"vpctl: {text}", file=sys.stderr, flush=True)


def _stops(mission: mission_pb2.Mission) -> bool:
    return is_terminal(mission.state) or mission.state == enums_pb2.MISSION_STATE_BLOCKED


async def follow_mission(mc: MissionControlClient, mission_id: str, out: Output, timeout: float | None) -> mission_pb2.Mission:
    """Print the mission's events as they arrive until it stops (terminal or
    BLOCKED) or ``timeout`` passes; returns the mission as last seen. WaitMission
    decides the end; the event stream is for progress and ends earlier when it
    sees an end event that GetMission confirms."""

    async def stream() -> mission_pb2.Mission:
        async for event in mc.events(mission_id=mission_id, follow=True):
            out.event(event, wrapped=True)
            if event.event_type in END_EVENTS:
                mission = await mc.get(mission_id)
                if _stops(mission):
                    return mission
        raise RuntimeError("event stream ended")  # follow streams do not end on their own

    streamer = asyncio.create_task(stream())
    waiter = asyncio.create_task(mc.wait(mission_id, timeout))
    try:
        pending = {streamer, waiter}
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if streamer in done:
                if streamer.exception() is None:
                    return streamer.result()
                log.warning("progress stream stopped (%s); still waiting", streamer.exception())
            if waiter in done:
                mission = waiter.result()  # ClientError propagates
                if _stops(mission) and not streamer.done():
                    # Let progress catch up to the end event before the final line.
                    await asyncio.wait({streamer}, timeout=2.0)
                return mission
        raise AssertionError("unreachable")
    finally:
        for task in (streamer, waiter):
            task.cancel()
        await asyncio.gather(streamer, waiter, return_exceptions=True)


def _report_end(ctx: Context, mission: mission_pb2.Mission, timeout: float | None) -> int:
    timed_out = not _stops(mission)
    ctx.out.mission(mission, timed_out=timed_out if ctx.out.json else None)
    if mission.state == enums_pb2.MISSION_STATE_BLOCKED:
        _note(blocked_note(mission))
    if timed_out:
        _note(f"wait timed out after {timeout:g}s; mission {mission.envelope.mission_id} is "
              f"{mission_state_name(mission.state)}")
    return exit_codes.for_mission(mission)


def blocked_note(mission: mission_pb2.Mission) -> str:
    """What a BLOCKED mission waits for, and the command that continues it."""
    mid = mission.envelope.mission_id
    if mission.blocked_reason == enums_pb2.BLOCKED_REASON_BUDGET_EXCEEDED:
        return (f"mission {mid} is BLOCKED: budget exceeded ({mission.error.message or 'limit reached'}); "
                f"continue with: vpctl resume {mid} --max-tokens N / --max-cost-usd X")
    question = mission.input_request.question or mission.summary or "(no question given)"
    choices = f" [choices: {', '.join(mission.input_request.choices)}]" if mission.input_request.choices else ""
    return f"mission {mid} is BLOCKED and asks: {question}{choices}\nanswer with: vpctl resume {mid} --answer TEXT"


async def cmd_dispatch(args, ctx: Context) -> int:
    deadline = None
    if args.deadline_seconds is not None:
        deadline = datetime.now(timezone.utc) + timedelta(seconds=args.deadline_seconds)
    mc = ctx.mission_control
    mission, route, deduplicated = await mc.dispatch(
        args.vp_id, args.type, args.objective, idempotency_key=args.idempotency_key, target_path=args.target_path,
        constraints=args.constraints, labels=dict(args.label or []), priority=args.priority,
        max_attempts=args.max_attempts, deadline=deadline, budget_seconds=args.budget_seconds,
        max_tokens=args.max_tokens, max_cost_usd=args.max_cost_usd, fresh_context=args.fresh_context,
    )
    ctx.out.dispatched(mission, route, deduplicated)
    if exit_codes.fell_back_to_caller(route):
        _note(f"mission {mission.envelope.mission_id} fell back to the caller: {route.provenance or 'no lane'}")
        return exit_codes.NOT_COMPLETED
    if not args.wait:
        ended_badly = _stops(mission) and mission.state != enums_pb2.MISSION_STATE_COMPLETED
        return exit_codes.NOT_COMPLETED if ended_badly else exit_codes.OK
    final = await follow_mission(mc, mission.envelope.mission_id, ctx.out, args.wait_timeout)
    return _report_end(ctx, final, args.wait_timeout)


async def cmd_get(args, ctx: Context) -> int:
    ctx.out.mission(await ctx.mission_control.get(args.mission_id))
    return exit_codes.OK


async def cmd_list(args, ctx: Context) -> int:
    missions = [m async for m in ctx.mission_control.list(
        vp_id=args.vp_id or "", states=args.state or (), source_session_id=args.source_session or "",
        limit=args.limit, newest_first=not args.oldest_first)]
    ctx.out.missions(missions)
    return exit_codes.OK


async def cmd_wait(args, ctx: Context) -> int:
    mission = await ctx.mission_control.wait(args.mission_id, args.wait_timeout)
    return _report_end(ctx, mission, args.wait_timeout)


async def cmd_resume(args, ctx: Context) -> int:
    mc = ctx.mission_control
    mission = await mc.resume(args.mission_id, args.answer or "", max_tokens=args.max_tokens,
                              max_cost_usd=args.max_cost_usd)
    if not args.wait:
        ctx.out.mission(mission)
        return exit_codes.OK
    if not ctx.out.json:
        ctx.out.line(f"resumed {args.mission_id}: {mission_state_name(mission.state)}")
    final = await follow_mission(mc, args.mission_id, ctx.out, args.wait_timeout)
    return _report_end(ctx, final, args.wait_timeout)


async def cmd_reset_conversation(args, ctx: Context) -> int:
    ctx.out.sessions([await ctx.sessions.reset_conversation(args.vp_id, args.reason or "")])
    return exit_codes.OK


async def cmd_retire(args, ctx: Context) -> int:
    ctx.out.sessions([await ctx.sessions.retire_session(args.vp_id, args.reason or "")])
    return exit_codes.OK


async def cmd_revive(args, ctx: Context) -> int:
    ctx.out.sessions([await ctx.sessions.revive_session(args.vp_id, args.reason or "")])
    return exit_codes.OK


async def cmd_cancel(args, ctx: Context) -> int:
    ctx.out.mission(await ctx.mission_control.cancel(args.mission_id, args.reason or ""))
    return exit_codes.OK


async def cmd_artifacts(args, ctx: Context) -> int:
    mc = ctx.mission_control
    path = args.path or ""
    if args.out:
        files = await mc.read_artifacts_to_dir(args.mission_id, args.out, path)
        ctx.out.artifact_files(files)
    elif path:
        files = await mc.read_artifacts(args.mission_id, path)
        for name, data in files.items():
            ctx.out.artifact_content(name, data)
    else:
        ctx.out.artifact_files(await mc.list_artifacts(args.mission_id))
    return exit_codes.OK


async def cmd_sessions(args, ctx: Context) -> int:
    sessions = [s async for s in ctx.sessions.list_sessions(
        effective_statuses=args.status or (), stale=True if args.stale else None, vp_id_prefix=args.vp_prefix or "",
        limit=args.limit)]
    ctx.out.sessions(sessions)
    return exit_codes.OK


async def cmd_events(args, ctx: Context) -> int:
    mc = ctx.mission_control
    consumer = args.consumer or ""
    async for event in mc.events(after_event_id=args.after, consumer=consumer, mission_id=args.mission_id or "",
                                 vp_id=args.vp_id or "", event_types=args.type or (), follow=args.follow):
        ctx.out.event(event)
        if consumer:
            await mc.commit_cursor(consumer, event.event_id)
    return exit_codes.OK


async def cmd_flags(args, ctx: Context) -> int:
    mc = ctx.mission_control
    if args.action == "get":
        ctx.out.routing_flags(await mc.get_routing_flags())
        return exit_codes.OK
    changes = {"kill_switch": args.kill_switch, "enabled": args.enabled, "shadow": args.shadow,
               "force_fallback": args.force_fallback, "max_in_flight": args.max_in_flight,
               "max_queue_depth": args.max_queue}
    reply = await mc.set_routing_flags(args.vp_id, reason=args.reason or "", actor=args.actor or "", **changes)
    ctx.out.routing_flags(reply.flags)
    return exit_codes.OK


COMMANDS = {
    "dispatch": cmd_dispatch,
    "get": cmd_get,
    "list": cmd_list,
    "wait": cmd_wait,
    "cancel": cmd_cancel,
    "resume": cmd_resume,
    "reset-conversation": cmd_reset_conversation,
    "retire": cmd_retire,
    "revive": cmd_revive,
    "artifacts": cmd_artifacts,
    "sessions": cmd_sessions,
    "events": cmd_events,
    "rollout": cmd_rollout,
    "flags": cmd_flags,
}


async def run_command(args) -> int:
    ctx = Context(args)
    try:
        return await COMMANDS[args.command](args, ctx)
    finally:
        await ctx.close()


__all__ = ["COMMANDS", "Context", "follow_mission", "run_command"]
