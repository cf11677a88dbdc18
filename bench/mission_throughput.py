"""Throughput and latency of the whole mission path on this machine.

Starts vp-registry, vp-dispatcher and M vp-worker processes (no-op executor) on
a fresh SQLite file, dispatches N missions from K concurrent clients, and reads
dispatch-to-start and dispatch-to-complete latencies from the event log. In the
same run it measures the raw gRPC unary round trip (health Check on the same
dispatcher) as the floor.

    .venv/bin/python bench/mission_throughput.py --missions 2000 --workers 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import mission_control_service_pb2_grpc as mc_grpc
from services.common.contracts.vp.v1 import mission_pb2
from services.common.grpc_options import CHANNEL_OPTIONS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.support.e2e import free_port  # noqa: E402
from tests.support.processes import ServiceProcess, console_script  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def round_trip_floor(address: str, calls: int) -> list[float]:
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="vp.v1.MissionControl")
        for _ in range(50):
            await stub.Check(request)
        samples = []
        for _ in range(calls):
            start = time.perf_counter()
            await stub.Check(request)
            samples.append(time.perf_counter() - start)
        return samples


async def dispatch_all(address: str, lanes: list[str], missions: int, clients: int) -> tuple[list[str], float]:
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        stub = mc_grpc.MissionControlStub(channel)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(missions):
            queue.put_nowait(i)
        ids: list[str] = []

        async def client():
            while not queue.empty():
                i = queue.get_nowait()
                reply = await stub.DispatchMission(mc_pb.DispatchMissionRequest(envelope=mission_pb2.MissionEnvelope(
                    vp_id=lanes[i % len(lanes)], mission_type="bench", objective=f"mission {i}",
                    idempotency_key=f"bench-{i}")), timeout=30)
                ids.append(reply.mission.envelope.mission_id)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return ids, time.perf_counter() - start


async def collect_events(address: str, expected_terminal: int, timeout: float) -> dict[str, dict[str, datetime]]:
    """Follow the event log until every mission is terminal; keep first times per type."""
    times: dict[str, dict[str, datetime]] = {}
    terminal = 0
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        stub = mc_grpc.MissionControlStub(channel)
        stream = stub.StreamMissionEvents(mc_pb.StreamMissionEventsRequest(follow=True), timeout=timeout)
        async for reply in stream:
            event = reply.event
            kinds = times.setdefault(event.mission_id, {})
            kinds.setdefault(event.event_type, event.emitted_at.ToDatetime())
            if event.event_type in {"vp.mission.completed", "vp.mission.failed", "vp.mission.cancelled",
                                    "vp.mission.timed_out"}:
                terminal += 1
                if terminal >= expected_terminal:
                    stream.cancel()
                    break
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--missions", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4, help="worker processes (one lane each)")
    parser.add_argument("--capacity", type=int, default=64, help="missions per worker at once")
    parser.add_argument("--clients", type=int, default=32, help="concurrent dispatching clients")
    parser.add_argument("--floor-calls", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()

    lanes = [f"vp.bench.w{i}" for i in range(1, args.workers + 1)]
    processes: list[ServiceProcess] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/bench.db"
        try:
            registry = ServiceProcess([console_script("vp-registry"), "--listen", "127.0.0.1:0", "--db", db])
            processes.append(registry)
            registry_address = registry.address(30)
            port = free_port()
            dispatcher_address = f"127.0.0.1:{port}"
            dispatcher = ServiceProcess([console_script("vp-dispatcher"), "--listen", dispatcher_address, "--db", db,
                                         "--registry", registry_address, "--extra-lanes", ",".join(lanes),
                                         "--lane-max-in-flight", str(args.capacity),
                                         "--lane-max-queue", str(args.missions * 2)])
            processes.append(dispatcher)
            dispatcher.address(30)
            for lane in lanes:
                worker = ServiceProcess([console_script("vp-worker"), "--dispatcher", dispatcher_address,
                                         "--registry", registry_address, "--vp-id", lane, "--workspace-root",
                                         f"{tmp}/ws", "--executor", "noop", "--capacity", str(args.capacity),
                                         "--log-level", "INFO"])
                processes.append(worker)
                worker.wait_for_line(r"connected to", 30)
            floor = asyncio.run(round_trip_floor(dispatcher_address, args.floor_calls))

            async def run():
                collector = asyncio.create_task(collect_events(dispatcher_address, args.missions, 600))
                ids, dispatch_seconds = await dispatch_all(dispatcher_address, lanes, args.missions, args.clients)
                return ids, dispatch_seconds, await collector

            ids, dispatch_seconds, times = asyncio.run(run())
        finally:
            for process in processes:
                process.kill()

    to_start, to_complete, completed = [], [], 0
    first_dispatch, last_done = None, None
    for mission_id in ids:
        kinds = times.get(mission_id, {})
        dispatched = kinds.get("vp.mission.dispatched")
        if "vp.mission.started" in kinds:
            to_start.append((kinds["vp.mission.started"] - dispatched).total_seconds())
        if "vp.mission.completed" in kinds:
            completed += 1
            done = kinds["vp.mission.completed"]
            to_complete.append((done - dispatched).total_seconds())
            last_done = max(last_done or done, done)
        first_dispatch = min(first_dispatch or dispatched, dispatched)
    wall = (last_done - first_dispatch).total_seconds()
    floor_p50 = statistics.median(floor)
    summary = {
        "missions": args.missions, "completed": completed, "workers": args.workers, "capacity": args.capacity,
        "clients": args.clients, "missions_per_second": round(completed / wall, 1),
        "dispatch_rpc_per_second": round(args.missions / dispatch_seconds, 1),
        "dispatch_to_start_ms": {q: round(percentile(to_start, p) * 1000, 2) for q, p in
                                 (("p50", .5), ("p95", .95), ("p99", .99))},
        "dispatch_to_complete_ms": {q: round(percentile(to_complete, p) * 1000, 2) for q, p in
                                    (("p50", .5), ("p95", .95), ("p99", .99))},
        "raw_unary_round_trip_ms": {"p50": round(floor_p50 * 1000, 3), "p95": round(percentile(floor, .95) * 1000, 3)},
        "complete_p50_over_floor_p50": round(percentile(to_complete, .5) / floor_p50, 1),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:32} {value}")
    return 0 if completed == args.missions else 1


if __name__ == "__main__":
    sys.exit(main())
