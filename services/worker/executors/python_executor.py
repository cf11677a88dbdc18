"""Run a mission by calling a Python function.

The entry point is ``"package.module:function"`` (the part after the colon may
be a dotted attribute path). The function is called as ``fn(run, progress)``:

* ``async def``: awaited on the worker's loop; when ``run.cancel`` is set (or
  budget.max_duration runs out) the task is cancelled.
* plain ``def``: run in a worker thread. A thread cannot be interrupted, so
  cancellation is cooperative: the function should poll ``run.cancel.is_set()``.
  It receives a blocking ``progress(message, payload=None)`` callable.

It may return an ExecutionResult, a dict of ExecutionResult fields (outcome
defaults to "completed"), a str (the summary) or None. An exception becomes
outcome "failed" with error_code EXECUTOR_EXCEPTION and a one-line message;
the traceback goes to the log only.

The function sees a copy of the MissionRun whose ``cancel`` event is set on a
cancel request or a budget timeout, so the worker's own event is never touched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import logging
import re
from typing import Any, Callable

from services.worker.executors.base import (
    COMPLETED,
    EXECUTOR_BAD_RESULT,
    EXECUTOR_EXCEPTION,
    ExecutionResult,
    MissionRun,
    ProgressSink,
    format_seconds,
    max_duration_seconds,
    one_line,
)

log = logging.getLogger(__name__)

DEFAULT_CANCEL_GRACE = 5.0
_ENTRY_POINT_RE = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
)
_RESULT_KEYS = frozenset(f.name for f in dataclasses.fields(ExecutionResult))


def load_entry_point(entry_point: str) -> Callable[..., Any]:
    """Import ``"package.module:attr.path"``; ValueError with the reason if it cannot."""
    if not isinstance(entry_point, str) or not _ENTRY_POINT_RE.match(entry_point):
        raise ValueError(f"python entry point must look like 'package.module:function', got {entry_point!r}")
    module_name, _, attr_path = entry_point.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is a config error
        raise ValueError(f"python entry point {entry_point!r}: cannot import {module_name!r}: {exc!r}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"python entry point {entry_point!r}: {module_name!r} has no attribute {attr_path!r}") from None
    if not callable(obj):
        raise ValueError(f"python entry point {entry_point!r} is not callable")
    return obj


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


class PythonExecutor:
    def __init__(
        self,
        entry_point: str | Callable[..., Any],
        *,
        cancel_grace: float = DEFAULT_CANCEL_GRACE,
        default_max_duration: float | None = None,
    ) -> None:
        if cancel_grace < 0:
            raise ValueError("cancel_grace must be >= 0")
        if default_max_duration is not None and default_max_duration <= 0:
            raise ValueError("default_max_duration must be > 0 when set")
        if callable(entry_point):
            self.entry_point = getattr(entry_point, "__qualname__", repr(entry_point))
            self.fn = entry_point
        else:
            self.entry_point = entry_point
            self.fn = load_entry_point(entry_point)
        self.is_async = _is_async(self.fn)
        self.cancel_grace = float(cancel_grace)
        self.default_max_duration = default_max_duration

    async def run(self, run: MissionRun, progress: ProgressSink) -> ExecutionResult:
        if run.cancel.is_set():
            return ExecutionResult.cancelled("cancelled before start")
        inner = dataclasses.replace(run, cancel=asyncio.Event())
        timeout = max_duration_seconds(run.envelope, self.default_max_duration)
        if self.is_async:
            work: asyncio.Future = asyncio.ensure_future(self.fn(inner, progress))
        else:
            work = asyncio.ensure_future(asyncio.to_thread(self.fn, inner, _BlockingProgress(progress)))
        cancel_task = asyncio.ensure_future(run.cancel.wait())
        try:
            done, _ = await asyncio.wait({work, cancel_task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            inner.cancel.set()
            work.cancel()
            work.add_done_callback(_consume)
            raise
        finally:
            cancel_task.cancel()

        if cancel_task not in done and work in done:
            return await self._result_of(run, work)

        reason = "cancelled" if cancel_task in done else "timed_out"
        inner.cancel.set()
        if self.is_async:
            work.cancel()
        stopped, _ = await asyncio.wait({work}, timeout=self.cancel_grace)
        if stopped:
            _consume(work)
        else:
            log.warning(
                "mission %s: entry point %s did not stop within %.2fs of %s; abandoning it",
                run.mission_id, self.entry_point, self.cancel_grace, reason,
            )
            work.add_done_callback(_consume)
        if reason == "cancelled":
            return ExecutionResult.cancelled()
        return ExecutionResult.timed_out(f"max_duration {format_seconds(timeout or 0)} exceeded")

    async def _result_of(self, run: MissionRun, work: asyncio.Future) -> ExecutionResult:
        if work.cancelled():
            return ExecutionResult.cancelled()
        exc = work.exception()
        if exc is not None:
            return self._failure(run, exc)
        value = work.result()
        if inspect.isawaitable(value):  # a sync callable that returned a coroutine
            try:
                value = await value
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                return self._failure(run, exc)
        return normalize_result(value)

    def _failure(self, run: MissionRun, exc: BaseException) -> ExecutionResult:
        if isinstance(exc, asyncio.CancelledError):
            return ExecutionResult.cancelled()
        log.error(
            "mission %s: entry point %s raised", run.mission_id, self.entry_point,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        text = str(exc).strip().splitlines()
        message = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
        return ExecutionResult.failed(EXECUTOR_EXCEPTION, one_line(message))


def normalize_result(value: Any) -> ExecutionResult:
    """Turn what an entry point returned into an ExecutionResult."""
    if isinstance(value, ExecutionResult):
        return value
    if value is None:
        return ExecutionResult.completed("")
    if isinstance(value, str):
        return ExecutionResult.completed(value)
    if isinstance(value, dict):
        unknown = set(value) - _RESULT_KEYS
        if unknown:
            return ExecutionResult.failed(
                EXECUTOR_BAD_RESULT, f"result dict has unknown keys: {', '.join(sorted(map(str, unknown)))}"
            )
        fields = {"outcome": COMPLETED, **value}
        try:
            return ExecutionResult(**fields)
        except (TypeError, ValueError) as exc:
            return ExecutionResult.failed(EXECUTOR_BAD_RESULT, one_line(f"bad result dict: {exc}"))
    return ExecutionResult.failed(
        EXECUTOR_BAD_RESULT,
        f"entry point returned {type(value).__name__}; expected ExecutionResult, dict, str or None",
    )


class _BlockingProgress:
    """A progress callable for sync entry points running in a thread."""

    def __init__(self, sink: ProgressSink) -> None:
        self._sink = sink
        self._loop = asyncio.get_running_loop()

    def __call__(self, message: str, payload: dict | None = None) -> None:
        future = asyncio.run_coroutine_threadsafe(self._sink(message, dict(payload or {})), self._loop)
        future.result()


def _consume(future: asyncio.Future) -> None:
    """Retrieve a finished future's exception so asyncio does not warn about it."""
    if future.done() and not future.cancelled():
        future.exception()
