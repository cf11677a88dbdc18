"""The missions a worker is running: one asyncio task per run, at most
``capacity`` executing at once.

A run goes: wait for a free slot -> prepare ``<workspace>/missions/<id>`` ->
report ``started`` -> executor.run(progress) -> mission_dir.finalize() ->
report ``result``. Reporting goes through a RunReporter (the dispatcher
channel). A run can be

* cancelled (dispatcher MissionCancel): its cancel event is set, the executor
  stops, and the result carries the dispatcher's final_state (CANCELLED or
  TIMED_OUT);
* stopped (lease lost, revoked, drain timeout): cancelled AND suppressed, so
  nothing at all is reported for it: a worker whose term is over must not act.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from opentelemetry.trace import SpanKind

from services.common.clock import Clock, SystemClock
from services.common.telemetry import tracing
from services.common.contracts.vp.v1 import enums_pb2, mission_pb2, session_pb2
from services.common.contracts.vp.v1 import worker_channel_service_pb2 as wc_pb
from services.common.errors import VpError
from services.worker import mission_dir as mission_dirs
from services.worker.agents.memory import ConversationMemory
from services.worker.executors import (
    BLOCKED,
    CANCELLED,
    COMPLETED,
    EXECUTOR_EXCEPTION,
    FAILED,
    TIMED_OUT,
    ExecutionResult,
    Executor,
    MissionRun,
)
from services.worker.executors.base import one_line

log = logging.getLogger("vp.worker.runs")

OUTCOME_TO_STATE: dict[str, int] = {
    COMPLETED: enums_pb2.MISSION_STATE_COMPLETED,
    FAILED: enums_pb2.MISSION_STATE_FAILED,
    CANCELLED: enums_pb2.MISSION_STATE_CANCELLED,
    BLOCKED: enums_pb2.MISSION_STATE_BLOCKED,
    TIMED_OUT: enums_pb2.MISSION_STATE_TIMED_OUT,
}
STATE_TO_OUTCOME: dict[int, str] = {v: k for k, v in OUTCOME_TO_STATE.items()}
#: States a dispatcher cancel may ask the worker to report.
CANCEL_STATES = frozenset({enums_pb2.MISSION_STATE_CANCELLED, enums_pb2.MISSION_STATE_TIMED_OUT})

MISSION_DIR_FAILED = "MISSION_DIR_FAILED"
RESULT_WRITE_FAILED = "RESULT_WRITE_FAILED"
#: How long stop_all waits for executors to honour the cancel event before
#: cancelling their tasks outright (a subprocess executor then SIGKILLs its group).
DEFAULT_STOP_GRACE = 15.0


class RunReporter(Protocol):
    async def started(self, run: "ActiveRun") -> None: ...

    async def progress(self, run: "ActiveRun", seq: int, message: str, payload: dict) -> None: ...

    async def result(self, run: "ActiveRun", result: wc_pb.MissionResult) -> None: ...


@dataclass(eq=False)
class ActiveRun:
    mission: mission_pb2.Mission
    mission_id: str
    attempt: int
    run_id: str
    lease_epoch: int
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    #: State the dispatcher asked to report once cancelled (0: no cancel asked).
    final_state: int = 0
    cancel_reason: str = ""
    #: Report nothing more for this run (term over, revoked, drain timeout).
    suppressed: bool = False
    started: bool = False
    seq: int = 0
    predecessor: asyncio.Task | None = None
    #: W3C context of the dispatcher's assignment span: the parent of this run's span.
    traceparent: str = ""
    tracestate: str = ""

    @property
    def log_extra(self) -> dict:
        return {"mission_id": self.mission_id, "run_id": self.run_id, "attempt": self.attempt,
                "lease_epoch": self.lease_epoch}


class RunSet:
    def __init__(self, *, vp_id: str, executor: Executor, capacity: int, reporter: RunReporter | None = None,
                 clock: Clock | None = None, stop_grace: float = DEFAULT_STOP_GRACE) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.vp_id = vp_id
        self.executor = executor
        self.capacity = capacity
        self.reporter = reporter
        self.clock = clock or SystemClock()
        self.stop_grace = stop_grace
        self.workspace_dir: Path | None = None
        self._slots = asyncio.Semaphore(capacity)
        self._runs: dict[str, ActiveRun] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self.executing = 0
        self.max_executing = 0
        #: The VP's agent conversation (agent protocol v1 §8); set by the worker.
        self.memory = ConversationMemory(getattr(executor, "agent_name", ""))

    # -- queries ----------------------------------------------------------

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, mission_id: str) -> ActiveRun | None:
        return self._runs.get(mission_id)

    def mission_ids(self) -> list[str]:
        return list(self._runs)

    def active(self) -> list[ActiveRun]:
        return list(self._runs.values())

    async def wait_idle(self) -> None:
        await self._idle.wait()

    # -- control ----------------------------------------------------------

    def start(self, mission: mission_pb2.Mission, *, run_id: str, lease_epoch: int,
              trace: mission_pb2.TraceContext | None = None) -> ActiveRun:
        """Start (or queue, when every slot is busy) one run. An older run of the
        same mission is stopped first, silently."""
        if self.reporter is None or self.workspace_dir is None:
            raise RuntimeError("RunSet needs a reporter and a workspace_dir before start()")
        mission_id = mission.envelope.mission_id
        parent = trace if trace is not None and trace.traceparent else mission.envelope.trace
        run = ActiveRun(mission=mission, mission_id=mission_id, attempt=mission.attempt or 1,
                        run_id=run_id or mission.run_id, lease_epoch=lease_epoch,
                        traceparent=parent.traceparent, tracestate=parent.tracestate)
        previous = self._runs.get(mission_id)
        if previous is not None:
            log.info("mission %s: attempt %d replaces running attempt %d; stopping the old run", mission_id,
                     run.attempt, previous.attempt, extra=run.log_extra)
            self._suppress(previous)
            run.predecessor = previous.task
        self._runs[mission_id] = run
        self._idle.clear()
        run.task = asyncio.create_task(self._execute(run), name=f"mission:{mission_id}:{run.attempt}")
        return run

    def cancel(self, mission_id: str, final_state: int = enums_pb2.MISSION_STATE_CANCELLED,
               reason: str = "") -> ActiveRun | None:
        """Dispatcher cancel: stop the run and report ``final_state``."""
        run = self._runs.get(mission_id)
        if run is None:
            return None
        if final_state not in CANCEL_STATES:
            final_state = enums_pb2.MISSION_STATE_CANCELLED
        run.final_state = final_state
        run.cancel_reason = reason
        run.cancel.set()
        log.info("mission %s: cancel requested (%s): %s", mission_id,
                 enums_pb2.MissionState.Name(final_state), reason or "-", extra=run.log_extra)
        return run

    def revoke(self, mission_id: str) -> ActiveRun | None:
        """Stop a run silently without waiting (the dispatcher no longer assigns it here)."""
        run = self._runs.get(mission_id)
        if run is not None:
            self._suppress(run)
            log.info("mission %s: revoked by the dispatcher; stopping it without a result", mission_id,
                     extra=run.log_extra)
        return run

    async def stop_all(self, why: str = "") -> int:
        """Stop every run silently and wait until they are gone; returns how many there were."""
        runs = list(self._runs.values())
        if not runs:
            return 0
        for run in runs:
            self._suppress(run)
        log.info("stopping %d run(s) without reporting results%s", len(runs), f": {why}" if why else "",
                 extra={"vp_id": self.vp_id})
        tasks = {run.task for run in runs if run.task is not None}
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.stop_grace)
            for task in pending:
                log.warning("task %s ignored its cancel event for %.1fs; cancelling it", task.get_name(),
                            self.stop_grace, extra={"vp_id": self.vp_id})
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=self.stop_grace)
        return len(runs)

    @staticmethod
    def _suppress(run: ActiveRun) -> None:
        run.suppressed = True
        run.cancel.set()

    # -- one run ----------------------------------------------------------

    async def _execute(self, run: ActiveRun) -> None:
        try:
            if run.predecessor is not None:
                await asyncio.wait({run.predecessor})
            async with self._slots:
                self.executing += 1
                self.max_executing = max(self.max_executing, self.executing)
                try:
                    await self._execute_in_slot(run)
                finally:
                    self.executing -= 1
        except asyncio.CancelledError:
            log.info("mission %s: run task cancelled", run.mission_id, extra=run.log_extra)
            raise
        except Exception:  # noqa: BLE001 - a bug here must not kill the worker
            log.exception("mission %s: run failed unexpectedly", run.mission_id, extra=run.log_extra)
        finally:
            if self._runs.get(run.mission_id) is run:
                del self._runs[run.mission_id]
            if not self._runs:
                self._idle.set()

    async def _execute_in_slot(self, run: ActiveRun) -> None:
        attributes = {"mission_id": run.mission_id, "vp_id": self.vp_id, "run_id": run.run_id,
                      "attempt": run.attempt, "session_id": run.mission.session_id}
        with tracing.span("vp.execute", traceparent=run.traceparent, tracestate=run.tracestate,
                          kind=SpanKind.CONSUMER, attributes=attributes):
            await self._execute_traced(run, attributes)

    async def _execute_traced(self, run: ActiveRun, attributes: dict) -> None:
        assert self.reporter is not None and self.workspace_dir is not None
        workspace = self.workspace_dir
        if run.suppressed:
            return
        if run.cancel.is_set():
            # Cancelled while queued for a slot: nothing ran, nothing to finalize.
            await self._report(run, ExecutionResult.cancelled("cancelled before start"), result_ref="")
            return
        started_at = self.clock.now()
        try:
            directory = await asyncio.to_thread(mission_dirs.prepare, workspace, run.mission_id)
        except (VpError, OSError, ValueError) as exc:
            message = exc.message if isinstance(exc, VpError) else str(exc)
            log.warning("mission %s: cannot prepare mission directory: %s", run.mission_id, message,
                        extra=run.log_extra)
            await self._report(run, ExecutionResult.failed(MISSION_DIR_FAILED, one_line(message)), result_ref="")
            return

        run.started = True
        await self.reporter.started(run)
        log.info("mission %s attempt %d: started (run %s)", run.mission_id, run.attempt, run.run_id,
                 extra=run.log_extra)

        async def progress(message: str, payload: dict) -> None:
            if run.suppressed:
                return
            run.seq += 1
            await self.reporter.progress(run, run.seq, message, payload)

        mission_run = MissionRun(
            mission_id=run.mission_id, attempt=run.attempt, run_id=run.run_id, envelope=run.mission.envelope,
            workspace_dir=workspace, mission_dir=directory, cancel=run.cancel, vp_id=self.vp_id,
            mission=run.mission, conversation_id=await self.memory.for_run(run.mission),
        )
        try:
            result = await self.executor.run(mission_run, progress)
            if not isinstance(result, ExecutionResult):
                raise TypeError(f"executor returned {type(result).__name__}, not ExecutionResult")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            log.exception("mission %s: executor raised", run.mission_id, extra=run.log_extra)
            result = ExecutionResult.failed(EXECUTOR_EXCEPTION, one_line(f"{type(exc).__name__}: {exc}"))

        if run.suppressed:
            log.info("mission %s: stopped (%s); no result reported", run.mission_id, result.outcome,
                     extra=run.log_extra)
            return
        result = self._apply_cancel_state(run, result)
        try:
            with tracing.span("vp.finalize", attributes={**attributes, "outcome": result.outcome}):
                ref = await asyncio.to_thread(
                    mission_dirs.finalize, directory, mission_id=run.mission_id, vp_id=self.vp_id,
                    attempt=run.attempt, run_id=run.run_id, outcome=result.outcome, summary=result.summary,
                    error={"code": result.error_code, "message": result.error_message},
                    started_at=started_at, finished_at=self.clock.now(),
                )
        except Exception as exc:  # noqa: BLE001
            log.exception("mission %s: cannot write the receipt", run.mission_id, extra=run.log_extra)
            result = ExecutionResult.failed(RESULT_WRITE_FAILED, one_line(f"cannot finalize mission dir: {exc}"),
                                            summary=result.summary)
            ref = ""
        await self._report(run, result, result_ref=ref)

    @staticmethod
    def _apply_cancel_state(run: ActiveRun, result: ExecutionResult) -> ExecutionResult:
        """A run the dispatcher cancelled reports the dispatcher's final_state."""
        if result.outcome == CANCELLED and run.final_state == enums_pb2.MISSION_STATE_TIMED_OUT:
            return ExecutionResult.timed_out(one_line(run.cancel_reason or "timed out (stopped by the dispatcher)"),
                                             summary=result.summary)
        return result

    async def _report(self, run: ActiveRun, result: ExecutionResult, *, result_ref: str) -> None:
        if run.suppressed:
            return
        assert self.reporter is not None
        state = OUTCOME_TO_STATE[result.outcome]
        message = wc_pb.MissionResult(mission_id=run.mission_id, attempt=run.attempt, lease_epoch=run.lease_epoch,
                                      outcome=state, result_ref=result_ref, summary=result.summary)
        if result.error_code or result.error_message:
            message.error.CopyFrom(mission_pb2.MissionError(code=result.error_code, message=result.error_message))
        self._add_agent_fields(message, result)
        if message.HasField("conversation") and not run.suppressed:
            await self.memory.remember(message.conversation)
        log.info("mission %s attempt %d: %s%s", run.mission_id, run.attempt, enums_pb2.MissionState.Name(state),
                 f" ({result.error_code})" if result.error_code else "", extra=run.log_extra)
        await self.reporter.result(run, message)

    @staticmethod
    def _add_agent_fields(message: wc_pb.MissionResult, result: ExecutionResult) -> None:
        """Agent protocol v1: usage, why a run blocked, the question, the conversation."""
        if result.usage is not None:
            message.usage.CopyFrom(result.usage)
        if result.blocked_reason:
            message.blocked_reason = BLOCKED_REASONS.get(result.blocked_reason, enums_pb2.BLOCKED_REASON_UNSPECIFIED)
        if result.question:
            message.input_request.CopyFrom(mission_pb2.InputRequest(question=result.question,
                                                                    choices=list(result.choices)))
        if result.conversation_id:
            message.conversation.CopyFrom(session_pb2.AgentConversation(
                agent=result.agent, conversation_id=result.conversation_id, mission_id=message.mission_id))


BLOCKED_REASONS = {
    "input_required": enums_pb2.BLOCKED_REASON_INPUT_REQUIRED,
    "budget_exceeded": enums_pb2.BLOCKED_REASON_BUDGET_EXCEEDED,
}


def unique(ids: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in ids:
        seen.setdefault(item, None)
    return list(seen)
