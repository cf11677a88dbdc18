import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from services.common.contracts.vp.v1 import enums_pb2 as _enums_pb2
from services.common.contracts.vp.v1 import session_pb2 as _session_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AcquireOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACQUIRE_OUTCOME_UNSPECIFIED: _ClassVar[AcquireOutcome]
    ACQUIRE_OUTCOME_CREATED: _ClassVar[AcquireOutcome]
    ACQUIRE_OUTCOME_RESUMED: _ClassVar[AcquireOutcome]
    ACQUIRE_OUTCOME_TAKEN_OVER: _ClassVar[AcquireOutcome]
    ACQUIRE_OUTCOME_REACQUIRED: _ClassVar[AcquireOutcome]
ACQUIRE_OUTCOME_UNSPECIFIED: AcquireOutcome
ACQUIRE_OUTCOME_CREATED: AcquireOutcome
ACQUIRE_OUTCOME_RESUMED: AcquireOutcome
ACQUIRE_OUTCOME_TAKEN_OVER: AcquireOutcome
ACQUIRE_OUTCOME_REACQUIRED: AcquireOutcome

class AcquireLeaseRequest(_message.Message):
    __slots__ = ("vp_id", "owner", "runtime_id", "workspace_dir", "ttl")
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_DIR_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    vp_id: str
    owner: str
    runtime_id: str
    workspace_dir: str
    ttl: _duration_pb2.Duration
    def __init__(self, vp_id: _Optional[str] = ..., owner: _Optional[str] = ..., runtime_id: _Optional[str] = ..., workspace_dir: _Optional[str] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AcquireLeaseResponse(_message.Message):
    __slots__ = ("session", "outcome")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    session: _session_pb2.VpSession
    outcome: AcquireOutcome
    def __init__(self, session: _Optional[_Union[_session_pb2.VpSession, _Mapping]] = ..., outcome: _Optional[_Union[AcquireOutcome, str]] = ...) -> None: ...

class RenewLeaseRequest(_message.Message):
    __slots__ = ("vp_id", "owner", "lease_epoch", "ttl")
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    vp_id: str
    owner: str
    lease_epoch: int
    ttl: _duration_pb2.Duration
    def __init__(self, vp_id: _Optional[str] = ..., owner: _Optional[str] = ..., lease_epoch: _Optional[int] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RenewLeaseResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: _session_pb2.VpSession
    def __init__(self, session: _Optional[_Union[_session_pb2.VpSession, _Mapping]] = ...) -> None: ...

class ReleaseLeaseRequest(_message.Message):
    __slots__ = ("vp_id", "owner", "lease_epoch")
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    vp_id: str
    owner: str
    lease_epoch: int
    def __init__(self, vp_id: _Optional[str] = ..., owner: _Optional[str] = ..., lease_epoch: _Optional[int] = ...) -> None: ...

class ReleaseLeaseResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: _session_pb2.VpSession
    def __init__(self, session: _Optional[_Union[_session_pb2.VpSession, _Mapping]] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("vp_id",)
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    vp_id: str
    def __init__(self, vp_id: _Optional[str] = ...) -> None: ...

class GetSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: _session_pb2.VpSession
    def __init__(self, session: _Optional[_Union[_session_pb2.VpSession, _Mapping]] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("statuses", "effective_statuses", "stale", "vp_id_prefix", "page_size", "page_token")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_STATUSES_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    VP_ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[_enums_pb2.SessionStatus]
    effective_statuses: _containers.RepeatedScalarFieldContainer[_enums_pb2.SessionStatus]
    stale: bool
    vp_id_prefix: str
    page_size: int
    page_token: str
    def __init__(self, statuses: _Optional[_Iterable[_Union[_enums_pb2.SessionStatus, str]]] = ..., effective_statuses: _Optional[_Iterable[_Union[_enums_pb2.SessionStatus, str]]] = ..., stale: _Optional[bool] = ..., vp_id_prefix: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions", "next_page_token")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[_session_pb2.VpSession]
    next_page_token: str
    def __init__(self, sessions: _Optional[_Iterable[_Union[_session_pb2.VpSession, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RetireSessionRequest(_message.Message):
    __slots__ = ("vp_id", "reason")
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    vp_id: str
    reason: str
    def __init__(self, vp_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RetireSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: _session_pb2.VpSession
    def __init__(self, session: _Optional[_Union[_session_pb2.VpSession, _Mapping]] = ...) -> None: ...

class SetConversationRequest(_message.Message):
    __slots__ = ("vp_id", "owner", "lease_epoch", "conversation")
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    vp_id: str
    owner: str
    lease_epoch: int
    conversation: _session_pb2.AgentConversation
    def __init__(self, vp_id: _Optional[str] = ..., owner: _Optional[str] = ..., lease_epoch: _Optional[int] = ..., conversation: _Optional[_Union[_session_pb2.AgentConversation, _Mapping]] = ...) -> None: ...

class SetConversationResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: _session_pb2.VpSession
    def __init__(self, session: _Optional[_Union[_session_pb2.VpSession, _Mapping]] = ...) -> None: ...

class ResetConversationRequest(_message.Message):
    __slots__ = ("vp_id", "reason")
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    vp_id: str
    reason: str
    def __init__(self, vp_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResetConversationResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: _session_pb2.VpSession
    def __init__(self, session: _Optional[_Union[_session_pb2.VpSession, _Mapping]] = ...) -> None: ...

class ReviveSessionRequest(_message.Message):
    __slots__ = ("vp_id", "reason")
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    vp_id: str
    reason: str
    def __init__(self, vp_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReviveSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: _session_pb2.VpSession
    def __init__(self, session: _Optional[_Union[_session_pb2.VpSession, _Mapping]] = ...) -> None: ...
