"""ClientError: the one exception the client raises, built from a failed call's
status and its google.rpc details (ErrorInfo, BadRequest, RetryInfo)."""

from __future__ import annotations

from datetime import timedelta

import grpc
from google.rpc import error_details_pb2

from services.common.errors import FieldViolation, detail_of, status_from_error

#: Codes worth another attempt, for calls that are safe to repeat.
TRANSIENT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class ClientError(Exception):
    """A call failed for good (non-transient, or transient with retries used up).

    ``code`` is the grpc.StatusCode; ``reason`` the ErrorInfo reason (e.g.
    "MISSION_NOT_FOUND", "" when the server sent none); ``field_violations``
    the BadRequest details; ``retry_delay`` the server's RetryInfo hint.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        domain: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: list[FieldViolation] | None = None,
        retry_delay: timedelta | None = None,
        method: str = "",
    ) -> None:
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})
        self.field_violations = list(field_violations or [])
        self.retry_delay = retry_delay
        self.method = method
        super().__init__(self.summary())

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES

    def summary(self) -> str:
        """One line: CODE REASON: message [field: description; ...]."""
        head = self.code.name if self.code is not None else "UNKNOWN"
        if self.reason and self.reason != head:
            head = f"{head} {self.reason}"
        text = f"{head}: {self.message}" if self.message else head
        extra = [f"{v.field}: {v.description}" for v in self.field_violations]
        extra = [item for item in extra if item not in self.message]  # servers often repeat them
        if extra:
            text += " [" + "; ".join(extra) + "]"
        return text

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, *, method: str = "") -> "ClientError":
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = (error.details() if hasattr(error, "details") else str(error)) or ""
        reason = domain = ""
        metadata: dict[str, str] = {}
        violations: list[FieldViolation] = []
        retry_delay = None
        try:
            status = status_from_error(error)
        except Exception:  # noqa: BLE001 - malformed details must not hide the error itself
            status = None
        if status is not None:
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
                elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    violations.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
                elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    retry = error_details_pb2.RetryInfo()
                    detail.Unpack(retry)
                    retry_delay = retry.retry_delay.ToTimedelta()
        return cls(code, message, reason=reason, domain=domain, metadata=metadata, field_violations=violations,
                   retry_delay=retry_delay, method=method)


def retry_delay_of(error: grpc.RpcError) -> float | None:
    """RetryInfo.retry_delay of a failed call, in seconds, if the server sent one."""
    try:
        retry = detail_of(error, error_details_pb2.RetryInfo)
    except Exception:  # noqa: BLE001 - a malformed status is just "no hint"
        return None
    return retry.retry_delay.ToTimedelta().total_seconds() if retry is not None else None


def is_transient(error: grpc.RpcError) -> bool:
    return hasattr(error, "code") and error.code() in TRANSIENT_CODES


def invalid_argument(field: str, description: str) -> ClientError:
    """A request refused on the client side, shaped like the server's INVALID_ARGUMENT."""
    return ClientError(grpc.StatusCode.INVALID_ARGUMENT, f"invalid request: {field}: {description}",
                       reason="INVALID_ARGUMENT", field_violations=[FieldViolation(field, description)])
