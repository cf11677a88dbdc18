"""vpctl over a real stack whose worker runs the demo executor (agent protocol
v1): a question exits 7 and prints it, resume answers it, usage and the VP's
conversation show up in get and sessions."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.agent_missions import start_worker, stop_worker
from tests.support.stack import running_stack

VPCTL = Path(sys.executable).parent / "vpctl"


async def vpctl(stack, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VP_", "VPCTL_"))} | stack.data_dir_env()
    argv = [str(VPCTL), "--dispatcher", stack.dispatcher_address, "--registry", stack.registry_address, *args]
    result = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=60, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result


async def test_question_exit_code_resume_and_conversation(sqlite_url, tmp_path):
    async with running_stack(sqlite_url) as stack:
        worker = await start_worker(stack, tmp_path, "demo")
        try:
            asked = await vpctl(stack, "dispatch", "--vp-id", "vp.coder.primary", "--type", "task", "--objective",
                                "may I delete the old logs?", "--max-tokens", "100000", "--wait")
            assert asked.returncode == 7, asked.stdout + asked.stderr
            assert "asks: Before I go on: may I delete the old logs? [choices: yes, no]" in asked.stderr
            mission_id = re.search(r"dispatched (m-[0-9a-f]+)", asked.stdout).group(1)
            assert f"vpctl resume {mission_id} --answer" in asked.stderr
            assert "blocked       input_required" in asked.stdout

            done = await vpctl(stack, "resume", mission_id, "--answer", "yes", "--wait")
            assert done.returncode == 0, done.stdout + done.stderr
            shown = (await vpctl(stack, "get", mission_id)).stdout
            assert re.search(r"usage\s+\d+ tokens \(\d+ in, 0 cached, \d+ out\), 0\.\d{4} USD, demo-1", shown)
            assert "answer        yes" in shown and "limits        100000 tokens" in shown

            sessions = (await vpctl(stack, "sessions")).stdout
            assert "CONVERSATION" in sessions and re.search(r"demo:demo-[0-9a-f]{12}", sessions)
            reset = await vpctl(stack, "reset-conversation", "vp.coder.primary", "--reason", "new project")
            assert reset.returncode == 0 and not re.search(r"demo:demo-", reset.stdout)

            not_blocked = await vpctl(stack, "resume", mission_id, "--answer", "again")
            assert not_blocked.returncode == 4 and "MISSION_NOT_BLOCKED" in not_blocked.stderr + not_blocked.stdout
        finally:
            await stop_worker(worker)
