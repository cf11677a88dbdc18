"""Agent containment with real processes and signals: nothing an agent starts
outlives its run, whether it stays in its group, leaves it with setsid(), or is
orphaned; a restarted worker kills what a dead one left behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from services.worker.containment import procs as containment
from services.worker.executors.subprocess_executor import SubprocessExecutor
from tests.support.waiting import wait_until
from worker_test_helpers import pid_alive, wait_for

PY = sys.executable

# The agent starts a grandchild that calls setsid() (leaves group and session)
# and, in "orphan" mode, exits its intermediate parent so the grandchild is
# re-parented. Both keep appending to a side-effect file.
ESCAPER = """
import os, sys, time
mission_dir = os.environ["VP_MISSION_DIR"]
mode = sys.argv[1]
side = sys.argv[2]

def loop(tag):
    while True:
        with open(side, "a") as fh:
            fh.write(f"{tag} {os.getpid()}\\n")
        time.sleep(0.05)

pid = os.fork()
if pid == 0:
    os.setsid()
    if mode == "orphan" and os.fork() != 0:
        os._exit(0)
    with open(os.path.join(mission_dir, "escaped.pid"), "w") as fh:
        fh.write(str(os.getpid()))
    loop("grandchild")
with open(os.path.join(mission_dir, "agent.pid"), "w") as fh:
    fh.write(str(os.getpid()))
print("ready", flush=True)
loop("agent")
"""


def escaper(tmp_path: Path) -> str:
    path = tmp_path / "escaper.py"
    path.write_text(textwrap.dedent(ESCAPER))
    return str(path)


async def _cancel_escaper(tmp_path, make_run, progress, mode: str) -> None:
    side = tmp_path / "side.log"
    run = make_run()
    executor = SubprocessExecutor([PY, escaper(tmp_path), mode, str(side)], kill_grace=1.0)
    task = asyncio.create_task(executor.run(run, progress))
    escaped_file = run.mission_dir / "escaped.pid"
    assert await wait_for(lambda: escaped_file.exists() and escaped_file.read_text(), timeout=20)
    await asyncio.wait_for(progress.saw("ready").wait(), 20)
    escaped = int(escaped_file.read_text())
    agent = int((run.mission_dir / "agent.pid").read_text())
    assert os.getpgid(escaped) != os.getpgid(agent)  # really out of the agent's group
    run.cancel.set()
    result = await asyncio.wait_for(task, 30)
    assert result.outcome == "cancelled"
    # run() returns only once every process of the run is gone: no waiting here.
    assert not pid_alive(agent) and not pid_alive(escaped)
    size = side.stat().st_size
    await asyncio.sleep(0.2)  # the writers loop every 50 ms: the file must stay still
    assert side.stat().st_size == size


async def test_cancel_stops_a_grandchild_that_called_setsid(tmp_path, make_run, progress):
    await _cancel_escaper(tmp_path, make_run, progress, "setsid")


async def test_cancel_stops_an_orphaned_setsid_grandchild(tmp_path, make_run, progress):
    await _cancel_escaper(tmp_path, make_run, progress, "orphan")


async def test_run_is_recorded_on_disk_while_it_runs(tmp_path, make_run, progress):
    records = tmp_path / "records"
    run = make_run()
    executor = SubprocessExecutor([PY, escaper(tmp_path), "setsid", str(tmp_path / "side.log")],
                                  kill_grace=1.0, run_records_dir=records)
    task = asyncio.create_task(executor.run(run, progress))
    await asyncio.wait_for(progress.saw("ready").wait(), 20)
    [record] = [json.loads(p.read_text()) for p in records.glob("*.json")]
    assert record["mission_id"] == run.mission_id and record["pid"] == int((run.mission_dir / "agent.pid").read_text())
    assert record["worker_token"] == containment.WORKER_TOKEN and record["worker_pid"] == os.getpid()
    run.cancel.set()
    await asyncio.wait_for(task, 30)
    assert list(records.glob("*.json")) == []


def test_sweep_kills_leftovers_of_a_previous_incarnation(tmp_path):
    """A process started by "another worker" (a different worker token) and
    recorded on disk is killed, with its setsid() descendant, by the sweep."""
    records = tmp_path / "records"
    mission_dir = tmp_path / "m"
    mission_dir.mkdir()
    side = tmp_path / "side.log"
    token = containment.new_run_token()
    env = {**os.environ, "VP_MISSION_DIR": str(mission_dir), containment.RUN_TOKEN_ENV: token,
           containment.WORKER_TOKEN_ENV: "an-older-incarnation"}
    agent = subprocess.Popen([PY, escaper(tmp_path), "orphan", str(side)], env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL)
    try:
        escaped = int(wait_until(lambda: (mission_dir / "escaped.pid").exists()
                                 and (mission_dir / "escaped.pid").read_text(), timeout=20))
        records.mkdir()
        (records / f"{token}.json").write_text(json.dumps({
            "run_token": token, "worker_token": "an-older-incarnation", "worker_pid": 1, "pid": agent.pid,
            "pgid": agent.pid, "starttime": containment.starttime_of(agent.pid), "mission_id": "m-1",
            "run_id": "r-1"}))
        killed = containment.sweep_leftovers(records)
        assert killed >= 2
        agent.wait(10)
        wait_until(lambda: not pid_alive(escaped), timeout=10, what="the escaped grandchild to die")
        assert list(records.glob("*.json")) == []
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)


def test_sweep_leaves_the_agents_of_a_live_worker_alone(tmp_path):
    """A standby worker of the same lane starts while the current one runs: the
    current worker's agents are not leftovers."""
    records = tmp_path / "records"
    agent = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        containment.RunRecords(records, "the-live-worker").write(
            "t-1", pid=agent.pid, pgid=agent.pid, starttime=containment.starttime_of(agent.pid))
        assert containment.sweep_leftovers(records, own_token="a-standby") == 0
        assert pid_alive(agent.pid) and len(list(records.glob("*.json"))) == 1
    finally:
        agent.kill()
        agent.wait(10)


def test_agent_dies_with_its_worker_on_kill_9(tmp_path):
    """PR_SET_PDEATHSIG: SIGKILL of the process that spawned the agent kills the agent."""
    holder = tmp_path / "holder.py"
    agent_pid_file = tmp_path / "agent.pid"
    holder.write_text(textwrap.dedent(f"""
        import asyncio, os, sys
        from services.worker.containment import procs as containment
        async def main():
            argv = [{PY!r}, "-c", "import os, time; open({str(agent_pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"]
            proc = await asyncio.create_subprocess_exec(*containment.die_with_parent(argv), start_new_session=True)
            await proc.wait()
        asyncio.run(main())
    """))
    parent = subprocess.Popen([PY, str(holder)], cwd=str(Path(__file__).resolve().parents[2]))
    try:
        agent = int(wait_until(lambda: agent_pid_file.exists() and agent_pid_file.read_text(), timeout=20))
        assert pid_alive(agent)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        wait_until(lambda: not pid_alive(agent), timeout=10, what="the agent to die with its parent")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


def _token_process(tmp_path: Path, token: str, name: str) -> subprocess.Popen:
    env = {**os.environ, containment.WORKER_TOKEN_ENV: token}
    return subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], env=env, start_new_session=True)


def test_watchdog_kills_the_workers_agents_when_the_lease_runs_out_and_when_the_worker_is_gone(tmp_path):
    token = containment.new_run_token()
    watchdog = subprocess.Popen([PY, "-m", "services.worker.containment.watchdog", token, str(tmp_path / "records")],
                                stdin=subprocess.PIPE, cwd=str(Path(__file__).resolve().parents[2]))
    agent = _token_process(tmp_path, token, "agent")
    bystander = _token_process(tmp_path, "another-worker", "bystander")
    try:
        assert watchdog.stdin is not None
        # A deadline far ahead, then one moved forward by a newer line: nothing happens yet.
        watchdog.stdin.write(f"deadline {time.monotonic() + 600}\n".encode())
        watchdog.stdin.flush()
        assert pid_alive(agent.pid)
        watchdog.stdin.write(f"deadline {time.monotonic() + 0.2}\n".encode())
        watchdog.stdin.flush()
        agent.wait(20)  # killed once the lease ran out, with the worker still there
        assert agent.returncode == -signal.SIGKILL and watchdog.poll() is None
        assert pid_alive(bystander.pid)

        late = _token_process(tmp_path, token, "late")
        watchdog.stdin.write(b"clear\n")
        watchdog.stdin.flush()
        assert pid_alive(late.pid)
        watchdog.stdin.close()  # the worker is gone
        late.wait(20)
        assert late.returncode == -signal.SIGKILL
        assert watchdog.wait(20) == 0
        assert pid_alive(bystander.pid)
    finally:
        for proc in (agent, bystander, watchdog):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
