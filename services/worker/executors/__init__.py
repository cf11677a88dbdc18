"""Executors: what actually carries out a mission inside a worker.

``build_executor(kind, command=..., entry_point=..., **options)`` builds one
from configuration; kinds are "demo", "subprocess", "python" and "noop".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.worker.executors.base import (
    BLOCKED,
    BUDGET_EXCEEDED,
    CANCELLED,
    COMPLETED,
    EXECUTOR_BAD_RESULT,
    EXECUTOR_EXCEPTION,
    EXECUTOR_EXIT_NONZERO,
    EXECUTOR_START_FAILED,
    FAILED,
    OUTCOMES,
    TIMED_OUT,
    ExecutionResult,
    Executor,
    MissionRun,
    ProgressSink,
)
from services.worker.executors.demo_executor import DemoExecutor
from services.worker.executors.noop_executor import NoopExecutor
from services.worker.executors.python_executor import PythonExecutor
from services.worker.executors.subprocess_executor import SubprocessExecutor

EXECUTOR_KINDS: tuple[str, ...] = ("demo", "subprocess", "python", "noop")

_OPTIONS: dict[str, frozenset[str]] = {
    "demo": frozenset({"delay", "steps", "clock", "path_policy"}),
    "subprocess": frozenset(
        {"kill_grace", "env", "inherit_env", "default_max_duration", "max_line_bytes", "stderr_tail_bytes",
         "stdout_log_limit", "hooks", "run_records_dir", "worker_token"}
    ),
    "python": frozenset({"cancel_grace", "default_max_duration"}),
    "noop": frozenset(),
}


def build_executor(
    kind: str,
    *,
    command: Sequence[str] | None = None,
    entry_point: str | None = None,
    **options: Any,
) -> Executor:
    """Build an executor from configuration; ValueError says what is wrong."""
    kind = (kind or "").strip().lower()
    if kind not in _OPTIONS:
        raise ValueError(f"unknown executor kind {kind!r}; expected one of {', '.join(EXECUTOR_KINDS)}")
    unknown = sorted(set(options) - _OPTIONS[kind])
    if unknown:
        allowed = ", ".join(sorted(_OPTIONS[kind])) or "none"
        raise ValueError(f"executor kind {kind!r} does not take option(s) {', '.join(unknown)}; allowed: {allowed}")
    if kind != "subprocess" and command:
        raise ValueError(f"executor kind {kind!r} does not take a command (only 'subprocess' does)")
    if kind != "python" and entry_point:
        raise ValueError(f"executor kind {kind!r} does not take an entry_point (only 'python' does)")

    if kind == "subprocess":
        if not command:
            raise ValueError("executor kind 'subprocess' needs a command (a list of argv strings)")
        return SubprocessExecutor(command, **options)
    if kind == "python":
        if not entry_point:
            raise ValueError("executor kind 'python' needs an entry_point like 'package.module:function'")
        return PythonExecutor(entry_point, **options)
    if kind == "demo":
        return DemoExecutor(**options)
    return NoopExecutor()


__all__ = [
    "BLOCKED", "BUDGET_EXCEEDED", "CANCELLED", "COMPLETED", "EXECUTOR_BAD_RESULT", "EXECUTOR_EXCEPTION",
    "EXECUTOR_EXIT_NONZERO", "EXECUTOR_KINDS", "EXECUTOR_START_FAILED", "FAILED", "OUTCOMES", "TIMED_OUT",
    "DemoExecutor", "ExecutionResult", "Executor", "MissionRun", "NoopExecutor", "ProgressSink",
    "PythonExecutor", "SubprocessExecutor", "build_executor",
]
