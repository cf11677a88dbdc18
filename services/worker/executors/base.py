"""The executor interface: what the worker hands an executor and what it gets back.

An executor runs one attempt of one mission. It receives a MissionRun (the
envelope plus where to work and where to put artifacts) and a progress sink,
and returns an ExecutionResult. Executors must watch ``run.cancel`` and, once it
is set, stop promptly and return outcome "cancelled".
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol, runtime_checkable

from google.protobuf import json_format

from services.common.contracts.vp.v1 import mission_pb2

COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
BLOCKED = "blocked"
TIMED_OUT = "timed_out"

#: Every outcome an executor may report.
OUTCOMES: frozenset[str] = frozenset({COMPLETED, FAILED, CANCELLED, BLOCKED, TIMED_OUT})

#: Stable error codes set by the built-in executors.
EXECUTOR_EXIT_NONZERO = "EXECUTOR_EXIT_NONZERO"
EXECUTOR_START_FAILED = "EXECUTOR_START_FAILED"
EXECUTOR_EXCEPTION = "EXECUTOR_EXCEPTION"
EXECUTOR_BAD_RESULT = "EXECUTOR_BAD_RESULT"
BUDGET_EXCEEDED = "BUDGET_EXCEEDED"

#: Summaries are meant to be short; anything longer is cut to this many characters.
SUMMARY_LIMIT = 4096

#: (message, payload) -> awaitable. Called by executors to report progress.
ProgressSink = Callable[[str, dict], Awaitable[None]]


@dataclass
class MissionRun:
    """One attempt of one mission, as handed to an executor."""

    mission_id: str
    attempt: int
    run_id: str
    envelope: mission_pb2.MissionEnvelope
    #: The VP's persistent workspace (survives across missions).
    workspace_dir: Path
    #: This mission's own directory (artifacts go here); normally
    #: ``workspace_dir / "missions" / mission_id``.
    mission_dir: Path
    #: Set by the worker to ask the executor to stop.
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    #: The lane running the mission, e.g. "vp.coder.primary" (informational).
    vp_id: str = ""
    #: The mission as assigned (usage so far, budget in force, answer); agent protocol v1.
    mission: mission_pb2.Mission | None = None
    #: The agent conversation this run continues ("" for a fresh one); agent protocol v1 §8.
    conversation_id: str = ""

    def __post_init__(self) -> None:
        self.workspace_dir = Path(self.workspace_dir)
        self.mission_dir = Path(self.mission_dir)


@dataclass
class ExecutionResult:
    outcome: str
    summary: str = ""
    error_code: str = ""
    error_message: str = ""
    #: Agent protocol v1: why the run is BLOCKED ("input_required", "budget_exceeded").
    blocked_reason: str = ""
    question: str = ""
    choices: tuple[str, ...] = ()
    #: Usage of this run (mission_pb2.Usage), the agent conversation it used, and the agent preset.
    usage: Any = None
    conversation_id: str = ""
    agent: str = ""

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}; expected one of {sorted(OUTCOMES)}")
        self.summary = clip(str(self.summary or ""), SUMMARY_LIMIT)
        self.error_code = str(self.error_code or "")
        self.error_message = str(self.error_message or "")

    @classmethod
    def completed(cls, summary: str = "") -> "ExecutionResult":
        return cls(COMPLETED, summary=summary)

    @classmethod
    def failed(cls, error_code: str, error_message: str, summary: str = "") -> "ExecutionResult":
        return cls(FAILED, summary=summary, error_code=error_code, error_message=error_message)

    @classmethod
    def cancelled(cls, summary: str = "cancelled") -> "ExecutionResult":
        return cls(CANCELLED, summary=summary)

    @classmethod
    def timed_out(cls, error_message: str, summary: str = "") -> "ExecutionResult":
        return cls(TIMED_OUT, summary=summary, error_code=BUDGET_EXCEEDED, error_message=error_message)


@runtime_checkable
class Executor(Protocol):
    async def run(self, run: MissionRun, progress: ProgressSink) -> ExecutionResult:
        """Run one attempt. Must honour ``run.cancel`` promptly (outcome "cancelled")."""
        ...


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 3)] + "..."


def one_line(text: str, limit: int = 500) -> str:
    """Collapse text to a single line of at most ``limit`` characters."""
    return clip(" ".join(str(text).split()), limit)


def envelope_to_dict(envelope: mission_pb2.MissionEnvelope) -> dict[str, Any]:
    return json_format.MessageToDict(
        envelope, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def envelope_to_json(envelope: mission_pb2.MissionEnvelope) -> str:
    """The envelope as compact JSON (proto field names, default values included)."""
    return json.dumps(envelope_to_dict(envelope), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def max_duration_seconds(envelope: mission_pb2.MissionEnvelope, default: float | None = None) -> float | None:
    """budget.max_duration in seconds; unset or zero gives ``default`` (None: no limit)."""
    if envelope.HasField("budget") and envelope.budget.HasField("max_duration"):
        d = envelope.budget.max_duration
        if d.seconds or d.nanos:
            seconds = d.ToTimedelta().total_seconds()
            return seconds if seconds > 0 else 0.0
    return default


def format_seconds(seconds: float) -> str:
    return f"{seconds:g}s"
