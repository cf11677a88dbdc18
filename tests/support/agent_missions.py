"""A dispatcher + registry in-process (real gRPC, real database) and a real
`vp-worker` process whose agent is the fake Claude Code / Codex CLI."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from google.protobuf.duration_pb2 import Duration

from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import mission_pb2
from tests.support.processes import ServiceProcess, console_script

FAKE = Path(__file__).resolve().parent / "fake_agent_cli.py"
CODER = "vp.coder.primary"


def fake_cli(root: Path) -> tuple[Path, Path]:
    """An executable wrapper around the fake CLI, and the file its calls are logged to."""
    wrapper = root / "bin" / "agent"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, root / "calls.jsonl"


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


async def start_worker(stack, root: Path, executor: str, *extra: str, vp_id: str = CODER) -> ServiceProcess:
    wrapper, log = fake_cli(root)
    worker = ServiceProcess(
        [console_script("vp-worker"), "--dispatcher", stack.dispatcher_address, "--registry", stack.registry_address,
         "--vp-id", vp_id, "--workspace-root", str(root / "workspaces"), "--executor", executor,
         *(["--agent-bin", str(wrapper)] if executor in ("claude-code", "codex") else []), "--lease-ttl", "5",
         *stack.worker_args(vp_id), *extra],
        env={"FAKE_AGENT_LOG": str(log)})
    # Blocking waits run in a thread: the dispatcher and registry serve on this loop.
    await asyncio.to_thread(worker.wait_for_line, r"connected to", 30)
    return worker


async def stop_worker(worker: ServiceProcess) -> None:
    await asyncio.to_thread(worker.terminate)


async def dispatch(stack, objective: str, **fields) -> mission_pb2.Mission:
    envelope = mission_pb2.MissionEnvelope(vp_id=CODER, mission_type="code", objective=objective, max_attempts=1,
                                           **fields)
    reply = await stack.missions.DispatchMission(mc_pb.DispatchMissionRequest(envelope=envelope))
    return reply.mission


async def wait(stack, mission_id: str, seconds: int = 60) -> mission_pb2.Mission:
    reply = await stack.missions.WaitMission(mc_pb.WaitMissionRequest(mission_id=mission_id,
                                                                      timeout=Duration(seconds=seconds)))
    return reply.mission


async def events(stack, mission_id: str) -> list:
    return [r.event async for r in stack.missions.StreamMissionEvents(
        mc_pb.StreamMissionEventsRequest(mission_id=mission_id))]
