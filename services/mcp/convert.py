"""Protobuf records -> the JSON objects the tools return, plus the one-line
guidance (``next_step``) a model needs to decide what to do next."""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict

from services.client.states import is_terminal, mission_state_name, session_status_name
from services.common.contracts.vp.v1 import enums_pb2, event_pb2, mission_pb2, session_pb2
from services.common.timeutil import from_timestamp


def iso(ts) -> str | None:
    value = from_timestamp(ts) if ts is not None and ts.ByteSize() else None
    return value.isoformat().replace("+00:00", "Z") if value else None


def _enum(enum, value: int, prefix: str) -> str:
    try:
        name = enum.Name(value)
    except ValueError:
        return str(value)
    return "" if name.endswith("_UNSPECIFIED") else name.removeprefix(prefix)


def fell_back_to_caller(route: mission_pb2.Route) -> bool:
    """The dispatcher handed the mission back: the caller must do the work itself."""
    if route.decision != enums_pb2.ROUTE_DECISION_FALLBACK:
        return False
    return route.fallback_target.kind == enums_pb2.FALLBACK_TARGET_KIND_CALLER or not route.lane


def _has(message, field: str) -> bool:
    return field in message.DESCRIPTOR.fields_by_name


def blocked_reason(mission: mission_pb2.Mission) -> str:
    if not _has(mission, "blocked_reason"):
        return ""
    return _enum(enums_pb2.BlockedReason, mission.blocked_reason, "BLOCKED_REASON_")


def input_request(mission: mission_pb2.Mission) -> dict[str, Any] | None:
    """The agent's pending question, when the mission is BLOCKED on INPUT_REQUIRED."""
    if mission.state != enums_pb2.MISSION_STATE_BLOCKED or not _has(mission, "input_request"):
        return None
    if blocked_reason(mission) != "INPUT_REQUIRED":
        return None
    return {"question": mission.input_request.question, "choices": list(mission.input_request.choices)}


def next_step(mission: mission_pb2.Mission) -> str:
    mission_id = mission.envelope.mission_id
    state = mission.state
    if fell_back_to_caller(mission.route):
        return (f"Handle it yourself: the dispatcher handed mission {mission_id} back to you "
                f"({mission.route.provenance or 'fallback to caller'}). Do the work on your own path; do not re-dispatch "
                "it to the same lane right away.")
    if state == enums_pb2.MISSION_STATE_COMPLETED:
        return f"Completed. Read the result with vp_read_result_artifacts(mission_id={mission_id!r})."
    if state == enums_pb2.MISSION_STATE_BLOCKED:
        reason = blocked_reason(mission)
        if reason == "INPUT_REQUIRED":
            return (f"Blocked: the VP asks a question (input_required.question). Answer it with "
                    f"vp_resume_mission(mission_id={mission_id!r}, answer=...); ask the user first if you cannot "
                    "answer it yourself.")
        if reason == "BUDGET_EXCEEDED":
            return (f"Blocked: the budget ran out. With the user's consent raise it with "
                    f"vp_resume_mission(mission_id={mission_id!r}, max_tokens=... or max_cost_usd=...); otherwise "
                    "cancel it with vp_cancel_mission.")
        return "Blocked: it needs outside input. Inspect it with vp_get_mission or cancel it with vp_cancel_mission."
    if state in (enums_pb2.MISSION_STATE_FAILED, enums_pb2.MISSION_STATE_TIMED_OUT):
        return ("It did not complete (see error). Tell the user, then decide: handle the work yourself, or dispatch "
                "again with a new idempotency_key if the failure looks transient.")
    if state == enums_pb2.MISSION_STATE_CANCELLED:
        return "Cancelled. Nothing more will happen to it."
    if mission.cancel_requested:
        return "Cancel requested; the VP is stopping. vp_wait_mission shows when it has."
    return (f"Still {mission_state_name(state).lower()}. Wait with vp_wait_mission(mission_id={mission_id!r}), or "
            "carry on and check back later with vp_get_mission.")


def mission_dict(mission: mission_pb2.Mission) -> dict[str, Any]:
    env, route = mission.envelope, mission.route
    data: dict[str, Any] = {
        "mission_id": env.mission_id,
        "vp_id": env.vp_id,
        "mission_type": env.mission_type,
        "objective": env.objective,
        "state": mission_state_name(mission.state),
        "terminal": is_terminal(mission.state),
        "attempt": mission.attempt,
        "summary": mission.summary,
        "error": ({"code": mission.error.code, "message": mission.error.message}
                  if mission.error.code or mission.error.message else None),
        "route": {
            "decision": _enum(enums_pb2.RouteDecision, route.decision, "ROUTE_DECISION_"),
            "lane": route.lane,
            "requested_vp_id": route.requested_vp_id,
            "fallback_reason": _enum(enums_pb2.FallbackReason, route.fallback_reason, "FALLBACK_REASON_"),
            "provenance": route.provenance,
        },
        "handle_it_yourself": fell_back_to_caller(route),
        "blocked_reason": blocked_reason(mission),
        "input_required": input_request(mission),
        "cancel_requested": mission.cancel_requested,
        "idempotency_key": env.idempotency_key,
        "source": {"session_id": env.source.session_id, "turn_id": env.source.turn_id},
        "labels": dict(env.labels),
        "created_at": iso(mission.created_at),
        "updated_at": iso(mission.updated_at),
        "started_at": iso(mission.started_at),
        "completed_at": iso(mission.completed_at),
        "next_step": next_step(mission),
    }
    return data


def mission_text(data: dict[str, Any]) -> str:
    """Short text rendering of mission_dict."""
    head = f"mission {data['mission_id']} [{data['vp_id']}] {data['state']}"
    if data["attempt"] > 1:
        head += f" (attempt {data['attempt']})"
    lines = [head]
    if data["route"]["provenance"]:
        lines.append(f"route: {data['route']['provenance']}")
    if data["summary"]:
        lines.append(f"summary: {data['summary']}")
    if data["error"]:
        lines.append(f"error: {data['error']['code']}: {data['error']['message']}")
    if data["input_required"]:
        lines.append(f"question: {data['input_required']['question']}")
    lines.append(f"next: {data['next_step']}")
    return "\n".join(lines)


def event_dict(event: event_pb2.MissionEvent) -> dict[str, Any]:
    payload = MessageToDict(event.payload, preserving_proto_field_name=True) if event.HasField("payload") else {}
    return {"event_id": event.event_id, "mission_id": event.mission_id, "vp_id": event.vp_id,
            "event_type": event.event_type, "emitted_at": iso(event.emitted_at), "payload": payload}


def event_text(data: dict[str, Any]) -> str:
    payload = data["payload"]
    message = payload.get("message") if isinstance(payload, dict) else None
    subject = data["mission_id"] or data["vp_id"]
    return f"#{data['event_id']} {data['event_type']} {subject}" + (f": {message}" if message else "")


def session_dict(session: session_pb2.VpSession) -> dict[str, Any]:
    return {
        "vp_id": session.vp_id,
        "status": session_status_name(session.status),
        "effective_status": session_status_name(session.effective_status),
        "stale": session.stale,
        "stale_reason": _enum(enums_pb2.StaleReason, session.stale_reason, "STALE_REASON_"),
        "lease_owner": session.lease_owner,
        "lease_expires_at": iso(session.lease_expires_at),
        "last_heartbeat_at": iso(session.last_heartbeat_at),
        "last_error": session.last_error,
        "accepts_missions": session.effective_status == enums_pb2.SESSION_STATUS_ACTIVE and not session.stale,
    }
