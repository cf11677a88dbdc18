"""SubprocessExecutor against real child processes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from services.worker.executors import build_executor
from services.worker.executors.subprocess_executor import SubprocessExecutor
from worker_test_helpers import pid_alive, wait_for

PY = sys.executable


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


async def test_objective_with_shell_metacharacters_arrives_verbatim_as_one_argv(tmp_path, make_run, progress):
    dump = script(tmp_path, "dump.py", """
        import json, os, sys
        data = {
            "argv": sys.argv[1:],
            "stdin": sys.stdin.read(),
            "cwd": os.getcwd(),
            "env": {k: v for k, v in os.environ.items() if k.startswith("VP_")},
        }
        with open(os.path.join(os.environ["VP_MISSION_DIR"], "dump.json"), "w") as fh:
            json.dump(data, fh)
        print("dumped")
    """)
    objective = '; rm -rf / $(whoami) "quotes" `id` && echo {mission_id} \'single\' | cat > /tmp/x'
    run = make_run(objective, target_path="/srv/out")
    executor = SubprocessExecutor(
        [PY, dump, "{objective}", "--id={mission_id}", "{mission_dir}", "{workspace_dir}", "{target_path}",
         "{envelope_json}", "plain"],
    )
    result = await executor.run(run, progress)
    assert result.outcome == "completed", result
    assert result.summary == "dumped"

    data = json.loads((run.mission_dir / "dump.json").read_text())
    argv = data["argv"]
    assert argv[0] == objective  # one element, byte for byte, {mission_id} inside not expanded
    assert argv[1] == f"--id={run.mission_id}"
    assert argv[2] == str(run.mission_dir)
    assert argv[3] == str(run.workspace_dir)
    assert argv[4] == "/srv/out"
    assert json.loads(argv[5])["objective"] == objective
    assert argv[6] == "plain"
    assert len(argv) == 7

    assert json.loads(data["stdin"])["mission_id"] == run.mission_id
    assert Path(data["cwd"]).resolve() == run.workspace_dir.resolve()
    env = data["env"]
    assert env["VP_MISSION_ID"] == run.mission_id
    assert env["VP_MISSION_DIR"] == str(run.mission_dir)
    assert env["VP_WORKSPACE_DIR"] == str(run.workspace_dir)
    envelope_file = Path(env["VP_ENVELOPE_FILE"])
    assert envelope_file == run.mission_dir / "envelope.json"
    assert json.loads(envelope_file.read_text())["objective"] == objective


async def test_stdout_lines_become_ordered_progress(tmp_path, make_run, progress):
    s = script(tmp_path, "lines.py", """
        import sys
        for word in ["alpha", "beta", "", "gamma"]:
            print(word, flush=True)
        sys.stdout.write("delta-no-newline")
    """)
    run = make_run()
    result = await SubprocessExecutor([PY, s]).run(run, progress)
    assert result.outcome == "completed"
    assert progress.messages == ["alpha", "beta", "", "gamma", "delta-no-newline"]
    assert [p["line_no"] for _, p in progress.calls] == [1, 2, 3, 4, 5]
    assert all(p["stream"] == "stdout" for _, p in progress.calls)
    assert result.summary == "delta-no-newline"
    assert (run.mission_dir / "stdout.log").read_text().splitlines() == [
        "alpha", "beta", "", "gamma", "delta-no-newline"]


async def test_overlong_line_is_truncated_not_a_crash(tmp_path, make_run, progress):
    s = script(tmp_path, "long.py", """
        import sys
        sys.stdout.write("x" * 200000 + "\\n")
        sys.stdout.write("after\\n")
    """)
    result = await SubprocessExecutor([PY, s]).run(make_run(), progress)
    assert result.outcome == "completed"
    assert len(progress.calls) == 2
    first, payload = progress.calls[0]
    assert len(first) == 64 * 1024 and payload.get("truncated") is True
    assert progress.calls[1] == ("after", {"stream": "stdout", "line_no": 2})


async def test_nonzero_exit_fails_with_stderr_tail(tmp_path, make_run, progress):
    s = script(tmp_path, "fail.py", """
        import sys
        print("working")
        sys.stderr.write("noise\\n" * 20000)
        sys.stderr.write("boom: the real reason\\n")
        sys.exit(3)
    """)
    run = make_run()
    result = await SubprocessExecutor([PY, s]).run(run, progress)
    assert result.outcome == "failed"
    assert result.error_code == "EXECUTOR_EXIT_NONZERO"
    assert "exited with code 3" in result.error_message
    assert "boom: the real reason" in result.error_message
    stderr_log = (run.mission_dir / "stderr.log").read_bytes()
    assert stderr_log.endswith(b"boom: the real reason\n")
    assert len(stderr_log) <= 64 * 1024 + 100  # bounded tail plus a marker line
    assert b"earlier bytes dropped" in stderr_log


async def test_missing_command_fails_to_start(tmp_path, make_run, progress):
    result = await SubprocessExecutor([str(tmp_path / "no-such-binary")]).run(make_run(), progress)
    assert result.outcome == "failed"
    assert result.error_code == "EXECUTOR_START_FAILED"


STUBBORN = """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"])
    with open(sys.argv[1], "w") as fh:
        fh.write(f"{os.getpid()} {grandchild.pid}")
    print("ready", flush=True)
    time.sleep(120)
"""


async def test_cancel_escalates_to_sigkill_and_kills_the_whole_group(tmp_path, make_run, progress):
    s = script(tmp_path, "stubborn.py", STUBBORN)
    pids_file = tmp_path / "pids"
    run = make_run()
    executor = SubprocessExecutor([PY, s, str(pids_file)], kill_grace=0.3)
    ready = progress.saw("ready")
    task = asyncio.create_task(executor.run(run, progress))
    await asyncio.wait_for(ready.wait(), 10)
    child, grandchild = map(int, pids_file.read_text().split())
    assert pid_alive(child) and pid_alive(grandchild)

    run.cancel.set()
    result = await asyncio.wait_for(task, 10)
    assert result.outcome == "cancelled"
    assert "SIGKILL" in result.summary
    assert not pid_alive(child)
    assert not pid_alive(grandchild)


async def test_cancel_of_well_behaved_child_ends_with_sigterm(tmp_path, make_run, progress):
    s = script(tmp_path, "sleepy.py", """
        import time
        print("ready", flush=True)
        time.sleep(120)
    """)
    run = make_run()
    # A long grace: if SIGTERM did not work, the summary would name SIGKILL.
    executor = SubprocessExecutor([PY, s], kill_grace=30)
    ready = progress.saw("ready")
    task = asyncio.create_task(executor.run(run, progress))
    await asyncio.wait_for(ready.wait(), 10)
    run.cancel.set()
    result = await asyncio.wait_for(task, 10)
    assert result.outcome == "cancelled"
    assert "SIGTERM" in result.summary


async def test_cancel_before_start_runs_nothing(tmp_path, make_run, progress):
    marker = tmp_path / "ran"
    run = make_run()
    run.cancel.set()
    result = await SubprocessExecutor([PY, "-c", f"open({str(marker)!r}, 'w')"]).run(run, progress)
    assert result.outcome == "cancelled"
    assert not marker.exists()


async def test_budget_max_duration_times_out(tmp_path, make_run, progress):
    s = script(tmp_path, "slow.py", """
        import time
        print("started", flush=True)
        time.sleep(120)
    """)
    run = make_run(max_duration=0.4)
    result = await asyncio.wait_for(SubprocessExecutor([PY, s], kill_grace=0.2).run(run, progress), 10)
    assert result.outcome == "timed_out"
    assert result.error_code == "BUDGET_EXCEEDED"
    assert "max_duration" in result.error_message


async def test_leftover_group_members_are_stopped_after_normal_exit(tmp_path, make_run, progress):
    s = script(tmp_path, "leaver.py", """
        import subprocess, sys
        # The grandchild inherits stdout: without cleanup run() would wait for it.
        gc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        with open(sys.argv[1], "w") as fh:
            fh.write(str(gc.pid))
        print("done")
    """)
    pid_file = tmp_path / "gc"
    result = await asyncio.wait_for(
        SubprocessExecutor([PY, s, str(pid_file)], kill_grace=0.3).run(make_run(), progress), 10)
    assert result.outcome == "completed"
    assert result.summary == "done"
    assert not pid_alive(int(pid_file.read_text()))


async def test_process_escaping_the_group_with_the_pipe_does_not_hang_run(tmp_path, make_run, progress, monkeypatch):
    from services.worker.executors import subprocess_executor

    monkeypatch.setattr(subprocess_executor, "_DRAIN_TIMEOUT", 0.2)
    s = script(tmp_path, "escaper.py", """
        import subprocess, sys
        gc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
        with open(sys.argv[1], "w") as fh:
            fh.write(str(gc.pid))
        print("done")
    """)
    pid_file = tmp_path / "gc"
    try:
        result = await asyncio.wait_for(SubprocessExecutor([PY, s, str(pid_file)]).run(make_run(), progress), 10)
        assert result.outcome == "completed" and result.summary == "done"
    finally:
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), 9)
            except ProcessLookupError:
                pass


async def test_worker_task_cancellation_kills_the_child(tmp_path, make_run, progress):
    s = script(tmp_path, "stubborn.py", STUBBORN)
    pids_file = tmp_path / "pids"
    ready = progress.saw("ready")
    task = asyncio.create_task(SubprocessExecutor([PY, s, str(pids_file)]).run(make_run(), progress))
    await asyncio.wait_for(ready.wait(), 10)
    child, grandchild = map(int, pids_file.read_text().split())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_for(lambda: not pid_alive(child) and not pid_alive(grandchild))


async def test_failing_progress_sink_does_not_break_the_run(tmp_path, make_run):
    async def broken(message, payload):
        raise RuntimeError("sink down")

    result = await SubprocessExecutor([PY, "-c", "print('a'); print('b')"]).run(make_run(), broken)
    assert result.outcome == "completed" and result.summary == "b"


def test_command_validation():
    with pytest.raises(ValueError, match="list of argv"):
        build_executor("subprocess", command="python -m tool {objective}")
    with pytest.raises(ValueError, match="needs a command"):
        build_executor("subprocess")
    with pytest.raises(ValueError, match="unknown placeholder"):
        build_executor("subprocess", command=["tool", "{objectve}"])
    with pytest.raises(ValueError, match="does not take option"):
        build_executor("subprocess", command=["tool"], shell=True)
    executor = build_executor("subprocess", command=["tool", "{objective}", "{}"], kill_grace=0.5)
    assert isinstance(executor, SubprocessExecutor) and executor.kill_grace == 0.5
