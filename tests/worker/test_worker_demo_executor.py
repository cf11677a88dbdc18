"""DemoExecutor and NoopExecutor, plus the executor factory."""

from __future__ import annotations

import asyncio

import pytest

from services.common.errors import PathNotAllowed
from services.worker.executors import (
    EXECUTOR_KINDS,
    DemoExecutor,
    Executor,
    NoopExecutor,
    PythonExecutor,
    SubprocessExecutor,
    build_executor,
)
from services.common.guardrails import PathPolicy


async def test_demo_writes_into_mission_dir_and_workspace_journal(make_run, progress, workspace):
    run = make_run("Write a haiku about queues")
    result = await DemoExecutor(delay=0).run(run, progress)
    assert result.outcome == "completed"
    assert "haiku" in result.summary

    result_md = (run.mission_dir / "result.md").read_text()
    assert run.mission_dir == workspace / "missions" / run.mission_id
    assert "Write a haiku about queues" in result_md
    assert run.mission_id in result_md
    journal = (workspace / "journal.md").read_text().splitlines()
    assert len(journal) == 1 and run.mission_id in journal[0]

    steps = [p for _, p in progress.calls if "step" in p]
    assert 3 <= len(steps) <= 5
    assert [p["step"] for p in steps] == list(range(1, len(steps) + 1))


async def test_journal_accumulates_across_missions(make_run, progress, workspace):
    executor = DemoExecutor(delay=0)
    first, second = make_run("first objective"), make_run("second objective")
    assert (await executor.run(first, progress)).outcome == "completed"
    assert (await executor.run(second, progress)).outcome == "completed"
    journal = (workspace / "journal.md").read_text().splitlines()
    assert len(journal) == 2
    assert first.mission_id in journal[0] and "first objective" in journal[0]
    assert second.mission_id in journal[1] and "second objective" in journal[1]
    assert (first.mission_dir / "result.md").exists() and (second.mission_dir / "result.md").exists()


async def test_demo_writes_target_path_directory_and_file(tmp_path, make_run, progress):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    run = make_run("target dir", target_path=str(out_dir))
    assert (await DemoExecutor(delay=0).run(run, progress)).outcome == "completed"
    assert "target dir" in (out_dir / "result.md").read_text()

    target_file = tmp_path / "deeper" / "report.md"
    run = make_run("target file", target_path=str(target_file))
    policy = PathPolicy(allowed_roots=(tmp_path,))
    assert (await DemoExecutor(delay=0, path_policy=policy).run(run, progress)).outcome == "completed"
    assert "target file" in target_file.read_text()


async def test_demo_rechecks_target_path_with_its_policy(tmp_path, make_run, progress):
    run = make_run("escape", target_path="/etc/result.md")
    with pytest.raises(PathNotAllowed):
        await DemoExecutor(delay=0, path_policy=PathPolicy(allowed_roots=(tmp_path,))).run(run, progress)


async def test_demo_honours_cancel(make_run, progress, workspace):
    run = make_run()
    first_step = progress.saw("step 1")
    task = asyncio.create_task(DemoExecutor(delay=30).run(run, progress))
    await asyncio.wait_for(first_step.wait(), 5)
    run.cancel.set()
    result = await asyncio.wait_for(task, 5)
    assert result.outcome == "cancelled"
    assert not (run.mission_dir / "result.md").exists()
    assert not (workspace / "journal.md").exists()


async def test_demo_budget_timeout(make_run, progress):
    run = make_run(max_duration=0.1)
    result = await asyncio.wait_for(DemoExecutor(delay=30).run(run, progress), 5)
    assert result.outcome == "timed_out" and result.error_code == "BUDGET_EXCEEDED"


async def test_noop_completes_at_once(make_run, progress):
    result = await NoopExecutor().run(make_run(), progress)
    assert result.outcome == "completed"
    assert progress.calls == []
    run = make_run()
    run.cancel.set()
    assert (await NoopExecutor().run(run, progress)).outcome == "cancelled"


def test_factory_builds_every_kind():
    assert set(EXECUTOR_KINDS) == {"demo", "subprocess", "python", "noop"}
    demo = build_executor("demo", command=None, entry_point=None, delay=0, steps=3)
    assert isinstance(demo, DemoExecutor) and demo.delay == 0 and demo.steps == 3
    assert isinstance(build_executor("noop", command=None, entry_point=None), NoopExecutor)
    assert isinstance(build_executor("subprocess", command=["true"]), SubprocessExecutor)
    assert isinstance(build_executor("python", entry_point="json:dumps"), PythonExecutor)
    for kind in EXECUTOR_KINDS:
        kwargs = {"command": ["true"]} if kind == "subprocess" else {}
        if kind == "python":
            kwargs = {"entry_point": "json:dumps"}
        assert isinstance(build_executor(kind, **kwargs), Executor)


def test_factory_config_errors():
    with pytest.raises(ValueError, match="unknown executor kind 'shell'"):
        build_executor("shell", command=["sh"])
    with pytest.raises(ValueError, match="does not take a command"):
        build_executor("demo", command=["x"])
    with pytest.raises(ValueError, match="does not take an entry_point"):
        build_executor("noop", entry_point="a:b")
    with pytest.raises(ValueError, match="does not take option"):
        build_executor("noop", delay=1)
    with pytest.raises(ValueError, match="delay"):
        build_executor("demo", delay=-1)
