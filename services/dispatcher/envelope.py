"""Envelope validation at the edge, and the canonical form idempotency compares.

Everything is checked before anything is stored; all problems are reported
together as BadRequest field violations.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime

from google.protobuf.json_format import MessageToDict

from services.common.contracts.vp.v1 import mission_pb2
from services.common.errors import FieldViolation, InvalidArgument, PathNotAllowed, TooLarge
from services.common.timeutil import from_duration, from_timestamp
from services.common.validation import check_mission_id, check_vp_id
from services.dispatcher.settings import DispatcherSettings
from services.common.guardrails import PathPolicy

SCHEMA_VERSION = 1
MISSION_TYPE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
TRACEPARENT_PATTERN = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def validate(envelope: mission_pb2.MissionEnvelope, settings: DispatcherSettings, now: datetime) -> None:
    limits = settings.limits
    if envelope.ByteSize() > limits.envelope_bytes:
        raise TooLarge(f"envelope is {envelope.ByteSize()} bytes; at most {limits.envelope_bytes}",
                       metadata={"limit_bytes": str(limits.envelope_bytes)})
    v: list[FieldViolation] = []
    if envelope.schema_version > SCHEMA_VERSION:
        v.append(FieldViolation("envelope.schema_version", f"this server speaks up to {SCHEMA_VERSION}"))
    v += check_mission_id(envelope.mission_id, "envelope.mission_id", required=False)
    intent = None if envelope.vp_id else settings.intent_rules().rule_for(envelope.mission_type)
    if envelope.vp_id or intent is None:
        # Optional only when an intent rule maps the mission type.
        v += check_vp_id(envelope.vp_id, "envelope.vp_id")
    if not envelope.mission_type:
        v.append(FieldViolation("envelope.mission_type", "required"))
    elif len(envelope.mission_type) > limits.mission_type_chars or not MISSION_TYPE_PATTERN.match(
            envelope.mission_type):
        v.append(FieldViolation("envelope.mission_type",
                                f"1..{limits.mission_type_chars} chars matching {MISSION_TYPE_PATTERN.pattern}"))
    objective_bytes = len(envelope.objective.encode())
    if not envelope.objective.strip():
        v.append(FieldViolation("envelope.objective", "required"))
    elif objective_bytes > limits.objective_bytes:
        v.append(FieldViolation("envelope.objective", f"at most {limits.objective_bytes} bytes"))
    if envelope.constraints.ByteSize() > limits.constraints_bytes:
        v.append(FieldViolation("envelope.constraints", f"at most {limits.constraints_bytes} bytes serialized"))
    if len(envelope.idempotency_key) > limits.idempotency_key_chars:
        v.append(FieldViolation("envelope.idempotency_key", f"at most {limits.idempotency_key_chars} chars"))
    low, high = limits.priority_range
    if not low <= envelope.priority <= high:
        v.append(FieldViolation("envelope.priority", f"must be within {low}..{high}"))
    if envelope.max_attempts > limits.max_attempts:
        v.append(FieldViolation("envelope.max_attempts", f"at most {limits.max_attempts}"))
    if len(envelope.labels) > limits.labels:
        v.append(FieldViolation("envelope.labels", f"at most {limits.labels} entries"))
    for key, value in envelope.labels.items():
        if not key or len(key) > limits.label_key_chars or len(value) > limits.label_value_chars:
            v.append(FieldViolation(f"envelope.labels[{key!r}]",
                                    f"key 1..{limits.label_key_chars} chars, value at most "
                                    f"{limits.label_value_chars} chars"))
    deadline = from_timestamp(envelope.deadline) if envelope.HasField("deadline") else None
    if deadline is not None and deadline <= now:
        v.append(FieldViolation("envelope.deadline", "must be in the future"))
    if envelope.HasField("budget"):
        duration = from_duration(envelope.budget.max_duration)
        if duration is not None and not (1 <= duration.total_seconds() <= limits.max_duration.total_seconds()):
            v.append(FieldViolation("envelope.budget.max_duration", f"0 or 1 s..{limits.max_duration}"))
        if envelope.budget.HasField("max_tokens") and envelope.budget.max_tokens <= 0:
            v.append(FieldViolation("envelope.budget.max_tokens", "must be positive when set"))
        if envelope.budget.HasField("max_cost_usd") and envelope.budget.max_cost_usd <= 0:
            v.append(FieldViolation("envelope.budget.max_cost_usd", "must be positive when set"))
    if envelope.trace.traceparent and not TRACEPARENT_PATTERN.match(envelope.trace.traceparent):
        v.append(FieldViolation("envelope.trace.traceparent", "must be a W3C traceparent"))
    if not v and envelope.vp_id and envelope.vp_id not in settings.lanes:
        raise InvalidArgument(FieldViolation("envelope.vp_id", f"no lane {envelope.vp_id!r}; lanes: "
                                             f"{', '.join(sorted(settings.lanes))}"), reason="UNKNOWN_VP")
    if v:
        raise InvalidArgument(v)
    if envelope.target_path:
        policy = PathPolicy(allowed_roots=settings.allowed_roots, protected_roots=settings.protected_roots)
        try:
            policy.check_target_path(envelope.target_path)
        except PathNotAllowed as refused:
            raise InvalidArgument(FieldViolation("envelope.target_path", refused.message),
                                  reason="PATH_NOT_ALLOWED") from None


def normalized(envelope: mission_pb2.MissionEnvelope, settings: DispatcherSettings) -> mission_pb2.MissionEnvelope:
    """A copy with server defaults filled in: schema version, mission id, attempts."""
    result = mission_pb2.MissionEnvelope()
    result.CopyFrom(envelope)
    result.schema_version = SCHEMA_VERSION
    if not result.mission_id:
        result.mission_id = f"m-{uuid.uuid4().hex}"
    if result.max_attempts == 0:
        result.max_attempts = settings.default_max_attempts
    return result


def canonical_hash(envelope: mission_pb2.MissionEnvelope) -> str:
    """What idempotency compares: the caller's envelope without trace context
    (a retry carries a new span) and without a server-assigned mission id."""
    canon = mission_pb2.MissionEnvelope()
    canon.CopyFrom(envelope)
    canon.ClearField("trace")
    canon.schema_version = SCHEMA_VERSION
    return hashlib.sha256(canon.SerializeToString(deterministic=True)).hexdigest()


def to_dict(envelope: mission_pb2.MissionEnvelope) -> dict:
    return MessageToDict(envelope, preserving_proto_field_name=True)
