"""Throughput and latency of the whole mission path on this machine.

Starts vp-registry, vp-dispatcher and M vp-worker processes (no-op executor) on
a fresh SQLite file, dispatches N missions from K concurrent clients, and reads
dispatch-to-start and dispatch-to-complete latencies from the event log. In the
same run it measures the raw gRPC unary round trip (health Check on the same
dispatcher) as the floor, and an authenticated unary call (GetMission).

Secure by default, like the services: a fresh local CA, certificates and tokens
(TLS everywhere, workers and the dispatcher with mTLS identities, the bench's
client with the operator's). --insecure runs everything in plaintext without
authentication, so the two runs give the cost of TLS + auth:

    .venv/bin/python bench/mission_throughput.py --missions 2000 --workers 4
    .venv/bin/python bench/mission_throughput.py --missions 2000 --workers 4 --insecure

Heartbeat-gap mode (issue 8): while the burst runs, the registry is polled and
the largest gap between two renewals of any lane's lease (last_heartbeat_at)
is reported, with the lanes' TTL; re-queues and "unhealthy" fallbacks are
counted. Renewals must never starve behind result or dispatch traffic:

    .venv/bin/python bench/mission_throughput.py --missions 1000 --lease-ttl 6 --heartbeat-gap
    .venv/bin/python bench/mission_throughput.py --missions 1000 --lease-ttl 6 --heartbeat-gap \
        --db postgresql://postgres@127.0.0.1:5432/test --dispatchers 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import mission_control_service_pb2_grpc as mc_grpc
from services.common.contracts.vp.v1 import mission_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as reg_grpc
from services.common.auth.datadir import Credentials, worker_identity
from services.common.grpc_options import CHANNEL_OPTIONS
from services.common.security import INSECURE_CHANNEL, ChannelSecurity

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.support.e2e import free_port  # noqa: E402
from tests.support.processes import ServiceProcess, console_script  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def _timed(call, calls: int) -> list[float]:
    for _ in range(50):
        await call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


async def round_trip_floor(address: str, lane: str, calls: int, security: ChannelSecurity
                           ) -> dict[str, list[float]]:
    """Health Check (no authorization) and GetMission (authenticated, authorized) round trips."""
    async with security.aio_channel(address, CHANNEL_OPTIONS) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        missions = mc_grpc.MissionControlStub(channel)
        check = health_pb2.HealthCheckRequest(service="vp.v1.MissionControl")
        seeded = await missions.DispatchMission(mc_pb.DispatchMissionRequest(envelope=mission_pb2.MissionEnvelope(
            vp_id=lane, mission_type="task", objective="round-trip seed")))
        get = mc_pb.GetMissionRequest(mission_id=seeded.mission.envelope.mission_id)
        return {"health": await _timed(lambda: health.Check(check), calls),
                "get_mission": await _timed(lambda: missions.GetMission(get), calls)}


class HeartbeatGaps:
    """Polls the registry; keeps, per lane, the largest gap between two
    renewals (successive last_heartbeat_at values) the registry recorded."""

    def __init__(self, address: str, lanes: list[str], security: ChannelSecurity, interval: float = 0.05) -> None:
        self.address, self.lanes, self.interval = address, set(lanes), interval
        self.security = security
        self.last: dict[str, datetime] = {}
        self.largest: dict[str, float] = {}
        self.renewals = 0
        self.stale_seen = 0

    async def run(self, stop: asyncio.Event) -> None:
        async with self.security.aio_channel(self.address, CHANNEL_OPTIONS) as channel:
            stub = reg_grpc.SessionRegistryStub(channel)
            while not stop.is_set():
                try:
                    page = await stub.ListSessions(reg_pb.ListSessionsRequest(page_size=500), timeout=10)
                except grpc.aio.AioRpcError:
                    page = None
                for session in page.sessions if page is not None else ():
                    if session.vp_id not in self.lanes:
                        continue
                    self.stale_seen += int(session.stale)
                    beat = session.last_heartbeat_at.ToDatetime()
                    previous = self.last.get(session.vp_id)
                    if previous is not None and beat > previous:
                        self.renewals += 1
                        gap = (beat - previous).total_seconds()
                        self.largest[session.vp_id] = max(self.largest.get(session.vp_id, 0.0), gap)
                    if previous is None or beat > previous:
                        self.last[session.vp_id] = beat
                try:
                    await asyncio.wait_for(stop.wait(), self.interval)
                except asyncio.TimeoutError:
                    pass


async def dispatch_all(addresses: list[str], lanes: list[str], missions: int,
                       clients: int, security: ChannelSecurity) -> tuple[list[str], float]:
    channels = [security.aio_channel(address, CHANNEL_OPTIONS) for address in addresses]
    try:
        stubs = [mc_grpc.MissionControlStub(channel) for channel in channels]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(missions):
            queue.put_nowait(i)
        ids: list[str] = []

        async def client(stub):
            while not queue.empty():
                i = queue.get_nowait()
                reply = await stub.DispatchMission(mc_pb.DispatchMissionRequest(envelope=mission_pb2.MissionEnvelope(
                    vp_id=lanes[i % len(lanes)], mission_type="bench", objective=f"mission {i}",
                    idempotency_key=f"bench-{i}")), timeout=30)
                ids.append(reply.mission.envelope.mission_id)

        start = time.perf_counter()
        await asyncio.gather(*(client(stubs[n % len(stubs)]) for n in range(clients)))
        return ids, time.perf_counter() - start
    finally:
        for channel in channels:
            await channel.close()


async def collect_events(address: str, expected_terminal: int, timeout: float,
                         security: ChannelSecurity) -> dict[str, dict[str, datetime]]:
    """Follow the event log until every mission is terminal; keep first times per type."""
    times: dict[str, dict[str, datetime]] = {}
    terminal = 0
    async with security.aio_channel(address, CHANNEL_OPTIONS) as channel:
        stub = mc_grpc.MissionControlStub(channel)
        stream = stub.StreamMissionEvents(mc_pb.StreamMissionEventsRequest(follow=True), timeout=timeout)
        async for reply in stream:
            event = reply.event
            kinds = times.setdefault(event.mission_id, {})
            kinds.setdefault(event.event_type, event.emitted_at.ToDatetime())
            if event.event_type in ("vp.mission.requeued", "vp.mission.fallback"):
                kinds[f"{event.event_type}:{event.payload['reason']}"] = event.emitted_at.ToDatetime()
            if event.event_type in {"vp.mission.completed", "vp.mission.failed", "vp.mission.cancelled",
                                    "vp.mission.timed_out"}:
                terminal += 1
                if terminal >= expected_terminal:
                    stream.cancel()
                    break
    return times


@contextmanager
def database(url: str, tmp: str):
    """A fresh database: a SQLite file, or a new schema on the PostgreSQL server named."""
    if not url:
        yield f"sqlite:///{tmp}/bench.db"
        return
    import sqlalchemy as sa

    from services.common.store.engine import normalize_url

    admin = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    try:
        yield admin.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--missions", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4, help="worker processes (one lane each)")
    parser.add_argument("--capacity", type=int, default=64, help="missions per worker at once")
    parser.add_argument("--clients", type=int, default=32, help="concurrent dispatching clients")
    parser.add_argument("--floor-calls", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--insecure", action="store_true", help="plaintext, no authentication (the baseline)")
    parser.add_argument("--lease-ttl", type=float, default=30.0, help="lease TTL the workers ask for (seconds)")
    parser.add_argument("--dispatchers", type=int, default=1, help="dispatcher processes sharing the database")
    parser.add_argument("--db", default="", help="database URL (default: a fresh SQLite file); for PostgreSQL "
                                                "a fresh schema is made in the named database and dropped after")
    parser.add_argument("--separate-registry-db", action="store_true",
                        help="SQLite: give the registry its own file, as vpctl up does (default: one shared file)")
    parser.add_argument("--heartbeat-gap", action="store_true",
                        help="report the largest renewal gap the registry saw, re-queues and fallbacks")
    args = parser.parse_args()

    lanes = [f"vp.bench.w{i}" for i in range(1, args.workers + 1)]
    processes: list[ServiceProcess] = []
    gaps: HeartbeatGaps | None = None
    with tempfile.TemporaryDirectory() as tmp, database(args.db, tmp) as db:
        registry_db = f"sqlite:///{tmp}/registry.db" if args.separate_registry_db and not args.db else db
        credentials = Credentials(Path(tmp) / "credentials")
        if args.insecure:
            server_args = dispatcher_args = ["--insecure"]
            worker_args = lambda lane: ["--insecure"]  # noqa: E731
            security = INSECURE_CHANNEL
        else:
            credentials.ensure(lanes=lanes)
            server_args = credentials.server_args()
            dispatcher_args = credentials.channel_args("dispatcher")
            worker_args = lambda lane: credentials.channel_args(worker_identity(lane))  # noqa: E731
            security = credentials.channel_security("operator")
        try:
            registry = ServiceProcess([console_script("vp-registry"), "--listen", "127.0.0.1:0", "--db", registry_db,
                                       "--lease-ttl", str(args.lease_ttl), "--workspace-root", f"{tmp}/ws",
                                       *server_args])
            processes.append(registry)
            registry_address = registry.address(30)
            dispatcher_addresses = []
            for _ in range(args.dispatchers):
                address = f"127.0.0.1:{free_port()}"
                dispatcher = ServiceProcess([console_script("vp-dispatcher"), "--listen", address, "--db", db,
                                             "--registry", registry_address, "--extra-lanes", ",".join(lanes),
                                             "--lane-max-in-flight", str(args.capacity),
                                             "--lane-max-queue", str(args.missions * 2), "--metrics-listen", "",
                                             *server_args, *dispatcher_args])
                processes.append(dispatcher)
                dispatcher.address(30)
                dispatcher_addresses.append(address)
            for n, lane in enumerate(lanes):
                worker = ServiceProcess([console_script("vp-worker"), "--dispatcher",
                                         dispatcher_addresses[n % len(dispatcher_addresses)],
                                         "--registry", registry_address, "--vp-id", lane, "--workspace-root",
                                         f"{tmp}/ws", "--executor", "noop", "--capacity", str(args.capacity),
                                         "--lease-ttl", str(args.lease_ttl), "--log-level", "INFO",
                                         *worker_args(lane)])
                processes.append(worker)
                worker.wait_for_line(r"connected to", 30)
            dispatcher_address = dispatcher_addresses[0]
            floors = asyncio.run(round_trip_floor(dispatcher_address, lanes[0], args.floor_calls, security))
            floor = floors["health"]
            gaps = HeartbeatGaps(registry_address, lanes, security) if args.heartbeat_gap else None

            async def run():
                stop = asyncio.Event()
                poller = asyncio.create_task(gaps.run(stop)) if gaps is not None else None
                # + 1: the round-trip seed mission ends too.
                collector = asyncio.create_task(collect_events(dispatcher_address, args.missions + 1, 600, security))
                ids, dispatch_seconds = await dispatch_all(dispatcher_addresses, lanes, args.missions, args.clients,
                                                           security)
                times = await collector
                stop.set()
                if poller is not None:
                    await poller
                return ids, dispatch_seconds, times

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
        "security": "insecure" if args.insecure else "tls+mtls+auth",
        "raw_unary_round_trip_ms": {"p50": round(floor_p50 * 1000, 3), "p95": round(percentile(floor, .95) * 1000, 3)},
        "get_mission_round_trip_ms": {"p50": round(statistics.median(floors["get_mission"]) * 1000, 3),
                                      "p95": round(percentile(floors["get_mission"], .95) * 1000, 3)},
        "complete_p50_over_floor_p50": round(percentile(to_complete, .5) / floor_p50, 1),
    }
    if gaps is not None:
        largest = max(gaps.largest.values(), default=0.0)
        reasons: dict[str, int] = {}
        for kinds in times.values():
            for key in kinds:
                if key.startswith(("vp.mission.requeued:", "vp.mission.fallback:")):
                    reasons[key] = reasons.get(key, 0) + 1
        summary.update({
            "backend": "postgresql" if args.db else ("sqlite (registry separate)" if args.separate_registry_db
                                                     else "sqlite (one shared file)"),
            "dispatchers": args.dispatchers, "lease_ttl_s": args.lease_ttl,
            "largest_heartbeat_gap_s": round(largest, 3),
            "largest_gap_over_ttl": round(largest / args.lease_ttl, 3),
            "target_gap_under_s": round(args.lease_ttl / 3, 3),
            "renewals_seen": gaps.renewals, "stale_sessions_seen": gaps.stale_seen,
            "requeues_and_fallbacks": reasons,
        })
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:32} {value}")
    return 0 if completed == args.missions else 1


if __name__ == "__main__":
    sys.exit(main())
