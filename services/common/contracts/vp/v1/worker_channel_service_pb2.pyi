import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.common.contracts.vp.v1 import enums_pb2 as _enums_pb2
from services.common.contracts.vp.v1 import mission_pb2 as _mission_pb2
from services.common.contracts.vp.v1 import session_pb2 as _session_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConnectRequest(_message.Message):
    __slots__ = ("hello", "heartbeat", "started", "progress", "result", "draining", "hand_back")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    HAND_BACK_FIELD_NUMBER: _ClassVar[int]
    hello: WorkerHello
    heartbeat: WorkerHeartbeat
    started: MissionStarted
    progress: MissionProgress
    result: MissionResult
    draining: WorkerDraining
    hand_back: MissionHandBack
    def __init__(self, hello: _Optional[_Union[WorkerHello, _Mapping]] = ..., heartbeat: _Optional[_Union[WorkerHeartbeat, _Mapping]] = ..., started: _Optional[_Union[MissionStarted, _Mapping]] = ..., progress: _Optional[_Union[MissionProgress, _Mapping]] = ..., result: _Optional[_Union[MissionResult, _Mapping]] = ..., draining: _Optional[_Union[WorkerDraining, _Mapping]] = ..., hand_back: _Optional[_Union[MissionHandBack, _Mapping]] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("welcome", "assignment", "cancel", "result_accepted", "lease_renewed")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    RESULT_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    LEASE_RENEWED_FIELD_NUMBER: _ClassVar[int]
    welcome: DispatcherWelcome
    assignment: MissionAssignment
    cancel: MissionCancel
    result_accepted: ResultAccepted
    lease_renewed: LeaseRenewed
    def __init__(self, welcome: _Optional[_Union[DispatcherWelcome, _Mapping]] = ..., assignment: _Optional[_Union[MissionAssignment, _Mapping]] = ..., cancel: _Optional[_Union[MissionCancel, _Mapping]] = ..., result_accepted: _Optional[_Union[ResultAccepted, _Mapping]] = ..., lease_renewed: _Optional[_Union[LeaseRenewed, _Mapping]] = ...) -> None: ...

class WorkerHello(_message.Message):
    __slots__ = ("vp_id", "owner", "session_id", "lease_epoch", "capacity", "runtime_id", "running_mission_ids")
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_ID_FIELD_NUMBER: _ClassVar[int]
    RUNNING_MISSION_IDS_FIELD_NUMBER: _ClassVar[int]
    vp_id: str
    owner: str
    session_id: str
    lease_epoch: int
    capacity: int
    runtime_id: str
    running_mission_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, vp_id: _Optional[str] = ..., owner: _Optional[str] = ..., session_id: _Optional[str] = ..., lease_epoch: _Optional[int] = ..., capacity: _Optional[int] = ..., runtime_id: _Optional[str] = ..., running_mission_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class WorkerHeartbeat(_message.Message):
    __slots__ = ("lease_epoch", "running_mission_ids", "seq")
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    RUNNING_MISSION_IDS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    lease_epoch: int
    running_mission_ids: _containers.RepeatedScalarFieldContainer[str]
    seq: int
    def __init__(self, lease_epoch: _Optional[int] = ..., running_mission_ids: _Optional[_Iterable[str]] = ..., seq: _Optional[int] = ...) -> None: ...

class MissionStarted(_message.Message):
    __slots__ = ("mission_id", "attempt", "lease_epoch", "run_id")
    MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    mission_id: str
    attempt: int
    lease_epoch: int
    run_id: str
    def __init__(self, mission_id: _Optional[str] = ..., attempt: _Optional[int] = ..., lease_epoch: _Optional[int] = ..., run_id: _Optional[str] = ...) -> None: ...

class MissionProgress(_message.Message):
    __slots__ = ("mission_id", "attempt", "lease_epoch", "seq", "message", "payload", "usage")
    MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    mission_id: str
    attempt: int
    lease_epoch: int
    seq: int
    message: str
    payload: _struct_pb2.Struct
    usage: _mission_pb2.Usage
    def __init__(self, mission_id: _Optional[str] = ..., attempt: _Optional[int] = ..., lease_epoch: _Optional[int] = ..., seq: _Optional[int] = ..., message: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., usage: _Optional[_Union[_mission_pb2.Usage, _Mapping]] = ...) -> None: ...

class MissionResult(_message.Message):
    __slots__ = ("mission_id", "attempt", "lease_epoch", "outcome", "result_ref", "error", "summary", "usage", "blocked_reason", "input_request", "conversation")
    MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    RESULT_REF_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_REASON_FIELD_NUMBER: _ClassVar[int]
    INPUT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    mission_id: str
    attempt: int
    lease_epoch: int
    outcome: _enums_pb2.MissionState
    result_ref: str
    error: _mission_pb2.MissionError
    summary: str
    usage: _mission_pb2.Usage
    blocked_reason: _enums_pb2.BlockedReason
    input_request: _mission_pb2.InputRequest
    conversation: _session_pb2.AgentConversation
    def __init__(self, mission_id: _Optional[str] = ..., attempt: _Optional[int] = ..., lease_epoch: _Optional[int] = ..., outcome: _Optional[_Union[_enums_pb2.MissionState, str]] = ..., result_ref: _Optional[str] = ..., error: _Optional[_Union[_mission_pb2.MissionError, _Mapping]] = ..., summary: _Optional[str] = ..., usage: _Optional[_Union[_mission_pb2.Usage, _Mapping]] = ..., blocked_reason: _Optional[_Union[_enums_pb2.BlockedReason, str]] = ..., input_request: _Optional[_Union[_mission_pb2.InputRequest, _Mapping]] = ..., conversation: _Optional[_Union[_session_pb2.AgentConversation, _Mapping]] = ...) -> None: ...

class WorkerDraining(_message.Message):
    __slots__ = ("lease_epoch",)
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    lease_epoch: int
    def __init__(self, lease_epoch: _Optional[int] = ...) -> None: ...

class MissionHandBack(_message.Message):
    __slots__ = ("mission_id", "attempt", "lease_epoch", "reason")
    MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    mission_id: str
    attempt: int
    lease_epoch: int
    reason: str
    def __init__(self, mission_id: _Optional[str] = ..., attempt: _Optional[int] = ..., lease_epoch: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class DispatcherWelcome(_message.Message):
    __slots__ = ("session", "heartbeat_interval", "revoked_mission_ids")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    REVOKED_MISSION_IDS_FIELD_NUMBER: _ClassVar[int]
    session: _session_pb2.VpSession
    heartbeat_interval: _duration_pb2.Duration
    revoked_mission_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session: _Optional[_Union[_session_pb2.VpSession, _Mapping]] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., revoked_mission_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class MissionAssignment(_message.Message):
    __slots__ = ("mission", "run_id", "trace")
    MISSION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    mission: _mission_pb2.Mission
    run_id: str
    trace: _mission_pb2.TraceContext
    def __init__(self, mission: _Optional[_Union[_mission_pb2.Mission, _Mapping]] = ..., run_id: _Optional[str] = ..., trace: _Optional[_Union[_mission_pb2.TraceContext, _Mapping]] = ...) -> None: ...

class MissionCancel(_message.Message):
    __slots__ = ("mission_id", "reason", "final_state")
    MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FINAL_STATE_FIELD_NUMBER: _ClassVar[int]
    mission_id: str
    reason: str
    final_state: _enums_pb2.MissionState
    def __init__(self, mission_id: _Optional[str] = ..., reason: _Optional[str] = ..., final_state: _Optional[_Union[_enums_pb2.MissionState, str]] = ...) -> None: ...

class LeaseRenewed(_message.Message):
    __slots__ = ("lease_epoch", "heartbeat_seq", "granted_ttl", "lease_expires_at")
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_SEQ_FIELD_NUMBER: _ClassVar[int]
    GRANTED_TTL_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    lease_epoch: int
    heartbeat_seq: int
    granted_ttl: _duration_pb2.Duration
    lease_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, lease_epoch: _Optional[int] = ..., heartbeat_seq: _Optional[int] = ..., granted_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., lease_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ResultAccepted(_message.Message):
    __slots__ = ("mission_id", "attempt", "state")
    MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    mission_id: str
    attempt: int
    state: _enums_pb2.MissionState
    def __init__(self, mission_id: _Optional[str] = ..., attempt: _Optional[int] = ..., state: _Optional[_Union[_enums_pb2.MissionState, str]] = ...) -> None: ...
