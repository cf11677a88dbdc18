"""What agent protocol v1 costs on this machine.

1. The parser alone: vp_agent.parse_line over a mix of event lines (lines/s).
2. End to end through a real subprocess: an agent writes N events (progress and
   usage) on VP_AGENT_EVENTS_FD; the worker's channel reads and applies them to
   the run state with a no-op progress sink (events/s, and the run's wall time).
3. The same for the claude-code adapter: a fake `claude` prints N stream-json
   assistant lines on stdout (lines/s).

    .venv/bin/python bench/agent_protocol.py --events 20000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from services.common.contracts.vp.v1 import mission_pb2
from services.worker.agents import vp_agent
from services.worker.agents.presets import build_agent_executor, channel_hooks
from services.worker.executors.base import MissionRun
from services.worker.executors.subprocess_executor import SubprocessExecutor

AGENT = textwrap.dedent("""
    import sys
    from services.worker.agents import vp_agent
    agent = vp_agent.connect()
    for i in range(int(sys.argv[1])):
        if i % 2:
            agent.usage(input_tokens=10, output_tokens=2, cost_usd=0.0001, model="bench")
        else:
            agent.progress(f"step {i}")
    agent.result("completed", summary="done")
""")

CLAUDE = textwrap.dedent("""
    import json, sys
    n = int(sys.argv[-1].split()[0])
    print(json.dumps({"type": "system", "subtype": "init", "session_id": "s-bench", "model": "bench"}))
    for i in range(n):
        print(json.dumps({"type": "assistant", "message": {"id": f"msg_{i}", "model": "bench",
              "content": [{"type": "text", "text": f"step {i}"}],
              "usage": {"input_tokens": 10, "output_tokens": 2}}}))
    print(json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": "done",
          "num_turns": n, "total_cost_usd": 0.1, "usage": {"input_tokens": 10 * n, "output_tokens": 2 * n},
          "session_id": "s-bench"}))
""")


async def _sink(message: str, payload: dict) -> None:
    return None


def _run(root: Path, objective: str) -> MissionRun:
    envelope = mission_pb2.MissionEnvelope(mission_id="m-bench", vp_id="vp.bench.primary", objective=objective)
    return MissionRun(mission_id="m-bench", attempt=1, run_id="r-bench", envelope=envelope, workspace_dir=root,
                      mission_dir=root / "missions" / "m-bench", mission=mission_pb2.Mission(envelope=envelope))


def bench_parser(n: int) -> float:
    lines = [vp_agent.encode("progress", message="working", percent=50),
             vp_agent.encode("usage", input_tokens=10, output_tokens=2, cost_usd=0.001, model="m"),
             "not json at all", '{"type":"unknown_future_event","x":1}']
    start = time.perf_counter()
    for i in range(n):
        vp_agent.parse_line(lines[i % len(lines)])
    return n / (time.perf_counter() - start)


async def bench_channel(root: Path, n: int) -> tuple[float, float]:
    script = root / "agent.py"
    script.write_text(AGENT)
    executor = SubprocessExecutor([sys.executable, str(script), str(n)], hooks=channel_hooks(5.0))
    start = time.perf_counter()
    result = await executor.run(_run(root, "bench"), _sink)
    elapsed = time.perf_counter() - start
    assert result.outcome == "completed" and result.usage.input_tokens == 10 * (n // 2), result
    return n / elapsed, elapsed


async def bench_claude(root: Path, n: int) -> tuple[float, float]:
    script = root / "claude.py"
    script.write_text(CLAUDE)
    wrapper = root / "claude"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    wrapper.chmod(0o755)
    executor = build_agent_executor("claude-code", agent_bin=str(wrapper))
    start = time.perf_counter()
    result = await executor.run(_run(root, f"{n} lines"), _sink)
    elapsed = time.perf_counter() - start
    assert result.outcome == "completed" and result.usage.input_tokens == 10 * n, result
    return (n + 2) / elapsed, elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    print(f"parse_line: {bench_parser(args.events * 5):,.0f} lines/s")
    with tempfile.TemporaryDirectory() as tmp:
        rate, wall = await bench_channel(Path(tmp), args.events)
        print(f"channel (subprocess agent, {args.events} events): {rate:,.0f} events/s, run {wall:.2f}s")
        rate, wall = await bench_claude(Path(tmp), args.events)
        print(f"claude-code adapter ({args.events} assistant lines): {rate:,.0f} lines/s, run {wall:.2f}s")


if __name__ == "__main__":
    asyncio.run(main())
