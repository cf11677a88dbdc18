"""--containment cgroup: one cgroup v2 per run. An escaped descendant that left
its group and session AND scrubbed its environment is found only through the
cgroup; cancel, and the watchdog when the worker is gone, kill it. Skipped where
no writable cgroup v2 hierarchy exists (the mode then falls back to tokens)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from services.worker.containment import procs as containment
from services.worker.containment.cgroups import CgroupTree
from services.worker.executors.subprocess_executor import SubprocessExecutor
from tests.support.waiting import wait_until
from worker_test_helpers import pid_alive, wait_for

PY = sys.executable

# The grandchild leaves group and session, is orphaned, and re-executes itself
# with an empty environment: no token, no tree leads to it.
SCRUBBER = """
import os, sys, time
mission_dir = os.environ.get("VP_MISSION_DIR") or sys.argv[2]
if sys.argv[1] == "hidden":
    with open(os.path.join(mission_dir, "hidden.pid"), "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(120)
    sys.exit(0)
if os.fork() == 0:
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    os.execve(sys.executable, [sys.executable, sys.argv[0], "hidden", mission_dir], {})
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def cgroups():
    tree = CgroupTree.create(containment.new_run_token())
    if tree is None:
        pytest.skip("no writable cgroup v2 hierarchy here")
    yield tree
    tree.close()


def scrubber(tmp_path: Path) -> str:
    path = tmp_path / "scrubber.py"
    path.write_text(textwrap.dedent(SCRUBBER))
    return str(path)


async def test_cancel_kills_a_descendant_that_escaped_group_session_and_environment(
        tmp_path, make_run, progress, cgroups):
    run = make_run()
    executor = SubprocessExecutor([PY, scrubber(tmp_path), "agent"], kill_grace=1.0)
    executor.contain(tmp_path / "records", containment.new_run_token(), cgroups)
    task = asyncio.create_task(executor.run(run, progress))
    hidden_file = run.mission_dir / "hidden.pid"
    assert await wait_for(lambda: hidden_file.exists() and hidden_file.read_text(), timeout=20)
    await asyncio.wait_for(progress.saw("ready").wait(), 20)
    hidden = int(hidden_file.read_text())
    assert b"VP_RUN_TOKEN" not in Path(f"/proc/{hidden}/environ").read_bytes()  # tokens cannot find it
    assert hidden in CgroupTree.members(cgroups.base)
    run.cancel.set()
    result = await asyncio.wait_for(task, 30)
    assert result.outcome == "cancelled"
    assert not pid_alive(hidden)
    assert not any(p.name.startswith("run-") for p in cgroups.base.iterdir())  # the run's cgroup is removed


def test_watchdog_kills_the_workers_cgroup_when_the_worker_is_gone(tmp_path, cgroups):
    procs = cgroups.run_cgroup(containment.new_run_token())
    mission_dir = tmp_path / "m"
    mission_dir.mkdir()
    agent = subprocess.Popen(containment.die_with_parent([PY, scrubber(tmp_path), "agent", str(mission_dir)],
                                                         cgroup_procs=str(procs / "cgroup.procs")),
                             env={**os.environ, "VP_MISSION_DIR": str(mission_dir)}, stdout=subprocess.DEVNULL,
                             start_new_session=True)
    watchdog = subprocess.Popen([PY, "-m", "services.worker.containment.watchdog", "no-token-matches",
                                 str(tmp_path / "records"), str(cgroups.base)], stdin=subprocess.PIPE,
                                cwd=str(Path(__file__).resolve().parents[2]))
    try:
        hidden = int(wait_until(lambda: (mission_dir / "hidden.pid").exists()
                                and (mission_dir / "hidden.pid").read_text(), timeout=20))
        assert hidden in CgroupTree.members(cgroups.base)
        watchdog.stdin.close()  # the worker is gone
        assert watchdog.wait(30) == 0
        agent.wait(10)
        wait_until(lambda: not pid_alive(hidden), timeout=10, what="the hidden descendant to die")
        assert not cgroups.base.exists()
    finally:
        for proc in (agent, watchdog):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
