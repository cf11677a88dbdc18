import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.common.contracts.vp.v1 import enums_pb2 as _enums_pb2
from services.common.contracts.vp.v1 import event_pb2 as _event_pb2
from services.common.contracts.vp.v1 import mission_pb2 as _mission_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DispatchMissionRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _mission_pb2.MissionEnvelope
    def __init__(self, envelope: _Optional[_Union[_mission_pb2.MissionEnvelope, _Mapping]] = ...) -> None: ...

class DispatchMissionResponse(_message.Message):
    __slots__ = ("mission", "route", "deduplicated")
    MISSION_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATED_FIELD_NUMBER: _ClassVar[int]
    mission: _mission_pb2.Mission
    route: _mission_pb2.Route
    deduplicated: bool
    def __init__(self, mission: _Optional[_Union[_mission_pb2.Mission, _Mapping]] = ..., route: _Optional[_Union[_mission_pb2.Route, _Mapping]] = ..., deduplicated: _Optional[bool] = ...) -> None: ...

class GetMissionRequest(_message.Message):
    __slots__ = ("mission_id",)
    MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    mission_id: str
    def __init__(self, mission_id: _Optional[str] = ...) -> None: ...

class GetMissionResponse(_message.Message):
    __slots__ = ("mission",)
    MISSION_FIELD_NUMBER: _ClassVar[int]
    mission: _mission_pb2.Mission
    def __init__(self, mission: _Optional[_Union[_mission_pb2.Mission, _Mapping]] = ...) -> None: ...

class ListMissionsRequest(_message.Message):
    __slots__ = ("vp_id", "states", "source_session_id", "page_size", "page_token", "order")
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    vp_id: str
    states: _containers.RepeatedScalarFieldContainer[_enums_pb2.MissionState]
    source_session_id: str
    page_size: int
    page_token: str
    order: _enums_pb2.ListOrder
    def __init__(self, vp_id: _Optional[str] = ..., states: _Optional[_Iterable[_Union[_enums_pb2.MissionState, str]]] = ..., source_session_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., order: _Optional[_Union[_enums_pb2.ListOrder, str]] = ...) -> None: ...

class ListMissionsResponse(_message.Message):
    __slots__ = ("missions", "next_page_token")
    MISSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    missions: _containers.RepeatedCompositeFieldContainer[_mission_pb2.Mission]
    next_page_token: str
    def __init__(self, missions: _Optional[_Iterable[_Union[_mission_pb2.Mission, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WaitMissionRequest(_message.Message):
    __slots__ = ("mission_id", "timeout")
    MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    mission_id: str
    timeout: _duration_pb2.Duration
    def __init__(self, mission_id: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class WaitMissionResponse(_message.Message):
    __slots__ = ("mission", "timed_out")
    MISSION_FIELD_NUMBER: _ClassVar[int]
    TIMED_OUT_FIELD_NUMBER: _ClassVar[int]
    mission: _mission_pb2.Mission
    timed_out: bool
    def __init__(self, mission: _Optional[_Union[_mission_pb2.Mission, _Mapping]] = ..., timed_out: _Optional[bool] = ...) -> None: ...

class CancelMissionRequest(_message.Message):
    __slots__ = ("mission_id", "reason")
    MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    mission_id: str
    reason: str
    def __init__(self, mission_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelMissionResponse(_message.Message):
    __slots__ = ("mission",)
    MISSION_FIELD_NUMBER: _ClassVar[int]
    mission: _mission_pb2.Mission
    def __init__(self, mission: _Optional[_Union[_mission_pb2.Mission, _Mapping]] = ...) -> None: ...

class StreamMissionEventsRequest(_message.Message):
    __slots__ = ("after_event_id", "consumer", "mission_id", "vp_id", "event_types", "follow")
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    after_event_id: int
    consumer: str
    mission_id: str
    vp_id: str
    event_types: _containers.RepeatedScalarFieldContainer[str]
    follow: bool
    def __init__(self, after_event_id: _Optional[int] = ..., consumer: _Optional[str] = ..., mission_id: _Optional[str] = ..., vp_id: _Optional[str] = ..., event_types: _Optional[_Iterable[str]] = ..., follow: _Optional[bool] = ...) -> None: ...

class StreamMissionEventsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.MissionEvent
    def __init__(self, event: _Optional[_Union[_event_pb2.MissionEvent, _Mapping]] = ...) -> None: ...

class CommitEventCursorRequest(_message.Message):
    __slots__ = ("consumer", "event_id")
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    consumer: str
    event_id: int
    def __init__(self, consumer: _Optional[str] = ..., event_id: _Optional[int] = ...) -> None: ...

class CommitEventCursorResponse(_message.Message):
    __slots__ = ("consumer", "event_id")
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    consumer: str
    event_id: int
    def __init__(self, consumer: _Optional[str] = ..., event_id: _Optional[int] = ...) -> None: ...

class ReadResultArtifactsRequest(_message.Message):
    __slots__ = ("mission_id", "path", "chunk_size")
    MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    mission_id: str
    path: str
    chunk_size: int
    def __init__(self, mission_id: _Optional[str] = ..., path: _Optional[str] = ..., chunk_size: _Optional[int] = ...) -> None: ...

class ReadResultArtifactsResponse(_message.Message):
    __slots__ = ("path", "offset", "data", "size", "eof")
    PATH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    path: str
    offset: int
    data: bytes
    size: int
    eof: bool
    def __init__(self, path: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., size: _Optional[int] = ..., eof: _Optional[bool] = ...) -> None: ...

class ResumeMissionRequest(_message.Message):
    __slots__ = ("mission_id", "answer", "budget")
    MISSION_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    mission_id: str
    answer: str
    budget: _mission_pb2.Budget
    def __init__(self, mission_id: _Optional[str] = ..., answer: _Optional[str] = ..., budget: _Optional[_Union[_mission_pb2.Budget, _Mapping]] = ...) -> None: ...

class ResumeMissionResponse(_message.Message):
    __slots__ = ("mission",)
    MISSION_FIELD_NUMBER: _ClassVar[int]
    mission: _mission_pb2.Mission
    def __init__(self, mission: _Optional[_Union[_mission_pb2.Mission, _Mapping]] = ...) -> None: ...

class LaneFlags(_message.Message):
    __slots__ = ("vp_id", "enabled", "shadow", "force_fallback", "max_in_flight", "max_queue_depth", "quotas_set", "version", "updated_at", "updated_by")
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    FORCE_FALLBACK_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_SET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    vp_id: str
    enabled: bool
    shadow: bool
    force_fallback: bool
    max_in_flight: int
    max_queue_depth: int
    quotas_set: bool
    version: int
    updated_at: _timestamp_pb2.Timestamp
    updated_by: str
    def __init__(self, vp_id: _Optional[str] = ..., enabled: _Optional[bool] = ..., shadow: _Optional[bool] = ..., force_fallback: _Optional[bool] = ..., max_in_flight: _Optional[int] = ..., max_queue_depth: _Optional[int] = ..., quotas_set: _Optional[bool] = ..., version: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_by: _Optional[str] = ...) -> None: ...

class GetRoutingFlagsRequest(_message.Message):
    __slots__ = ("vp_id",)
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    vp_id: str
    def __init__(self, vp_id: _Optional[str] = ...) -> None: ...

class GetRoutingFlagsResponse(_message.Message):
    __slots__ = ("kill_switch", "lanes", "read_at")
    KILL_SWITCH_FIELD_NUMBER: _ClassVar[int]
    LANES_FIELD_NUMBER: _ClassVar[int]
    READ_AT_FIELD_NUMBER: _ClassVar[int]
    kill_switch: bool
    lanes: _containers.RepeatedCompositeFieldContainer[LaneFlags]
    read_at: _timestamp_pb2.Timestamp
    def __init__(self, kill_switch: _Optional[bool] = ..., lanes: _Optional[_Iterable[_Union[LaneFlags, _Mapping]]] = ..., read_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetRoutingFlagsRequest(_message.Message):
    __slots__ = ("vp_id", "kill_switch", "enabled", "shadow", "force_fallback", "max_in_flight", "max_queue_depth", "reason", "actor")
    VP_ID_FIELD_NUMBER: _ClassVar[int]
    KILL_SWITCH_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    FORCE_FALLBACK_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    vp_id: str
    kill_switch: bool
    enabled: bool
    shadow: bool
    force_fallback: bool
    max_in_flight: int
    max_queue_depth: int
    reason: str
    actor: str
    def __init__(self, vp_id: _Optional[str] = ..., kill_switch: _Optional[bool] = ..., enabled: _Optional[bool] = ..., shadow: _Optional[bool] = ..., force_fallback: _Optional[bool] = ..., max_in_flight: _Optional[int] = ..., max_queue_depth: _Optional[int] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class SetRoutingFlagsResponse(_message.Message):
    __slots__ = ("flags", "audit_event_id")
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    flags: GetRoutingFlagsResponse
    audit_event_id: int
    def __init__(self, flags: _Optional[_Union[GetRoutingFlagsResponse, _Mapping]] = ..., audit_event_id: _Optional[int] = ...) -> None: ...
