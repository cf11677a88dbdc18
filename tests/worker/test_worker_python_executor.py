"""PythonExecutor: entry points loaded by name, sync and async, failure and cancel."""

from __future__ import annotations

import asyncio
import itertools
import textwrap
import threading

import pytest

from services.worker.executors import ExecutionResult, build_executor
from services.worker.executors.python_executor import PythonExecutor

_n = itertools.count()


@pytest.fixture
def entry_module(tmp_path, monkeypatch):
    """Write a module into tmp_path, importable under a unique name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str) -> str:
        name = f"vp_worker_test_entry_{next(_n)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    return write


async def test_async_entry_point_with_progress(entry_module, make_run, progress):
    mod = entry_module("""
        async def run(run, progress):
            await progress("step one", {"n": 1})
            await progress("step two", {"n": 2})
            return {"summary": f"did {run.envelope.objective}"}
    """)
    result = await build_executor("python", entry_point=f"{mod}:run").run(make_run("the work"), progress)
    assert result == ExecutionResult("completed", summary="did the work")
    assert progress.calls == [("step one", {"n": 1}), ("step two", {"n": 2})]


async def test_sync_entry_point_runs_in_a_thread(entry_module, make_run, progress):
    mod = entry_module("""
        import threading
        def run(run, progress):
            progress("from thread", {"thread": threading.current_thread().name})
            return "sync done"
    """)
    result = await PythonExecutor(f"{mod}:run").run(make_run(), progress)
    assert result.outcome == "completed" and result.summary == "sync done"
    assert progress.messages == ["from thread"]
    assert progress.calls[0][1]["thread"] != threading.main_thread().name


async def test_nested_attribute_and_execution_result_return(entry_module, make_run, progress):
    mod = entry_module("""
        from services.worker.executors.base import ExecutionResult
        class Tool:
            @staticmethod
            async def go(run, progress):
                return ExecutionResult("blocked", summary="needs input")
    """)
    result = await PythonExecutor(f"{mod}:Tool.go").run(make_run(), progress)
    assert result.outcome == "blocked" and result.summary == "needs input"


@pytest.mark.parametrize("is_async", [True, False])
async def test_exception_becomes_failed_with_one_line_message(entry_module, make_run, progress, is_async, caplog):
    mod = entry_module(f"""
        {'async ' if is_async else ''}def run(run, progress):
            raise RuntimeError("disk on fire\\nsecond line with details")
    """)
    result = await PythonExecutor(f"{mod}:run").run(make_run(), progress)
    assert result.outcome == "failed"
    assert result.error_code == "EXECUTOR_EXCEPTION"
    assert result.error_message == "RuntimeError: disk on fire"
    assert "Traceback" not in result.error_message
    assert any("raised" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_bad_return_value_is_reported(entry_module, make_run, progress):
    mod = entry_module("""
        def number(run, progress):
            return 42
        def bad_keys(run, progress):
            return {"outcome": "completed", "colour": "red"}
        def bad_outcome(run, progress):
            return {"outcome": "exploded"}
        def nothing(run, progress):
            return None
    """)
    for fn in ("number", "bad_keys", "bad_outcome"):
        result = await PythonExecutor(f"{mod}:{fn}").run(make_run(), progress)
        assert (result.outcome, result.error_code) == ("failed", "EXECUTOR_BAD_RESULT"), fn
    result = await PythonExecutor(f"{mod}:nothing").run(make_run(), progress)
    assert result.outcome == "completed"


async def test_cancel_async_entry_point(entry_module, make_run, progress):
    mod = entry_module("""
        import asyncio
        seen = []
        async def run(run, progress):
            await progress("started", {})
            try:
                await asyncio.sleep(120)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise
    """)
    import importlib

    module = importlib.import_module(mod)
    run = make_run()
    started = progress.saw("started")
    task = asyncio.create_task(PythonExecutor(f"{mod}:run").run(run, progress))
    await asyncio.wait_for(started.wait(), 5)
    run.cancel.set()
    result = await asyncio.wait_for(task, 5)
    assert result.outcome == "cancelled"
    assert module.seen == ["cancelled"]


async def test_cancel_sync_entry_point_is_cooperative(entry_module, make_run, progress):
    mod = entry_module("""
        import time
        def run(run, progress):
            progress("started")
            while not run.cancel.is_set():
                time.sleep(0.01)
            return "noticed the cancel"
    """)
    run = make_run()
    started = progress.saw("started")
    task = asyncio.create_task(PythonExecutor(f"{mod}:run", cancel_grace=5).run(run, progress))
    await asyncio.wait_for(started.wait(), 5)
    run.cancel.set()
    result = await asyncio.wait_for(task, 5)
    assert result.outcome == "cancelled"


async def test_budget_timeout_stops_the_entry_point_without_touching_worker_cancel(
        entry_module, make_run, progress):
    mod = entry_module("""
        import asyncio
        async def run(run, progress):
            await asyncio.sleep(120)
    """)
    run = make_run(max_duration=0.2)
    result = await asyncio.wait_for(PythonExecutor(f"{mod}:run").run(run, progress), 5)
    assert result.outcome == "timed_out" and result.error_code == "BUDGET_EXCEEDED"
    assert not run.cancel.is_set()


async def test_cancelled_before_start(make_run, progress):
    called = []

    async def fn(run, progress):
        called.append(1)

    run = make_run()
    run.cancel.set()
    assert (await PythonExecutor(fn).run(run, progress)).outcome == "cancelled"
    assert called == []


def test_entry_point_config_errors(entry_module):
    mod = entry_module("""
        value = 3
    """)
    with pytest.raises(ValueError, match="needs an entry_point"):
        build_executor("python")
    with pytest.raises(ValueError, match="package.module:function"):
        build_executor("python", entry_point="no_colon_here")
    with pytest.raises(ValueError, match="cannot import"):
        build_executor("python", entry_point="vp_no_such_module_xyz:run")
    with pytest.raises(ValueError, match="has no attribute"):
        build_executor("python", entry_point=f"{mod}:missing")
    with pytest.raises(ValueError, match="not callable"):
        build_executor("python", entry_point=f"{mod}:value")
