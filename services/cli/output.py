"""Rendering: concise human lines and tables, or (--json) protobuf JSON mapping,
one object per line."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from services.client.artifacts import ArtifactFile
from services.client.states import mission_state_name, session_status_name
from services.common.contracts.vp.v1 import enums_pb2, event_pb2, mission_pb2, session_pb2
from services.common.timeutil import from_duration, from_timestamp


def to_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def when(ts) -> str:
    value = from_timestamp(ts)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


def clip(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def enum_short(enum, value: int, prefix: str) -> str:
    try:
        return enum.Name(value).removeprefix(prefix)
    except ValueError:
        return str(value)


def route_text(route: mission_pb2.Route) -> str:
    if route.provenance:
        return route.provenance
    decision = enum_short(enums_pb2.RouteDecision, route.decision, "ROUTE_DECISION_").lower()
    return f"{decision} {route.lane}".strip()


def event_message(event: event_pb2.MissionEvent) -> str:
    payload = to_dict(event.payload) if event.HasField("payload") else {}
    message = payload.pop("message", None)
    if message is not None:
        return str(message)
    return json.dumps(payload, sort_keys=True, separators=(",", ":")) if payload else ""


def usage_text(usage: mission_pb2.Usage) -> str:
    text = f"{usage.total_tokens} tokens ({usage.input_tokens} in, {usage.cached_input_tokens} cached, " \
           f"{usage.output_tokens} out), {usage.cost_usd:.4f} USD"
    return text + (f", {usage.model}" if usage.model else "")


def conversation_text(conversation: session_pb2.AgentConversation) -> str:
    return f"{conversation.agent}:{conversation.conversation_id}" if conversation.conversation_id else "-"


def agent_fields(mission: mission_pb2.Mission) -> list[tuple[str, str]]:
    """Agent protocol v1: usage, budget, why blocked, the question and answer, the conversation."""
    fields: list[tuple[str, str]] = []
    if mission.HasField("usage"):
        fields.append(("usage", usage_text(mission.usage)))
    budget = mission.budget if mission.HasField("budget") else mission.envelope.budget
    limits = []
    if budget.HasField("max_tokens"):
        limits.append(f"{budget.max_tokens} tokens")
    if budget.HasField("max_cost_usd"):
        limits.append(f"{budget.max_cost_usd:g} USD")
    if limits:
        fields.append(("limits", ", ".join(limits)))
    if mission.state == enums_pb2.MISSION_STATE_BLOCKED and mission.blocked_reason:
        fields.append(("blocked", enum_short(enums_pb2.BlockedReason, mission.blocked_reason,
                                             "BLOCKED_REASON_").lower()))
    if mission.input_request.question:
        choices = mission.input_request.choices
        fields.append(("question", clip(mission.input_request.question, 300)
                       + (f" [choices: {', '.join(choices)}]" if choices else "")))
    if mission.answer:
        fields.append(("answer", clip(mission.answer, 200)))
    if mission.HasField("conversation"):
        fields.append(("conversation", conversation_text(mission.conversation)))
    return fields


class Output:
    def __init__(self, json_mode: bool, stream: TextIO | None = None) -> None:
        self.json = json_mode
        self.stream = stream or sys.stdout

    # -- primitives -------------------------------------------------------------

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def obj(self, value: Message | Mapping[str, Any]) -> None:
        data = to_dict(value) if isinstance(value, Message) else dict(value)
        self.line(json.dumps(data, sort_keys=False, separators=(",", ":"), default=str))

    def table(self, header: Sequence[str], rows: list[Sequence[str]]) -> None:
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
        for row in [header, *rows]:
            cells = [str(cell).ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [str(row[-1])]
            self.line("  ".join(cells).rstrip())

    # -- missions ---------------------------------------------------------------

    def dispatched(self, mission: mission_pb2.Mission, route: mission_pb2.Route, deduplicated: bool) -> None:
        if self.json:
            self.obj({"mission": to_dict(mission), "route": to_dict(route), "deduplicated": deduplicated})
            return
        mid = mission.envelope.mission_id
        verb = "existing mission" if deduplicated else "dispatched"
        self.line(f"{verb} {mid}: {mission_state_name(mission.state)}, {route_text(route)} "
                  f"(idempotency key {mission.envelope.idempotency_key})")

    def mission(self, mission: mission_pb2.Mission, *, timed_out: bool | None = None) -> None:
        if self.json:
            if timed_out is None:
                self.obj(mission)
            else:
                self.obj({"mission": to_dict(mission), "timed_out": timed_out})
            return
        env = mission.envelope
        fields: list[tuple[str, str]] = [
            ("mission", env.mission_id),
            ("state", mission_state_name(mission.state) + (" (cancel requested)" if mission.cancel_requested else "")),
            ("vp", env.vp_id),
            ("type", env.mission_type),
            ("objective", clip(env.objective, 100)),
            ("route", route_text(mission.route)),
            ("attempt", f"{mission.attempt}" + (f" of {env.max_attempts}" if env.max_attempts else "")),
            ("created", when(mission.created_at)),
            ("updated", when(mission.updated_at)),
        ]
        if mission.HasField("completed_at"):
            fields.append(("completed", when(mission.completed_at)))
        if env.HasField("deadline"):
            fields.append(("deadline", when(env.deadline)))
        if env.HasField("budget") and env.budget.HasField("max_duration"):
            fields.append(("budget", f"{from_duration(env.budget.max_duration).total_seconds():g}s"))
        if env.target_path:
            fields.append(("target", env.target_path))
        if env.labels:
            fields.append(("labels", ",".join(f"{k}={v}" for k, v in sorted(env.labels.items()))))
        if mission.summary:
            fields.append(("summary", clip(mission.summary, 200)))
        fields += agent_fields(mission)
        if mission.error.code or mission.error.message:
            fields.append(("error", f"{mission.error.code}: {mission.error.message}".strip(": ")))
        if mission.result_ref:
            fields.append(("result", mission.result_ref))
        width = max(len(k) for k, _ in fields)
        for key, value in fields:
            self.line(f"{key.ljust(width)}  {value}")

    def missions(self, missions: list[mission_pb2.Mission]) -> None:
        if self.json:
            for mission in missions:
                self.obj(mission)
            return
        rows = [[m.envelope.mission_id, m.envelope.vp_id, mission_state_name(m.state), str(m.attempt),
                 m.envelope.mission_type, when(m.updated_at), clip(m.envelope.objective, 50)] for m in missions]
        self.table(["MISSION", "VP", "STATE", "ATTEMPT", "TYPE", "UPDATED", "OBJECTIVE"], rows)

    # -- events -------------------------------------------------------------------

    def event(self, event: event_pb2.MissionEvent, *, wrapped: bool = False) -> None:
        if self.json:
            self.obj({"event": to_dict(event)} if wrapped else to_dict(event))
            return
        kind = event.event_type.removeprefix("vp.mission.").removeprefix("vp.")
        subject = event.mission_id or event.vp_id
        text = event_message(event)
        if wrapped:  # progress of the mission being followed: it is implied
            self.line(f"  {when(event.emitted_at)}  {kind}" + (f"  {text}" if text else ""))
        else:
            self.line(f"#{event.event_id}  {when(event.emitted_at)}  {kind}  {subject}" + (f"  {text}" if text else ""))

    # -- routing flags ----------------------------------------------------------------

    def routing_flags(self, flags) -> None:
        if self.json:
            self.obj(flags)
            return
        self.line(f"kill switch: {'ON' if flags.kill_switch else 'off'}  (read {when(flags.read_at)})")
        rows = [[lane.vp_id, "yes" if lane.enabled else "no", "yes" if lane.shadow else "no",
                 "yes" if lane.force_fallback else "no", str(lane.max_in_flight), str(lane.max_queue_depth),
                 "set" if lane.quotas_set else "default", str(lane.version), lane.updated_by or "-"]
                for lane in flags.lanes]
        self.table(["LANE", "ENABLED", "SHADOW", "FORCE_FALLBACK", "MAX_IN_FLIGHT", "MAX_QUEUE", "QUOTAS", "VERSION",
                    "BY"], rows)

    # -- sessions -------------------------------------------------------------------

    def sessions(self, sessions: list[session_pb2.VpSession]) -> None:
        if self.json:
            for session in sessions:
                self.obj(session)
            return
        rows = []
        for s in sessions:
            stale = enum_short(enums_pb2.StaleReason, s.stale_reason, "STALE_REASON_").lower() if s.stale else "-"
            rows.append([s.vp_id, session_status_name(s.status), session_status_name(s.effective_status), stale,
                         str(s.lease_epoch), s.lease_owner or "-", when(s.last_heartbeat_at)])
            rows[-1].append(conversation_text(s.conversation) if s.HasField("conversation") else "-")
        self.table(["VP", "STATUS", "EFFECTIVE", "STALE", "EPOCH", "OWNER", "HEARTBEAT", "CONVERSATION"], rows)

    # -- artifacts ------------------------------------------------------------------

    def artifact_files(self, files: list[ArtifactFile]) -> None:
        if self.json:
            for f in files:
                entry: dict[str, Any] = {"path": f.path, "size": f.size}
                if f.local_path is not None:
                    entry["local_path"] = str(f.local_path)
                self.obj(entry)
            return
        rows = [[str(f.size), str(f.local_path) if f.local_path is not None else f.path] for f in files]
        self.table(["SIZE", "PATH"], rows)

    def artifact_content(self, path: str, data: bytes) -> None:
        if self.json:
            self.obj({"path": path, "size": len(data), "data": base64.b64encode(data).decode("ascii")})
            return
        self.stream.flush()
        buffer = getattr(self.stream, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            self.stream.write(data.decode("utf-8", errors="replace"))
            self.stream.flush()
