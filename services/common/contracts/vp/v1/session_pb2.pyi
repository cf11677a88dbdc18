import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.common.contracts.vp.v1 import enums_pb2 as _enums_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VpSession(_message.Message):
    __slots__ = ("vp_id", "runtime_id", "session_id", "workspace_dir", "status", "effective_status", "stale", "stale_reason", "lease_owner", "lease_epoch", "lease_expires_at", "last_heartbeat_at", "last_error", "created_at", "updated_at", "conversation")
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_DIR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_STATUS_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    STALE_REASON_FIELD_NUMBER: _ClassVar[int]
    LEASE_OWNER_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    vp_id: str
    runtime_id: str
    session_id: str
    workspace_dir: str
    status: _enums_pb2.SessionStatus
    effective_status: _enums_pb2.SessionStatus
    stale: bool
    stale_reason: _enums_pb2.StaleReason
    lease_owner: str
    lease_epoch: int
    lease_expires_at: _timestamp_pb2.Timestamp
    last_heartbeat_at: _timestamp_pb2.Timestamp
    last_error: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    conversation: AgentConversation
    def __init__(self, vp_id: _Optional[str] = ..., runtime_id: _Optional[str] = ..., session_id: _Optional[str] = ..., workspace_dir: _Optional[str] = ..., status: _Optional[_Union[_enums_pb2.SessionStatus, str]] = ..., effective_status: _Optional[_Union[_enums_pb2.SessionStatus, str]] = ..., stale: _Optional[bool] = ..., stale_reason: _Optional[_Union[_enums_pb2.StaleReason, str]] = ..., lease_owner: _Optional[str] = ..., lease_epoch: _Optional[int] = ..., lease_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_heartbeat_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., conversation: _Optional[_Union[AgentConversation, _Mapping]] = ...) -> None: ...

class AgentConversation(_message.Message):
    __slots__ = ("agent", "conversation_id", "mission_id", "updated_at")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    agent: str
    conversation_id: str
    mission_id: str
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, agent: _Optional[str] = ..., conversation_id: _Optional[str] = ..., mission_id: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
