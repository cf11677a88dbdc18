from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class MissionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MISSION_STATE_UNSPECIFIED: _ClassVar[MissionState]
    MISSION_STATE_QUEUED: _ClassVar[MissionState]
    MISSION_STATE_RUNNING: _ClassVar[MissionState]
    MISSION_STATE_BLOCKED: _ClassVar[MissionState]
    MISSION_STATE_COMPLETED: _ClassVar[MissionState]
    MISSION_STATE_FAILED: _ClassVar[MissionState]
    MISSION_STATE_CANCELLED: _ClassVar[MissionState]
    MISSION_STATE_TIMED_OUT: _ClassVar[MissionState]

class SessionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_STATUS_UNSPECIFIED: _ClassVar[SessionStatus]
    SESSION_STATUS_IDLE: _ClassVar[SessionStatus]
    SESSION_STATUS_ACTIVE: _ClassVar[SessionStatus]
    SESSION_STATUS_PAUSED: _ClassVar[SessionStatus]
    SESSION_STATUS_DEGRADED: _ClassVar[SessionStatus]
    SESSION_STATUS_RECOVERING: _ClassVar[SessionStatus]
    SESSION_STATUS_RETIRED: _ClassVar[SessionStatus]

class StaleReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STALE_REASON_UNSPECIFIED: _ClassVar[StaleReason]
    STALE_REASON_LEASE_EXPIRED: _ClassVar[StaleReason]
    STALE_REASON_HEARTBEAT_OVERDUE: _ClassVar[StaleReason]

class RouteDecision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTE_DECISION_UNSPECIFIED: _ClassVar[RouteDecision]
    ROUTE_DECISION_DELEGATED: _ClassVar[RouteDecision]
    ROUTE_DECISION_SHADOW: _ClassVar[RouteDecision]
    ROUTE_DECISION_FALLBACK: _ClassVar[RouteDecision]

class FallbackReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FALLBACK_REASON_UNSPECIFIED: _ClassVar[FallbackReason]
    FALLBACK_REASON_DISABLED: _ClassVar[FallbackReason]
    FALLBACK_REASON_FORCED: _ClassVar[FallbackReason]
    FALLBACK_REASON_UNHEALTHY: _ClassVar[FallbackReason]
    FALLBACK_REASON_OVER_CAPACITY: _ClassVar[FallbackReason]
    FALLBACK_REASON_TIMED_OUT: _ClassVar[FallbackReason]
    FALLBACK_REASON_FAILED: _ClassVar[FallbackReason]
    FALLBACK_REASON_WORKER_LOST: _ClassVar[FallbackReason]

class FallbackTargetKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FALLBACK_TARGET_KIND_UNSPECIFIED: _ClassVar[FallbackTargetKind]
    FALLBACK_TARGET_KIND_LANE: _ClassVar[FallbackTargetKind]
    FALLBACK_TARGET_KIND_CALLER: _ClassVar[FallbackTargetKind]

class ReplyMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPLY_MODE_UNSPECIFIED: _ClassVar[ReplyMode]
    REPLY_MODE_SYNC: _ClassVar[ReplyMode]
    REPLY_MODE_ASYNC: _ClassVar[ReplyMode]
    REPLY_MODE_SILENT: _ClassVar[ReplyMode]

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    ERROR_REASON_LEASE_HELD: _ClassVar[ErrorReason]
    ERROR_REASON_LEASE_SUPERSEDED: _ClassVar[ErrorReason]
    ERROR_REASON_SESSION_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_SESSION_RETIRED: _ClassVar[ErrorReason]
    ERROR_REASON_ILLEGAL_TRANSITION: _ClassVar[ErrorReason]
    ERROR_REASON_MISSION_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_IDEMPOTENCY_CONFLICT: _ClassVar[ErrorReason]
    ERROR_REASON_UNKNOWN_VP: _ClassVar[ErrorReason]
    ERROR_REASON_PATH_NOT_ALLOWED: _ClassVar[ErrorReason]
    ERROR_REASON_STORE_BUSY: _ClassVar[ErrorReason]
    ERROR_REASON_DEPENDENCY_UNAVAILABLE: _ClassVar[ErrorReason]
    ERROR_REASON_TOO_LARGE: _ClassVar[ErrorReason]
    ERROR_REASON_DRAINING: _ClassVar[ErrorReason]
    ERROR_REASON_NO_ARTIFACTS: _ClassVar[ErrorReason]
    ERROR_REASON_MISSION_NOT_BLOCKED: _ClassVar[ErrorReason]

class BlockedReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BLOCKED_REASON_UNSPECIFIED: _ClassVar[BlockedReason]
    BLOCKED_REASON_INPUT_REQUIRED: _ClassVar[BlockedReason]
    BLOCKED_REASON_BUDGET_EXCEEDED: _ClassVar[BlockedReason]

class ListOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIST_ORDER_UNSPECIFIED: _ClassVar[ListOrder]
    LIST_ORDER_OLDEST_FIRST: _ClassVar[ListOrder]
    LIST_ORDER_NEWEST_FIRST: _ClassVar[ListOrder]
MISSION_STATE_UNSPECIFIED: MissionState
MISSION_STATE_QUEUED: MissionState
MISSION_STATE_RUNNING: MissionState
MISSION_STATE_BLOCKED: MissionState
MISSION_STATE_COMPLETED: MissionState
MISSION_STATE_FAILED: MissionState
MISSION_STATE_CANCELLED: MissionState
MISSION_STATE_TIMED_OUT: MissionState
SESSION_STATUS_UNSPECIFIED: SessionStatus
SESSION_STATUS_IDLE: SessionStatus
SESSION_STATUS_ACTIVE: SessionStatus
SESSION_STATUS_PAUSED: SessionStatus
SESSION_STATUS_DEGRADED: SessionStatus
SESSION_STATUS_RECOVERING: SessionStatus
SESSION_STATUS_RETIRED: SessionStatus
STALE_REASON_UNSPECIFIED: StaleReason
STALE_REASON_LEASE_EXPIRED: StaleReason
STALE_REASON_HEARTBEAT_OVERDUE: StaleReason
ROUTE_DECISION_UNSPECIFIED: RouteDecision
ROUTE_DECISION_DELEGATED: RouteDecision
ROUTE_DECISION_SHADOW: RouteDecision
ROUTE_DECISION_FALLBACK: RouteDecision
FALLBACK_REASON_UNSPECIFIED: FallbackReason
FALLBACK_REASON_DISABLED: FallbackReason
FALLBACK_REASON_FORCED: FallbackReason
FALLBACK_REASON_UNHEALTHY: FallbackReason
FALLBACK_REASON_OVER_CAPACITY: FallbackReason
FALLBACK_REASON_TIMED_OUT: FallbackReason
FALLBACK_REASON_FAILED: FallbackReason
FALLBACK_REASON_WORKER_LOST: FallbackReason
FALLBACK_TARGET_KIND_UNSPECIFIED: FallbackTargetKind
FALLBACK_TARGET_KIND_LANE: FallbackTargetKind
FALLBACK_TARGET_KIND_CALLER: FallbackTargetKind
REPLY_MODE_UNSPECIFIED: ReplyMode
REPLY_MODE_SYNC: ReplyMode
REPLY_MODE_ASYNC: ReplyMode
REPLY_MODE_SILENT: ReplyMode
ERROR_REASON_UNSPECIFIED: ErrorReason
ERROR_REASON_LEASE_HELD: ErrorReason
ERROR_REASON_LEASE_SUPERSEDED: ErrorReason
ERROR_REASON_SESSION_NOT_FOUND: ErrorReason
ERROR_REASON_SESSION_RETIRED: ErrorReason
ERROR_REASON_ILLEGAL_TRANSITION: ErrorReason
ERROR_REASON_MISSION_NOT_FOUND: ErrorReason
ERROR_REASON_IDEMPOTENCY_CONFLICT: ErrorReason
ERROR_REASON_UNKNOWN_VP: ErrorReason
ERROR_REASON_PATH_NOT_ALLOWED: ErrorReason
ERROR_REASON_STORE_BUSY: ErrorReason
ERROR_REASON_DEPENDENCY_UNAVAILABLE: ErrorReason
ERROR_REASON_TOO_LARGE: ErrorReason
ERROR_REASON_DRAINING: ErrorReason
ERROR_REASON_NO_ARTIFACTS: ErrorReason
ERROR_REASON_MISSION_NOT_BLOCKED: ErrorReason
BLOCKED_REASON_UNSPECIFIED: BlockedReason
BLOCKED_REASON_INPUT_REQUIRED: BlockedReason
BLOCKED_REASON_BUDGET_EXCEEDED: BlockedReason
LIST_ORDER_UNSPECIFIED: ListOrder
LIST_ORDER_OLDEST_FIRST: ListOrder
LIST_ORDER_NEWEST_FIRST: ListOrder
