import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.common.contracts.vp.v1 import enums_pb2 as _enums_pb2
from services.common.contracts.vp.v1 import session_pb2 as _session_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MissionEnvelope(_message.Message):
    __slots__ = ("schema_version", "mission_id", "vp_id", "mission_type", "objective", "constraints", "budget", "idempotency_key", "priority", "source", "target_path", "labels", "max_attempts", "deadline", "trace", "fresh_context")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    MISSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_PATH_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    FRESH_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    schema_version: int
    mission_id: str
    vp_id: str
    mission_type: str
    objective: str
    constraints: _struct_pb2.Struct
    budget: Budget
    idempotency_key: str
    priority: int
    source: Source
    target_path: str
    labels: _containers.ScalarMap[str, str]
    max_attempts: int
    deadline: _timestamp_pb2.Timestamp
    trace: TraceContext
    fresh_context: bool
    def __init__(self, schema_version: _Optional[int] = ..., mission_id: _Optional[str] = ..., vp_id: _Optional[str] = ..., mission_type: _Optional[str] = ..., objective: _Optional[str] = ..., constraints: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., priority: _Optional[int] = ..., source: _Optional[_Union[Source, _Mapping]] = ..., target_path: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., max_attempts: _Optional[int] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trace: _Optional[_Union[TraceContext, _Mapping]] = ..., fresh_context: _Optional[bool] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("max_duration", "max_tokens", "max_cost_usd")
    MAX_DURATION_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    max_duration: _duration_pb2.Duration
    max_tokens: int
    max_cost_usd: float
    def __init__(self, max_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_tokens: _Optional[int] = ..., max_cost_usd: _Optional[float] = ...) -> None: ...

class Source(_message.Message):
    __slots__ = ("session_id", "turn_id", "reply_mode")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    REPLY_MODE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    turn_id: str
    reply_mode: _enums_pb2.ReplyMode
    def __init__(self, session_id: _Optional[str] = ..., turn_id: _Optional[str] = ..., reply_mode: _Optional[_Union[_enums_pb2.ReplyMode, str]] = ...) -> None: ...

class TraceContext(_message.Message):
    __slots__ = ("traceparent", "tracestate")
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    traceparent: str
    tracestate: str
    def __init__(self, traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ...) -> None: ...

class FallbackTarget(_message.Message):
    __slots__ = ("kind", "vp_id")
    KIND_FIELD_NUMBER: _ClassVar[int]
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    kind: _enums_pb2.FallbackTargetKind
    vp_id: str
    def __init__(self, kind: _Optional[_Union[_enums_pb2.FallbackTargetKind, str]] = ..., vp_id: _Optional[str] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("decision", "lane", "requested_vp_id", "fallback_reason", "fallback_target", "provenance", "decided_at")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    LANE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_VP_ID_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_TARGET_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    decision: _enums_pb2.RouteDecision
    lane: str
    requested_vp_id: str
    fallback_reason: _enums_pb2.FallbackReason
    fallback_target: FallbackTarget
    provenance: str
    decided_at: _timestamp_pb2.Timestamp
    def __init__(self, decision: _Optional[_Union[_enums_pb2.RouteDecision, str]] = ..., lane: _Optional[str] = ..., requested_vp_id: _Optional[str] = ..., fallback_reason: _Optional[_Union[_enums_pb2.FallbackReason, str]] = ..., fallback_target: _Optional[_Union[FallbackTarget, _Mapping]] = ..., provenance: _Optional[str] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MissionError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ShadowOutcome(_message.Message):
    __slots__ = ("shadow_mission_id", "state", "latency")
    SHADOW_MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    shadow_mission_id: str
    state: _enums_pb2.MissionState
    latency: _duration_pb2.Duration
    def __init__(self, shadow_mission_id: _Optional[str] = ..., state: _Optional[_Union[_enums_pb2.MissionState, str]] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Mission(_message.Message):
    __slots__ = ("envelope", "state", "attempt", "route", "result_ref", "error", "created_at", "updated_at", "started_at", "completed_at", "run_id", "session_id", "lease_epoch", "worker_owner", "cancel_requested", "shadow_of_mission_id", "shadow", "summary", "usage", "blocked_reason", "input_request", "answer", "conversation", "budget", "resume_count")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    RESULT_REF_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    WORKER_OWNER_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    SHADOW_OF_MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_REASON_FIELD_NUMBER: _ClassVar[int]
    INPUT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    RESUME_COUNT_FIELD_NUMBER: _ClassVar[int]
    envelope: MissionEnvelope
    state: _enums_pb2.MissionState
    attempt: int
    route: Route
    result_ref: str
    error: MissionError
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    run_id: str
    session_id: str
    lease_epoch: int
    worker_owner: str
    cancel_requested: bool
    shadow_of_mission_id: str
    shadow: ShadowOutcome
    summary: str
    usage: Usage
    blocked_reason: _enums_pb2.BlockedReason
    input_request: InputRequest
    answer: str
    conversation: _session_pb2.AgentConversation
    budget: Budget
    resume_count: int
    def __init__(self, envelope: _Optional[_Union[MissionEnvelope, _Mapping]] = ..., state: _Optional[_Union[_enums_pb2.MissionState, str]] = ..., attempt: _Optional[int] = ..., route: _Optional[_Union[Route, _Mapping]] = ..., result_ref: _Optional[str] = ..., error: _Optional[_Union[MissionError, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., run_id: _Optional[str] = ..., session_id: _Optional[str] = ..., lease_epoch: _Optional[int] = ..., worker_owner: _Optional[str] = ..., cancel_requested: _Optional[bool] = ..., shadow_of_mission_id: _Optional[str] = ..., shadow: _Optional[_Union[ShadowOutcome, _Mapping]] = ..., summary: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., blocked_reason: _Optional[_Union[_enums_pb2.BlockedReason, str]] = ..., input_request: _Optional[_Union[InputRequest, _Mapping]] = ..., answer: _Optional[str] = ..., conversation: _Optional[_Union[_session_pb2.AgentConversation, _Mapping]] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., resume_count: _Optional[int] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("input_tokens", "cached_input_tokens", "output_tokens", "total_tokens", "cost_usd", "model")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float
    model: str
    def __init__(self, input_tokens: _Optional[int] = ..., cached_input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ..., model: _Optional[str] = ...) -> None: ...

class InputRequest(_message.Message):
    __slots__ = ("question", "choices")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    question: str
    choices: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, question: _Optional[str] = ..., choices: _Optional[_Iterable[str]] = ...) -> None: ...
