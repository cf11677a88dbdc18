"""Tool errors a model can act on: what happened, whether retrying can help,
and what to do instead. Never a stack trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc

from services.client import ClientError

#: Codes worth retrying the same call later.
_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                        grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED})

_BY_REASON = {
    "MISSION_NOT_FOUND": "Check the mission_id; vp_list_missions lists missions (filter by source_session_id to "
                         "find yours).",
    "UNKNOWN_VP": "Use an existing lane: vp.coder.primary (code) or vp.general.primary (everything else); "
                  "vp_list_sessions shows the lanes.",
    "IDEMPOTENCY_CONFLICT": "That idempotency_key already belongs to a different mission. Use a new key for new work, "
                            "or repeat the exact same arguments to get the existing mission.",
    "PATH_NOT_ALLOWED": "Choose a target_path inside the lane's allowed roots, or omit it and read the result with "
                        "vp_read_result_artifacts.",
    "NO_ARTIFACTS": "The mission has no result files (yet). Wait for it to complete (vp_wait_mission), then read "
                    "them.",
    "MISSION_NOT_BLOCKED": "Only a BLOCKED mission can be resumed. If you just resumed it, that call worked: wait "
                           "with vp_wait_mission. Otherwise vp_get_mission shows its state.",
    "TOO_LARGE": "Ask for less: one file with path=, or a smaller request.",
    "STORE_BUSY": "The ledger is busy; retry the same call in a moment.",
    "DRAINING": "The dispatcher is shutting down; retry in a few seconds.",
    "DEPENDENCY_UNAVAILABLE": "A VP service is unreachable; retry in a few seconds. If it persists, tell the user "
                              "and handle the work yourself.",
}

_BY_CODE = {
    grpc.StatusCode.UNAVAILABLE: "VP Mission Control is unreachable. Retry in a few seconds; if it stays down, tell "
                                 "the user and handle the work yourself (do not try other ways to reach it).",
    grpc.StatusCode.DEADLINE_EXCEEDED: "VP Mission Control did not answer in time. Retry the same call.",
    grpc.StatusCode.INVALID_ARGUMENT: "Fix the arguments named above and call again.",
    grpc.StatusCode.NOT_FOUND: "Check the id.",
    grpc.StatusCode.FAILED_PRECONDITION: "The mission is not in a state that allows this; vp_get_mission shows it.",
    grpc.StatusCode.PERMISSION_DENIED: "This is not allowed; do not retry it.",
    grpc.StatusCode.UNIMPLEMENTED: "This VP Mission Control does not support that call (an older dispatcher?); do "
                                   "not retry. Tell the user.",
    grpc.StatusCode.UNAUTHENTICATED: "vp-mcp's credentials were refused; tell the user (an operator must fix the "
                                     "vp-mcp configuration).",
}


@dataclass
class ToolFailure(Exception):
    """A tool call that failed in a way the model should hear about."""

    message: str
    code: str = "FAILED"
    retryable: bool = False
    hint: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def text(self) -> str:
        retry = "retryable" if self.retryable else "not retryable"
        text = f"Error [{self.code}, {retry}]: {self.message}"
        if "retry_after_seconds" in self.details:
            text += f" (retry after {self.details['retry_after_seconds']:g}s)"
        return f"{text}\nWhat to do: {self.hint}" if self.hint else text



def from_client_error(error: ClientError, *, target: str = "") -> ToolFailure:
    code = error.code.name if error.code is not None else "UNKNOWN"
    reason = error.reason if error.reason and error.reason != code else ""
    retryable = error.code in _RETRYABLE
    hint = _BY_REASON.get(reason) or _BY_CODE.get(error.code, "")
    message = " ".join(error.message.split()) or code
    if error.field_violations:
        extra = "; ".join(f"{v.field}: {v.description}" for v in error.field_violations
                          if f"{v.field}: {v.description}" not in message)
        if extra:
            message += f" [{extra}]"
    if error.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and target:
        message = f"{target}: {message}"
    details: dict[str, Any] = {}
    if error.retry_delay is not None:
        details["retry_after_seconds"] = round(error.retry_delay.total_seconds(), 3)
    return ToolFailure(message, code=f"{code}/{reason}" if reason else code, retryable=retryable, hint=hint,
                       details=details)


def invalid_arguments(problems: list[str]) -> ToolFailure:
    return ToolFailure("invalid arguments: " + "; ".join(problems), code="INVALID_ARGUMENT",
                       hint="Fix the arguments as described (the tool's input schema lists every field) and call "
                            "again.")
