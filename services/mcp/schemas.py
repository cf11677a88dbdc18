"""JSON Schemas of the vp_* tools: inputs (with descriptions written for a
model: what a field is for and when to set it) and structured outputs."""

from __future__ import annotations

from typing import Any

MISSION_STATES = ["QUEUED", "RUNNING", "BLOCKED", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]
SESSION_STATUSES = ["IDLE", "ACTIVE", "PAUSED", "DEGRADED", "RECOVERING", "RETIRED"]

#: Bounds the tools enforce (also stated in the schemas).
MAX_WAIT_SECONDS = 300
DEFAULT_WAIT_SECONDS = 60
MAX_LIST = 100
MAX_EVENTS = 200
DEFAULT_INLINE_BYTES = 64 * 1024
MAX_INLINE_BYTES = 512 * 1024


def _s(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema["type"]
    return {**schema, "type": [kind, "null"] if isinstance(kind, str) else [*kind, "null"]}


def _obj(properties: dict[str, Any], required: list[str], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if description:
        schema["description"] = description
    return schema


def _input(properties: dict[str, Any], required: list[str] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


MISSION_ID = _s("The mission id returned by vp_dispatch_mission (e.g. \"m-1b2c...\").", minLength=1, maxLength=128)

MISSION = _obj(
    {
        "mission_id": _s("Mission id; use it with every other vp_* tool."),
        "vp_id": _s("The lane (VP) the mission was requested for."),
        "mission_type": _s("The mission type given at dispatch."),
        "objective": _s("What the VP was asked to do."),
        "state": _s("Lifecycle state.", enum=MISSION_STATES),
        "terminal": {"type": "boolean", "description": "True once the mission can no longer change (COMPLETED, "
                     "FAILED, CANCELLED, TIMED_OUT)."},
        "attempt": {"type": "integer", "description": "1 for the first run; grows when a run is retried."},
        "summary": _s("The VP's short result summary (empty until it finishes)."),
        "error": _nullable(_obj({"code": _s("Stable error code."), "message": _s("What went wrong.")},
                                ["code", "message"], "Why the mission failed, if it did.")),
        "route": _obj({
            "decision": _s("DELEGATED (the VP runs it), SHADOW, or FALLBACK."),
            "lane": _s("The lane that runs it; empty when it fell back to the caller."),
            "requested_vp_id": _s("The lane originally requested."),
            "fallback_reason": _s("Why it fell back (DISABLED, FORCED, UNHEALTHY, OVER_CAPACITY, ...); empty if not."),
            "provenance": _s("Human-readable routing decision, e.g. \"fallback to caller: unhealthy\"."),
        }, ["decision", "lane", "requested_vp_id", "fallback_reason", "provenance"], "The routing decision."),
        "handle_it_yourself": {"type": "boolean", "description": "True when the dispatcher handed the mission back "
                               "to you (fallback to caller): no VP will run it, you must do the work yourself."},
        "blocked_reason": _s("Why it is BLOCKED: INPUT_REQUIRED, BUDGET_EXCEEDED, or empty."),
        "input_required": _nullable(_obj({"question": _s("The VP's question."),
                                          "choices": {"type": "array", "items": {"type": "string"},
                                                      "description": "Suggested answers, if any."}},
                                         ["question", "choices"],
                                         "Set while the mission is BLOCKED on a question; answer it with "
                                         "vp_resume_mission.")),
        "cancel_requested": {"type": "boolean", "description": "A cancel was requested and the VP is stopping."},
        "idempotency_key": _s("The key the mission was dispatched with."),
        "source": _obj({"session_id": _s("Originating session."), "turn_id": _s("Originating turn.")},
                       ["session_id", "turn_id"], "Where the mission came from."),
        "labels": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Labels."},
        "created_at": _nullable(_s("UTC timestamp (RFC 3339).")),
        "updated_at": _nullable(_s("UTC timestamp (RFC 3339).")),
        "started_at": _nullable(_s("UTC timestamp (RFC 3339).")),
        "completed_at": _nullable(_s("UTC timestamp (RFC 3339).")),
        "next_step": _s("What to do next with this mission, in one or two sentences."),
    },
    ["mission_id", "vp_id", "mission_type", "objective", "state", "terminal", "attempt", "summary", "error",
     "route", "handle_it_yourself", "blocked_reason", "input_required", "cancel_requested", "idempotency_key",
     "source", "labels", "created_at", "updated_at", "started_at", "completed_at", "next_step"],
    "A mission as the ledger holds it.",
)

EVENT = _obj({
    "event_id": {"type": "integer", "description": "Cursor: pass the last one seen as after_event_id."},
    "mission_id": _s("The mission (empty for session events)."),
    "vp_id": _s("The lane."),
    "event_type": _s("e.g. vp.mission.started, vp.mission.progress, vp.mission.completed, vp.session.degraded."),
    "emitted_at": _nullable(_s("UTC timestamp (RFC 3339).")),
    "payload": {"type": "object", "description": "Event details; progress events carry \"message\"."},
}, ["event_id", "mission_id", "vp_id", "event_type", "emitted_at", "payload"])

SESSION = _obj({
    "vp_id": _s("The lane, e.g. vp.coder.primary (CODIE) or vp.general.primary (the generalist)."),
    "status": _s("Stored status.", enum=SESSION_STATUSES),
    "effective_status": _s("Status after staleness checks; ACTIVE means a VP is serving the lane.",
                           enum=SESSION_STATUSES),
    "stale": {"type": "boolean", "description": "Lease expired or heartbeat overdue."},
    "stale_reason": _s("LEASE_EXPIRED, HEARTBEAT_OVERDUE, or empty."),
    "lease_owner": _s("The worker holding the lane."),
    "lease_expires_at": _nullable(_s("UTC timestamp (RFC 3339).")),
    "last_heartbeat_at": _nullable(_s("UTC timestamp (RFC 3339).")),
    "last_error": _s("Last error the session reported."),
    "accepts_missions": {"type": "boolean", "description": "True when a live VP serves this lane now; dispatches "
                         "to a lane that does not will fall back to you."},
}, ["vp_id", "status", "effective_status", "stale", "stale_reason", "lease_owner", "lease_expires_at",
    "last_heartbeat_at", "last_error", "accepts_missions"])

ARTIFACT = _obj({
    "path": _s("Relative path inside the mission's artifact directory."),
    "size": {"type": "integer", "description": "Size in bytes."},
    "inline": {"type": "boolean", "description": "True when content holds the whole file."},
    "content": _nullable(_s("The file's text, when inline.")),
    "omitted_reason": _nullable(_s("Why the content is not inline: binary, too_large (ask for it alone with path=, "
                                   "or a larger max_inline_bytes), or budget_used (ask for it alone with path=).")),
}, ["path", "size", "inline", "content", "omitted_reason"])


DISPATCH_INPUT = _input({
    "vp_id": _s("Which VP lane runs the mission: \"vp.coder.primary\" (CODIE: code changes, repositories, tests) or "
                "\"vp.general.primary\" (the generalist: research, writing, everything else). Omit it to let the "
                "dispatcher choose the lane from mission_type (the route's provenance then names the rule). "
                "vp_list_sessions shows the lanes and whether a VP is live on each.", minLength=1, maxLength=128),
    "mission_type": _s("The kind of work, e.g. \"code\", \"refactor\", \"test\" (CODIE's) or \"research\", "
                       "\"writing\", \"task\" (the generalist's); it picks the lane when vp_id is omitted.",
                       minLength=1, maxLength=64),
    "objective": _s("What the VP should do, self-contained: the VP does not see this conversation. Include "
                    "acceptance criteria and where results should go.", minLength=1, maxLength=65536),
    "idempotency_key": _s("Makes the dispatch safe to retry: the same key always returns the same mission instead of "
                          "creating a second one. Use one key per piece of work (e.g. \"<session>-<turn>-<n>\"). If "
                          "omitted, a key is derived from all the other arguments, so an identical retried call "
                          "returns the first mission (deduplicated=true); to run identical work again on purpose, "
                          "pass a new key.", minLength=1, maxLength=128),
    "source": _obj({
        "session_id": _s("Your conversation/session id, so results can find their way back."),
        "turn_id": _s("The user turn this mission serves."),
        "reply_mode": _s("How you will collect the result: sync (you wait in this turn), async (you check back "
                         "later), silent (recorded only).", enum=["sync", "async", "silent"]),
    }, [], "Where the mission comes from. Always set session_id (and turn_id when you have one)."),
    "target_path": _s("Absolute path the VP may write its result to, inside the lane's allowed roots. Omit to keep "
                      "results only in the mission's artifacts."),
    "constraints": {"type": "object", "description": "Free-form constraints for the VP (JSON object)."},
    "labels": {"type": "object", "additionalProperties": {"type": "string"},
               "description": "String labels for filtering and reporting."},
    "priority": {"type": "integer", "description": "Higher runs first within a lane (default 0).",
                 "minimum": -1000, "maximum": 1000},
    "budget_seconds": {"type": "number", "exclusiveMinimum": 0,
                       "description": "Upper bound on the run time of one attempt, in seconds."},
    "max_attempts": {"type": "integer", "minimum": 0, "maximum": 10,
                     "description": "Total attempts including the first; 0 means the server default."},
    "max_tokens": {"type": "integer", "minimum": 1, "description": "Token budget of the whole mission; reaching it "
                   "blocks the mission with BUDGET_EXCEEDED (resume it with a raised budget, or cancel it)."},
    "max_cost_usd": {"type": "number", "exclusiveMinimum": 0, "description": "Cost budget in USD, like max_tokens."},
    "fresh_context": {"type": "boolean", "description": "Start the VP without its memory of earlier missions "
                      "(default false: a VP continues its conversation across missions)."},
}, ["mission_type", "objective"])

DISPATCH_OUTPUT = _obj({
    "mission": MISSION,
    "deduplicated": {"type": "boolean", "description": "True when an earlier call with the same idempotency key "
                     "already created this mission (nothing new was started)."},
    "idempotency_key": _s("The key used (given or derived)."),
    "idempotency_key_derived": {"type": "boolean", "description": "True when the key was derived from the "
                                "arguments because none was given."},
}, ["mission", "deduplicated", "idempotency_key", "idempotency_key_derived"])

GET_INPUT = _input({"mission_id": MISSION_ID}, ["mission_id"])
MISSION_OUTPUT = _obj({"mission": MISSION}, ["mission"])

LIST_INPUT = _input({
    "vp_id": _s("Only missions of this lane."),
    "states": {"type": "array", "items": {"type": "string", "enum": MISSION_STATES}, "uniqueItems": True,
               "description": "Only missions in these states, e.g. [\"RUNNING\", \"BLOCKED\"]."},
    "source_session_id": _s("Only missions dispatched from this session (your own session id finds yours)."),
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIST,
              "description": f"At most this many missions, newest first (default 20, at most {MAX_LIST})."},
})
LIST_OUTPUT = _obj({
    "missions": {"type": "array", "items": MISSION},
    "count": {"type": "integer", "description": "Number of missions returned."},
    "truncated": {"type": "boolean", "description": "True when more missions match than limit allowed."},
}, ["missions", "count", "truncated"])

WAIT_INPUT = _input({
    "mission_id": MISSION_ID,
    "timeout_seconds": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS,
                        "description": f"How long to wait at most (default {DEFAULT_WAIT_SECONDS}, at most "
                                       f"{MAX_WAIT_SECONDS}). Returns as soon as the mission ends or blocks. If it is "
                                       "still running afterwards, call again or check back later; never poll faster "
                                       "than this tool waits."},
}, ["mission_id"])
WAIT_OUTPUT = _obj({
    "mission": MISSION,
    "timed_out": {"type": "boolean", "description": "True when the wait ended because timeout_seconds passed while "
                  "the mission was still queued or running."},
    "waited_seconds": {"type": "number", "description": "How long this call waited."},
    "progress_events": {"type": "integer", "description": "Mission events seen (and sent as progress "
                        "notifications) while waiting."},
}, ["mission", "timed_out", "waited_seconds", "progress_events"])

CANCEL_INPUT = _input({
    "mission_id": MISSION_ID,
    "reason": _s("Why, recorded with the cancel (e.g. \"user changed their mind\").", maxLength=1024),
}, ["mission_id"])

RESUME_INPUT = _input({
    "mission_id": MISSION_ID,
    "answer": _s("Your answer to the mission's input_required.question (ask the user first if you cannot answer "
                 "it yourself). Required when blocked_reason is INPUT_REQUIRED.", maxLength=32768),
    "max_tokens": {"type": "integer", "minimum": 1, "description": "Raised token budget, for a mission blocked "
                   "with BUDGET_EXCEEDED (must be above the usage reached)."},
    "max_cost_usd": {"type": "number", "exclusiveMinimum": 0, "description": "Raised cost budget in USD, for a "
                     "mission blocked with BUDGET_EXCEEDED."},
}, ["mission_id"])

ARTIFACTS_INPUT = _input({
    "mission_id": MISSION_ID,
    "path": _s("Only this file (relative path, as listed by an earlier call). Omit for every file."),
    "max_inline_bytes": {"type": "integer", "minimum": 1, "maximum": MAX_INLINE_BYTES,
                         "description": f"Text is returned inline up to this many bytes in total (default "
                                        f"{DEFAULT_INLINE_BYTES}, at most {MAX_INLINE_BYTES}); larger or binary "
                                        "files are only listed."},
}, ["mission_id"])
ARTIFACTS_OUTPUT = _obj({
    "mission_id": _s("The mission."),
    "files": {"type": "array", "items": ARTIFACT},
    "inline_bytes": {"type": "integer", "description": "Bytes of content returned inline."},
}, ["mission_id", "files", "inline_bytes"])

SESSIONS_INPUT = _input({
    "vp_id_prefix": _s("Only lanes whose vp_id starts with this, e.g. \"vp.coder\"."),
    "statuses": {"type": "array", "items": {"type": "string", "enum": SESSION_STATUSES}, "uniqueItems": True,
                 "description": "Only sessions with these effective statuses."},
    "stale_only": {"type": "boolean", "description": "Only stale sessions (lease expired or heartbeat overdue)."},
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIST, "description": "At most this many (default 50)."},
})
SESSIONS_OUTPUT = _obj({
    "sessions": {"type": "array", "items": SESSION},
    "count": {"type": "integer", "description": "Number of sessions returned."},
}, ["sessions", "count"])

EVENTS_INPUT = _input({
    "after_event_id": {"type": "integer", "minimum": 0, "description": "Cursor: only events after this id. Start "
                       "with 0, then pass next_after_event_id from the previous call."},
    "mission_id": _s("Only events of this mission."),
    "vp_id": _s("Only events of this lane."),
    "event_types": {"type": "array", "items": {"type": "string"}, "uniqueItems": True,
                    "description": "Only these event types, e.g. [\"vp.mission.completed\", \"vp.mission.failed\"]."},
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_EVENTS,
              "description": f"At most this many events (default 50, at most {MAX_EVENTS})."},
})
EVENTS_OUTPUT = _obj({
    "events": {"type": "array", "items": EVENT},
    "next_after_event_id": {"type": "integer", "description": "Pass this as after_event_id next time."},
    "more": {"type": "boolean", "description": "True when limit cut the list short: call again right away."},
}, ["events", "next_after_event_id", "more"])
