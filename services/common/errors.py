"""Domain errors, and their one translation to gRPC status with google.rpc details.

Service logic raises these; the servicer wrapper (grpc_errors.py) turns them into
a status code with ErrorInfo (domain "vp.v1", reason from vp.v1.ErrorReason),
BadRequest field violations and RetryInfo for transient conditions. Anything
else becomes INTERNAL without a traceback on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import grpc
from google.protobuf.any_pb2 import Any
from google.rpc import code_pb2, error_details_pb2, status_pb2

ERROR_DOMAIN = "vp.v1"
# A status travels in HTTP/2 trailers, which clients cap at 8 KiB: an error that
# echoes a hostile value in full would reach the caller as a bare
# RESOURCE_EXHAUSTED without details. So every text in a status is bounded.
MAX_MESSAGE_CHARS = 512
MAX_DETAIL_CHARS = 200
MAX_VIOLATIONS = 10


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class VpError(Exception):
    """Base of every error a caller may see. Subclasses fix the status code and reason."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"
    retry_delay: timedelta | None = None

    def __init__(self, message: str, *, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = {k: str(v) for k, v in (metadata or {}).items()}

    @property
    def retryable(self) -> bool:
        return self.retry_delay is not None

    def field_violations(self) -> list[FieldViolation]:
        return []

    def to_rpc_status(self) -> status_pb2.Status:
        details: list[Any] = []
        metadata = {_bounded(k, MAX_DETAIL_CHARS): _bounded(v, MAX_DETAIL_CHARS)
                    for k, v in list(self.metadata.items())[:MAX_VIOLATIONS]}
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN, metadata=metadata)
        details.append(_pack(info))
        violations = self.field_violations()[:MAX_VIOLATIONS]
        if violations:
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=_bounded(v.field, MAX_DETAIL_CHARS),
                                                                description=_bounded(v.description, MAX_DETAIL_CHARS))
                    for v in violations
                ]
            )
            details.append(_pack(bad))
        if self.retry_delay is not None:
            retry = error_details_pb2.RetryInfo()
            retry.retry_delay.FromTimedelta(self.retry_delay)
            details.append(_pack(retry))
        return status_pb2.Status(code=self.code.value[0], message=_bounded(self.message, MAX_MESSAGE_CHARS),
                                 details=details)


def _pack(message) -> Any:
    packed = Any()
    packed.Pack(message)
    return packed


class InvalidArgument(VpError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation] | FieldViolation, *, reason: str | None = None) -> None:
        self.violations = [violations] if isinstance(violations, FieldViolation) else list(violations)
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(f"invalid request: {summary}")
        if reason:
            self.reason = reason

    def field_violations(self) -> list[FieldViolation]:
        return self.violations


class NotFound(VpError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, message: str, *, reason: str, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message, metadata=metadata)
        self.reason = reason


class SessionNotFound(NotFound):
    def __init__(self, vp_id: str) -> None:
        super().__init__(f"no session for vp_id {vp_id!r}", reason="SESSION_NOT_FOUND", metadata={"vp_id": vp_id})


class MissionNotFound(NotFound):
    def __init__(self, mission_id: str) -> None:
        super().__init__(
            f"no mission {mission_id!r}", reason="MISSION_NOT_FOUND", metadata={"mission_id": mission_id}
        )


class MissionNotBlocked(VpError):
    """ResumeMission on a mission that is not BLOCKED (agent protocol v1 §9)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "MISSION_NOT_BLOCKED"

    def __init__(self, mission_id: str, state: str) -> None:
        super().__init__(f"mission {mission_id!r} is {state}, not blocked: there is nothing to resume",
                         metadata={"mission_id": mission_id, "state": state})


class LeaseHeld(VpError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "LEASE_HELD"


class LeaseSuperseded(VpError):
    """The caller's lease term is over: it must stop acting on the lease."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "LEASE_SUPERSEDED"


class SessionRetired(VpError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "SESSION_RETIRED"


class IllegalTransition(VpError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "ILLEGAL_TRANSITION"

    def __init__(self, kind: str, source: str, target: str) -> None:
        super().__init__(
            f"illegal {kind} transition {source} -> {target}",
            metadata={"kind": kind, "from": source, "to": target},
        )
        self.source = source
        self.target = target


class IdempotencyConflict(VpError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "IDEMPOTENCY_CONFLICT"


class PathNotAllowed(VpError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "PATH_NOT_ALLOWED"


class TooLarge(VpError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "TOO_LARGE"


class StoreBusy(VpError):
    """The database stayed locked past every retry: transient, the caller may retry."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "STORE_BUSY"
    retry_delay = timedelta(milliseconds=200)


class DependencyUnavailable(VpError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "DEPENDENCY_UNAVAILABLE"
    retry_delay = timedelta(seconds=1)


class Draining(VpError):
    """The server is shutting down: the call may be retried on another replica,
    or on this one after its restart."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "DRAINING"
    retry_delay = timedelta(seconds=1)


def status_from_error(error: grpc.RpcError) -> status_pb2.Status | None:
    """The google.rpc.Status a server attached to a failed call, if any."""
    from grpc_status import rpc_status

    return rpc_status.from_call(error)  # type: ignore[arg-type]


def detail_of(error: grpc.RpcError, kind):
    """The first google.rpc detail of type kind (ErrorInfo, RetryInfo, ...) on a failed call."""
    status = status_from_error(error)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            return message
    return None


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a failed call, for clients that branch on reason."""
    return detail_of(error, error_details_pb2.ErrorInfo)


def internal_status(message: str = "internal error") -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN)
    return status_pb2.Status(code=code_pb2.INTERNAL, message=message, details=[_pack(info)])
