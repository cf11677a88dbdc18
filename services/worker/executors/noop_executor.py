"""An executor that does nothing and completes at once (benchmarks, smoke tests)."""

from __future__ import annotations

from services.worker.executors.base import ExecutionResult, MissionRun, ProgressSink


class NoopExecutor:
    async def run(self, run: MissionRun, progress: ProgressSink) -> ExecutionResult:
        if run.cancel.is_set():
            return ExecutionResult.cancelled("cancelled before start")
        return ExecutionResult.completed("noop")
