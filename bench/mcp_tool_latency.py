"""What vp-mcp adds to a call: the same GetMission through the project client
directly, and as the MCP tool vp_get_mission over stdio and streamable HTTP;
then whole missions (noop executor) as dispatch + wait tool calls over stdio.

Starts vp-registry, vp-dispatcher, one vp-worker (noop) and vp-mcp on a fresh
SQLite file, all on 127.0.0.1 with free ports.

    .venv/bin/python bench/mcp_tool_latency.py --calls 300 --missions 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mcp import Client, StdioServerParameters

from services.client import MissionControlClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.support.e2e import free_port  # noqa: E402
from tests.support.processes import ServiceProcess, console_script  # noqa: E402


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]  # noqa: E731
    return {"n": len(samples), "p50_ms": round(pick(0.5) * 1000, 2), "p95_ms": round(pick(0.95) * 1000, 2),
            "mean_ms": round(statistics.fmean(samples) * 1000, 2)}


async def timed(calls: int, once) -> list[float]:
    for _ in range(20):
        await once()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await once()
        samples.append(time.perf_counter() - start)
    return samples


async def measure(args, dispatcher: str, registry: str, http_url: str) -> dict:
    results: dict = {}
    async with MissionControlClient(dispatcher) as mc:
        mission, _, _ = await mc.dispatch("vp.general.primary", "task", "bench seed mission")
        mission_id = mission.envelope.mission_id
        results["client GetMission"] = summary(await timed(args.calls, lambda: mc.get(mission_id)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VP_")} | {"VP_INSECURE": "1"}
    stdio = StdioServerParameters(command=console_script("vp-mcp"), env=env,
                                  args=["--dispatcher", dispatcher, "--registry", registry, "--log-level", "WARNING"])
    async with Client(stdio) as client:
        call = lambda: client.call_tool("vp_get_mission", {"mission_id": mission_id})  # noqa: E731
        results["mcp stdio vp_get_mission"] = summary(await timed(args.calls, call))
        missions = []
        for n in range(args.missions):
            start = time.perf_counter()
            out = await client.call_tool("vp_dispatch_mission", {"vp_id": "vp.general.primary", "mission_type": "task",
                                                                 "objective": f"bench {n} {time.time()}"})
            waited = await client.call_tool("vp_wait_mission", {"mission_id": out.structured_content["mission"]
                                                                ["mission_id"], "timeout_seconds": 60})
            assert waited.structured_content["mission"]["state"] == "COMPLETED", waited.content[0].text
            missions.append(time.perf_counter() - start)
        results["mcp stdio dispatch+wait (noop mission)"] = summary(missions)
    for mode, era in (("auto", "2026-07-28"), ("legacy", "2025-11-25")):
        async with Client(http_url, mode=mode) as client:
            call = lambda: client.call_tool("vp_get_mission", {"mission_id": mission_id})  # noqa: E731
            results[f"mcp http vp_get_mission ({era})"] = summary(await timed(args.calls, call))
    return results


def main() -> int:
    os.environ["VP_INSECURE"] = "1"  # the bench's own clients: plaintext, like its services
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300, help="timed calls per path")
    parser.add_argument("--missions", type=int, default=30, help="whole missions through the MCP tools")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    processes: list[ServiceProcess] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            db = f"sqlite:///{tmp}/bench.db"
            # Plaintext on 127.0.0.1: this bench measures what vp-mcp adds, not TLS.
            registry = ServiceProcess([console_script("vp-registry"), "--listen", "127.0.0.1:0", "--db", db,
                                       "--workspace-root", f"{tmp}/ws", "--insecure"])
            processes.append(registry)
            registry_address = registry.address()
            dispatcher_address = f"127.0.0.1:{free_port()}"
            dispatcher = ServiceProcess([console_script("vp-dispatcher"), "--listen", dispatcher_address, "--db", db,
                                         "--registry", registry_address, "--insecure"])
            processes.append(dispatcher)
            dispatcher.address()
            worker = ServiceProcess([console_script("vp-worker"), "--dispatcher", dispatcher_address, "--registry",
                                     registry_address, "--vp-id", "vp.general.primary", "--workspace-root",
                                     f"{tmp}/ws", "--executor", "noop", "--log-level", "INFO",
                                     "--insecure"])
            processes.append(worker)
            worker.wait_for_line(r"connected to", timeout=30)
            http = ServiceProcess([console_script("vp-mcp"), "--transport", "http", "--listen", "127.0.0.1:0",
                                   "--dispatcher", dispatcher_address, "--registry", registry_address])
            processes.append(http)
            address = http.wait_for_line(r"listening on (\S+:\d+) \(streamable HTTP", timeout=30).group(1)
            results = asyncio.run(measure(args, dispatcher_address, registry_address, f"http://{address}/mcp"))
        finally:
            for process in processes:
                process.kill()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, numbers in results.items():
            print(f"{name:42} n={numbers['n']:<5} p50 {numbers['p50_ms']:8.2f} ms  p95 {numbers['p95_ms']:8.2f} ms  "
                  f"mean {numbers['mean_ms']:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
