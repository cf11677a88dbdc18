"""The vp_* tools: what each does with the dispatcher (or registry) and what it
returns, as (structured output, short text). Transport-free: the MCP server
(server.py) validates arguments, calls these and shapes the results."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from services.client import ClientError, MissionControlClient, SessionsClient, is_terminal
from services.common.contracts.vp.v1 import enums_pb2, mission_pb2
from services.mcp import schemas
from services.mcp.convert import event_dict, event_text, mission_dict, mission_text, session_dict
from services.mcp.errors import ToolFailure

log = logging.getLogger("vp.mcp")

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
Result = tuple[dict[str, Any], str]

#: Deadline of the final non-follow read that reports the events a wait raced past.
_WAIT_CATCH_UP_SECONDS = 5.0


async def _no_progress(progress: float, total: float | None = None, message: str | None = None) -> None:
    return None


@dataclass
class ToolContext:
    mission_control: MissionControlClient
    sessions: SessionsClient
    progress: ProgressFn = _no_progress


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    run: Callable[[ToolContext, dict[str, Any]], Awaitable[Result]]
    read_only: bool = True
    destructive: bool = False
    idempotent: bool = True


def derive_idempotency_key(arguments: dict[str, Any]) -> str:
    """A key from everything the caller asked for: a retried identical call maps to the same mission."""
    canonical = json.dumps({k: v for k, v in arguments.items() if k != "idempotency_key"}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return "mcp-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def _mission_result(mission: mission_pb2.Mission, **extra: Any) -> Result:
    data = mission_dict(mission)
    return {"mission": data, **extra}, mission_text(data)


def stops(mission: mission_pb2.Mission) -> bool:
    return is_terminal(mission.state) or mission.state == enums_pb2.MISSION_STATE_BLOCKED


# -- dispatch / get / list ----------------------------------------------------------------------------------------

async def dispatch_mission(tc: ToolContext, args: dict[str, Any]) -> Result:
    derived = "idempotency_key" not in args
    key = derive_idempotency_key(args) if derived else args["idempotency_key"]
    source = args.get("source") or {}
    mission, _route, deduplicated = await tc.mission_control.dispatch(
        args.get("vp_id", ""), args["mission_type"], args["objective"], idempotency_key=key,
        target_path=args.get("target_path"), constraints=args.get("constraints"), labels=args.get("labels"),
        priority=args.get("priority", 0), max_attempts=args.get("max_attempts", 0),
        budget_seconds=args.get("budget_seconds"), max_tokens=args.get("max_tokens"),
        max_cost_usd=args.get("max_cost_usd"), fresh_context=args.get("fresh_context", False),
        source={"session_id": source.get("session_id", ""), "turn_id": source.get("turn_id", ""),
                "reply_mode": source.get("reply_mode", 0)} if source else None,
    )
    structured, text = _mission_result(mission, deduplicated=deduplicated, idempotency_key=key,
                                       idempotency_key_derived=derived)
    prefix = "already dispatched (same idempotency key): " if deduplicated else "dispatched: "
    return structured, prefix + text


async def get_mission(tc: ToolContext, args: dict[str, Any]) -> Result:
    return _mission_result(await tc.mission_control.get(args["mission_id"]))


async def list_missions(tc: ToolContext, args: dict[str, Any]) -> Result:
    limit = args.get("limit", 20)
    found = [mission_dict(m) async for m in tc.mission_control.list(
        vp_id=args.get("vp_id", ""), states=args.get("states", ()),
        source_session_id=args.get("source_session_id", ""), page_size=limit + 1, limit=limit + 1, newest_first=True)]
    truncated = len(found) > limit
    missions = found[:limit]
    lines = [f"{len(missions)} mission(s), newest first" + (" (more match; raise limit or filter)" if truncated
                                                            else "")]
    lines += [f"- {m['mission_id']} [{m['vp_id']}] {m['state']}: {m['objective'][:80]}" for m in missions]
    return {"missions": missions, "count": len(missions), "truncated": truncated}, "\n".join(lines)


# -- wait, with progress from the event stream --------------------------------------------------------------------

async def wait_mission(tc: ToolContext, args: dict[str, Any]) -> Result:
    mission_id = args["mission_id"]
    timeout = min(float(args.get("timeout_seconds", schemas.DEFAULT_WAIT_SECONDS)), schemas.MAX_WAIT_SECONDS)
    mc = tc.mission_control
    started = time.monotonic()
    mission = await mc.get(mission_id)  # an unknown id fails here, before any waiting
    seen = 0
    last_event = 0
    # One report at a time, and the follower is only stopped between reports: a notification
    # cut off half-sent would be counted but never seen (the catch-up below skips counted events).
    reporting = asyncio.Lock()

    async def report(event) -> None:
        nonlocal seen, last_event
        async with reporting:
            if event.event_id <= last_event:
                return
            data = event_dict(event)
            message = data["payload"].get("message") if isinstance(data["payload"], dict) else None
            await tc.progress(seen + 1, None, f"{data['event_type']}: {message}" if message else data["event_type"])
            seen, last_event = seen + 1, event.event_id

    async def follow() -> None:
        async for event in mc.events(mission_id=mission_id, follow=True):
            await report(event)

    if not stops(mission):
        streamer = asyncio.create_task(follow())
        try:
            mission = await mc.wait(mission_id, timeout)
        finally:
            async with reporting:
                streamer.cancel()
            await asyncio.gather(streamer, return_exceptions=True)
    # Catch up: every event up to the end is reported, however the stream and the wait raced.
    try:
        async for event in mc.events(after_event_id=last_event, mission_id=mission_id,
                                     timeout=_WAIT_CATCH_UP_SECONDS):
            await report(event)
    except ClientError as error:  # progress is best effort; the mission itself is the answer
        log.info("wait %s: final progress read failed: %s", mission_id, error.summary())
    timed_out = not stops(mission)
    waited = round(time.monotonic() - started, 3)
    structured, text = _mission_result(mission, timed_out=timed_out, waited_seconds=waited, progress_events=seen)
    if timed_out:
        text = f"still {structured['mission']['state']} after {waited:g}s (wait timed out)\n" + text
    return structured, text


async def cancel_mission(tc: ToolContext, args: dict[str, Any]) -> Result:
    mission = await tc.mission_control.cancel(args["mission_id"], args.get("reason", ""))
    return _mission_result(mission)


async def resume_mission(tc: ToolContext, args: dict[str, Any]) -> Result:
    mission = await tc.mission_control.resume(args["mission_id"], args.get("answer", ""),
                                              max_tokens=args.get("max_tokens"),
                                              max_cost_usd=args.get("max_cost_usd"))
    structured, text = _mission_result(mission)
    return structured, "resumed: " + text


# -- artifacts -----------------------------------------------------------------------------------------------------

def _as_text(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


async def read_result_artifacts(tc: ToolContext, args: dict[str, Any]) -> Result:
    mission_id, path = args["mission_id"], args.get("path", "")
    budget = args.get("max_inline_bytes", schemas.DEFAULT_INLINE_BYTES)
    mc = tc.mission_control
    listed = await mc.list_artifacts(mission_id, path)
    files, used = [], 0
    for item in listed:
        entry: dict[str, Any] = {"path": item.path, "size": item.size, "inline": False, "content": None,
                                 "omitted_reason": None}
        if item.size > budget:
            entry["omitted_reason"] = "too_large"
        elif used + item.size > budget:
            entry["omitted_reason"] = "budget_used"
        else:
            data = (await mc.read_artifacts(mission_id, item.path, max_bytes=budget)).get(item.path, b"")
            text = _as_text(data)
            if text is None:
                entry["omitted_reason"] = "binary"
            else:
                entry.update(inline=True, content=text)
                used += len(data)
        files.append(entry)
    lines = [f"{len(files)} artifact file(s) of mission {mission_id}"]
    for entry in files:
        if entry["inline"]:
            lines += [f"--- {entry['path']} ({entry['size']} bytes)", entry["content"].rstrip("\n")]
        else:
            lines.append(f"--- {entry['path']} ({entry['size']} bytes, not inline: {entry['omitted_reason']})")
    return {"mission_id": mission_id, "files": files, "inline_bytes": used}, "\n".join(lines)


# -- sessions and events -------------------------------------------------------------------------------------------

async def list_sessions(tc: ToolContext, args: dict[str, Any]) -> Result:
    sessions = [session_dict(s) async for s in tc.sessions.list_sessions(
        effective_statuses=args.get("statuses", ()), stale=True if args.get("stale_only") else None,
        vp_id_prefix=args.get("vp_id_prefix", ""), limit=args.get("limit", 50))]
    lines = [f"{len(sessions)} VP session(s)"]
    lines += [f"- {s['vp_id']}: {s['effective_status']}" + (" (stale)" if s["stale"] else "")
              + ("" if s["accepts_missions"] else " - not serving: dispatches fall back to you") for s in sessions]
    return {"sessions": sessions, "count": len(sessions)}, "\n".join(lines)


async def get_events(tc: ToolContext, args: dict[str, Any]) -> Result:
    after = args.get("after_event_id", 0)
    limit = args.get("limit", 50)
    events: list[dict[str, Any]] = []
    more = False
    stream = tc.mission_control.events(after_event_id=after, mission_id=args.get("mission_id", ""),
                                       vp_id=args.get("vp_id", ""), event_types=args.get("event_types", ()))
    try:
        async for event in stream:
            if len(events) >= limit:
                more = True
                break
            events.append(event_dict(event))
    finally:
        await stream.aclose()
    cursor = events[-1]["event_id"] if events else after
    lines = [f"{len(events)} event(s) after #{after}; next cursor {cursor}" + (" (more waiting)" if more else "")]
    lines += [f"- {event_text(e)}" for e in events]
    return {"events": events, "next_after_event_id": cursor, "more": more}, "\n".join(lines)


# -- the catalogue -------------------------------------------------------------------------------------------------

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "vp_dispatch_mission", "Dispatch a mission to a VP",
        "Hand a long-running piece of work to a VP (a persistent worker agent) instead of doing it yourself: "
        "vp.coder.primary (CODIE) for code changes, vp.general.primary for research, writing and other tasks "
        "(or omit vp_id and the dispatcher picks the lane from mission_type). "
        "Returns at once with the mission (state QUEUED or RUNNING) and its mission_id; then wait for it with "
        "vp_wait_mission or check back later with vp_get_mission. Safe to retry: the idempotency_key (given or "
        "derived from the arguments) makes a repeated call return the same mission. If the result says "
        "handle_it_yourself=true, no VP will run it: do the work yourself. Clients that support MCP tasks may call "
        "this as a task: the task id is the mission id.",
        schemas.DISPATCH_INPUT, schemas.DISPATCH_OUTPUT, dispatch_mission,
        read_only=False, idempotent=True),
    ToolSpec(
        "vp_get_mission", "Get a mission",
        "Look up one mission by id: its state (QUEUED, RUNNING, BLOCKED, COMPLETED, FAILED, CANCELLED, TIMED_OUT), "
        "routing (did it fall back to you?), error, summary, the VP's question when it is blocked, and next_step. "
        "Does not wait; use vp_wait_mission to wait.",
        schemas.GET_INPUT, schemas.MISSION_OUTPUT, get_mission),
    ToolSpec(
        "vp_list_missions", "List missions",
        "List missions, newest first, optionally only one lane, some states, or the ones your session dispatched "
        "(source_session_id). Use it to find a mission id you lost or to see what is running or blocked.",
        schemas.LIST_INPUT, schemas.LIST_OUTPUT, list_missions),
    ToolSpec(
        "vp_wait_mission", "Wait for a mission",
        "Wait until a mission completes, fails, is cancelled, times out, or blocks on a question, for at most "
        f"timeout_seconds (default {schemas.DEFAULT_WAIT_SECONDS}, at most {schemas.MAX_WAIT_SECONDS}). Sends MCP "
        "progress notifications with the mission's events while waiting (pass a progressToken to see them). "
        "Returns the mission; timed_out=true means it is still going: call again or check back later. This is the "
        "only way to wait: do not loop on vp_get_mission.",
        schemas.WAIT_INPUT, schemas.WAIT_OUTPUT, wait_mission),
    ToolSpec(
        "vp_cancel_mission", "Cancel a mission",
        "Cancel a mission: a queued one stops at once; a running one is told to stop (cancel_requested=true until "
        "the VP has stopped; vp_wait_mission shows the end). Cancelling an ended mission changes nothing. Use it "
        "when the user no longer wants the work or it is going wrong.",
        schemas.CANCEL_INPUT, schemas.MISSION_OUTPUT, cancel_mission,
        read_only=False, destructive=True, idempotent=True),
    ToolSpec(
        "vp_resume_mission", "Answer a blocked mission and resume it",
        "Resume a BLOCKED mission. With blocked_reason INPUT_REQUIRED, pass the answer to its "
        "input_required.question (ask the user first when you cannot answer it yourself); with BUDGET_EXCEEDED, "
        "pass a raised max_tokens or max_cost_usd (only with the user's consent). The mission is queued again and "
        "the VP continues the same conversation with your answer; then wait for it with vp_wait_mission. Not "
        "idempotent: if a retry says the mission is not blocked, the first call already resumed it.",
        schemas.RESUME_INPUT, schemas.MISSION_OUTPUT, resume_mission,
        read_only=False, idempotent=False),
    ToolSpec(
        "vp_read_result_artifacts", "Read a mission's result files",
        "Read the result files a VP wrote for a mission (e.g. result.md). Text files come back inline up to "
        f"max_inline_bytes in total (default {schemas.DEFAULT_INLINE_BYTES}); binary or larger files are listed with "
        "their size and why they are not inline; ask for one file with path= to read it alone. Use it after "
        "vp_wait_mission says COMPLETED (or FAILED, to see partial output).",
        schemas.ARTIFACTS_INPUT, schemas.ARTIFACTS_OUTPUT, read_result_artifacts),
    ToolSpec(
        "vp_list_sessions", "List VP sessions",
        "List the VP lanes and whether a live VP serves each (accepts_missions). Use it to choose a lane before "
        "dispatching, or to explain why missions fall back to you (no live VP on the lane).",
        schemas.SESSIONS_INPUT, schemas.SESSIONS_OUTPUT, list_sessions),
    ToolSpec(
        "vp_get_events", "Read mission and session events",
        "Read the durable event log after a cursor: mission lifecycle (dispatched, started, progress, blocked, "
        "completed, failed, fallback, ...) and VP session changes. Bounded by limit; pass next_after_event_id back "
        "as after_event_id to continue. Use it to catch up on what happened to missions you dispatched earlier "
        "(async reply mode). Returns at once; it never waits for new events.",
        schemas.EVENTS_INPUT, schemas.EVENTS_OUTPUT, get_events),
)

TOOL_NAMES = tuple(tool.name for tool in TOOLS)
