"""This project next to Celery+Redis (solo worker) and, on PostgreSQL, pgqueuer,
measured in the same run on this machine, in alternating order per round.

    pip install -e '.[bench]'                     # celery, redis-py, pgqueuer, psutil
    .venv/bin/python bench/side_by_side.py                      # SQLite and PostgreSQL, one table
    .venv/bin/python bench/side_by_side.py --backend sqlite     # PostgreSQL: VP_TEST_POSTGRES_URL or the local test db

Figures, each the median over --rounds rounds:
  rtt p50/p99      one client, one mission at a time: dispatch, then wait for the result
  jobs/s           closed loop: --clients clients each dispatch+wait until --missions are done
  server CPU       CPU of the dispatching process per mission during the closed loop
                   (this project: vp-dispatcher; Celery: the solo worker + redis-server;
                   pgqueuer: its consumer; PostgreSQL's own CPU is not counted for anyone)
  dispatch p50     DispatchMission (Celery: delay(), pgqueuer: enqueue) under 20 concurrent clients
  progress/s       progress lines of one mission ingested per second (Celery: update_state)
  idle CPU         CPU (% of one core) of the dispatcher and registry while --idle-workers
                   connected workers only heartbeat (this project only)

No-op work everywhere: this measures the queue, not the work. redis-server is started on a
free loopback port (apt-get install redis-server if it is missing).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb  # noqa: E402
from services.common.contracts.vp.v1 import mission_control_service_pb2_grpc as mc_grpc  # noqa: E402
from services.common.contracts.vp.v1 import mission_pb2  # noqa: E402
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb  # noqa: E402
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as reg_grpc  # noqa: E402
from services.common.contracts.vp.v1 import worker_channel_service_pb2 as wc_pb  # noqa: E402
from services.common.contracts.vp.v1 import worker_channel_service_pb2_grpc as wc_grpc  # noqa: E402
from services.common.grpc_options import CHANNEL_OPTIONS  # noqa: E402
from tests.support.e2e import free_port  # noqa: E402
from tests.support.processes import ServiceProcess, console_script  # noqa: E402

try:
    import psutil
except ImportError:  # pragma: no cover - the bench extra brings it
    sys.exit("bench/side_by_side.py needs the bench extra: pip install -e '.[bench]'")

LANE = "vp.bench.w1"
PROGRESS_LANE = "vp.bench.progress"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


class Result(dict):
    """One system's figures in one round."""


# --- this project ---------------------------------------------------------------------


class Project:
    durable = "yes"

    def __init__(self, backend: str, pg_url: str, tmp: Path, workers: int) -> None:
        self.backend, self.pg_url, self.tmp, self.workers = backend, pg_url, tmp, workers
        self.name = f"this project ({'SQLite' if backend == 'sqlite' else 'PostgreSQL'}, {workers} worker)"
        self.processes: list[ServiceProcess] = []
        self.schema = ""

    def _db(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp / f'vp-{uuid.uuid4().hex[:8]}.db'}"
        import sqlalchemy as sa

        self.schema = f"bench_{uuid.uuid4().hex[:10]}"
        engine = sa.create_engine(self.pg_url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {self.schema}"))
        engine.dispose()
        return f"{self.pg_url.replace('postgresql://', 'postgresql+psycopg://')}?options=-csearch_path%3D{self.schema}"

    def start(self) -> None:
        db = self._db()
        # Plaintext without authentication, like the Celery+Redis and pgqueuer setups it is
        # compared with (bench/mission_throughput.py measures what TLS + auth add).
        registry = ServiceProcess([console_script("vp-registry"), "--listen", "127.0.0.1:0", "--db", db,
                                   "--metrics-listen", "127.0.0.1:0", "--workspace-root", str(self.tmp / "ws"),
                                   "--insecure"])
        self.processes.append(registry)
        self.registry_address = registry.address(60)
        self.address = f"127.0.0.1:{free_port()}"
        self.dispatcher = ServiceProcess([
            console_script("vp-dispatcher"), "--listen", self.address, "--db", db, "--registry",
            self.registry_address, "--extra-lanes", f"{LANE},{PROGRESS_LANE}", "--lane-max-in-flight", "1000",
            "--lane-max-queue", "1000000", "--metrics-listen", "127.0.0.1:0", "--insecure"])
        self.processes.append(self.dispatcher)
        self.dispatcher.address(60)
        for i in range(self.workers):
            worker = ServiceProcess([console_script("vp-worker"), "--dispatcher", self.address, "--registry",
                                     self.registry_address, "--vp-id", LANE,
                                     "--workspace-root", str(self.tmp / "ws"), "--executor", "noop",
                                     "--capacity", "64", "--metrics-listen", "127.0.0.1:0",
                                     "--log-level", "WARNING", "--insecure"])
            self.processes.append(worker)
        time.sleep(0.5)
        self.registry_pid = registry.proc.pid
        self.dispatcher_pid = self.dispatcher.proc.pid

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
        self.processes.clear()
        if self.schema:
            import sqlalchemy as sa

            engine = sa.create_engine(self.pg_url.replace("postgresql://", "postgresql+psycopg://"))
            with engine.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {self.schema} CASCADE"))
            engine.dispose()

    async def _mission(self, stub, i: int, wait: bool = True) -> None:
        reply = await stub.DispatchMission(mc_pb.DispatchMissionRequest(envelope=mission_pb2.MissionEnvelope(
            vp_id=LANE, mission_type="bench", objective=f"mission {i}")), timeout=30)
        if wait:
            done = await stub.WaitMission(mc_pb.WaitMissionRequest(
                mission_id=reply.mission.envelope.mission_id, timeout=_duration(30)), timeout=60)
            if done.timed_out:
                raise RuntimeError("mission did not finish in 30 s")

    async def warm_up(self) -> None:
        async with grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS) as channel:
            stub = mc_grpc.MissionControlStub(channel)
            deadline = time.monotonic() + 60
            while True:  # until the worker is connected and missions complete
                try:
                    await self._mission(stub, -1)
                    break
                except (grpc.aio.AioRpcError, RuntimeError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            for i in range(20):
                await self._mission(stub, i)

    async def round_trip(self, n: int) -> list[float]:
        async with grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS) as channel:
            stub = mc_grpc.MissionControlStub(channel)
            samples = []
            for i in range(n):
                start = time.perf_counter()
                await self._mission(stub, i)
                samples.append(time.perf_counter() - start)
            return samples

    async def closed_loop(self, missions: int, clients: int) -> tuple[float, float]:
        async with grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS) as channel:
            stub = mc_grpc.MissionControlStub(channel)
            left = iter(range(missions))

            async def client():
                for i in left:
                    await self._mission(stub, i)

            cpu0, start = cpu_seconds([self.dispatcher_pid]), time.perf_counter()
            await asyncio.gather(*(client() for _ in range(clients)))
            elapsed, cpu = time.perf_counter() - start, cpu_seconds([self.dispatcher_pid]) - cpu0
            return missions / elapsed, cpu / missions * 1000

    async def dispatch_latency(self, n: int, clients: int) -> list[float]:
        async with grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS) as channel:
            stub = mc_grpc.MissionControlStub(channel)
            left = iter(range(n))
            samples: list[float] = []
            ids: list[str] = []

            async def client():
                for i in left:
                    start = time.perf_counter()
                    reply = await stub.DispatchMission(mc_pb.DispatchMissionRequest(
                        envelope=mission_pb2.MissionEnvelope(vp_id=LANE, mission_type="bench", objective=f"d {i}")),
                        timeout=30)
                    samples.append(time.perf_counter() - start)
                    ids.append(reply.mission.envelope.mission_id)

            await asyncio.gather(*(client() for _ in range(clients)))
            for mission_id in ids:  # drain before the next figure
                await stub.WaitMission(mc_pb.WaitMissionRequest(mission_id=mission_id, timeout=_duration(60)))
            return samples

    async def progress_rate(self, lines: int) -> float:
        async with grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS) as channel, \
                grpc.aio.insecure_channel(self.registry_address, options=CHANNEL_OPTIONS) as reg_channel:
            owner = f"bench-progress-{uuid.uuid4().hex[:6]}"
            lease = await reg_grpc.SessionRegistryStub(reg_channel).AcquireLease(reg_pb.AcquireLeaseRequest(
                vp_id=PROGRESS_LANE, owner=owner, workspace_dir=str(self.tmp / "ws" / PROGRESS_LANE), ttl=_duration(60)))
            epoch = lease.session.lease_epoch
            outbox: asyncio.Queue = asyncio.Queue()

            async def requests():
                while (item := await outbox.get()) is not None:
                    yield item

            call = wc_grpc.WorkerChannelStub(channel).Connect(requests())
            outbox.put_nowait(wc_pb.ConnectRequest(hello=wc_pb.WorkerHello(
                vp_id=PROGRESS_LANE, owner=owner, session_id=lease.session.session_id, lease_epoch=epoch,
                capacity=1)))
            replies = call.__aiter__()
            await anext(replies)  # welcome
            stub = mc_grpc.MissionControlStub(channel)
            await stub.DispatchMission(mc_pb.DispatchMissionRequest(envelope=mission_pb2.MissionEnvelope(
                vp_id=PROGRESS_LANE, mission_type="bench", objective="stream progress")))
            assignment = (await anext(replies)).assignment
            mission_id, attempt = assignment.mission.envelope.mission_id, assignment.mission.attempt
            start = time.perf_counter()
            for seq in range(1, lines + 1):
                outbox.put_nowait(wc_pb.ConnectRequest(progress=wc_pb.MissionProgress(
                    mission_id=mission_id, attempt=attempt, lease_epoch=epoch, seq=seq, message=f"line {seq}")))
            outbox.put_nowait(wc_pb.ConnectRequest(result=wc_pb.MissionResult(
                mission_id=mission_id, attempt=attempt, lease_epoch=epoch, outcome=3)))  # COMPLETED
            async for reply in replies:  # messages are handled in order: the ack comes after every line
                if reply.WhichOneof("message") == "result_accepted":
                    break
            elapsed = time.perf_counter() - start
            outbox.put_nowait(None)
            call.cancel()
            return lines / elapsed

    async def idle_cpu(self, workers: int, seconds: float) -> tuple[int, float, float]:
        """Connect `workers` streams that only heartbeat; CPU % of one core of dispatcher and registry."""
        async with grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS) as channel, \
                grpc.aio.insecure_channel(self.registry_address, options=CHANNEL_OPTIONS) as reg_channel:
            registry = reg_grpc.SessionRegistryStub(reg_channel)
            worker_stub = wc_grpc.WorkerChannelStub(channel)
            streams = []

            async def one(i: int):
                vp_id, owner = f"vp.idle.w{i}", f"idle-{i}"
                lease = await registry.AcquireLease(reg_pb.AcquireLeaseRequest(
                    vp_id=vp_id, owner=owner, workspace_dir=str(self.tmp / "ws" / vp_id), ttl=_duration(30)))
                outbox: asyncio.Queue = asyncio.Queue()

                async def requests():
                    while (item := await outbox.get()) is not None:
                        yield item

                call = worker_stub.Connect(requests())
                outbox.put_nowait(wc_pb.ConnectRequest(hello=wc_pb.WorkerHello(
                    vp_id=vp_id, owner=owner, session_id=lease.session.session_id,
                    lease_epoch=lease.session.lease_epoch, capacity=1)))
                welcome = (await anext(call.__aiter__())).welcome
                interval = welcome.heartbeat_interval.seconds + welcome.heartbeat_interval.nanos / 1e9
                streams.append((call, outbox, lease.session.lease_epoch, interval))

            for start in range(0, workers, 50):
                await asyncio.gather(*(one(i) for i in range(start, min(workers, start + 50))))

            async def beat(outbox, epoch, interval, offset):
                await asyncio.sleep(offset)
                while True:
                    outbox.put_nowait(wc_pb.ConnectRequest(heartbeat=wc_pb.WorkerHeartbeat(lease_epoch=epoch)))
                    await asyncio.sleep(interval)

            beaters = [asyncio.create_task(beat(o, e, iv, iv * k / len(streams)))
                       for k, (_, o, e, iv) in enumerate(streams)]
            await asyncio.sleep(streams[0][3] if streams else 1)  # one full heartbeat round first
            pids = [self.dispatcher_pid, self.registry_pid]
            before = [cpu_seconds([pid]) for pid in pids]
            await asyncio.sleep(seconds)
            after = [cpu_seconds([pid]) for pid in pids]
            for task in beaters:
                task.cancel()
            for call, outbox, _, _ in streams:
                outbox.put_nowait(None)
                call.cancel()
            return len(streams), *((a - b) / seconds * 100 for a, b in zip(after, before))


def _duration(seconds: float):
    from google.protobuf.duration_pb2 import Duration

    return Duration(seconds=int(seconds), nanos=int((seconds % 1) * 1e9))


# --- Celery + Redis -------------------------------------------------------------------------


class CeleryRedis:
    durable = "no"
    name = "Celery + Redis, solo worker"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def start(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            sys.exit("redis-server is not installed: apt-get install redis-server (or skip with --no-celery)")
        port = free_port()
        self.url = f"redis://127.0.0.1:{port}/0"
        self.redis = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", str(self.tmp)], stdout=subprocess.DEVNULL)
        env = {**os.environ, "BENCH_REDIS_URL": self.url, "PYTHONPATH": str(BENCH)}
        celery = str(Path(sys.executable).with_name("celery"))
        self.worker = ServiceProcess([celery, "-A", "celery_tasks", "worker", "--pool=solo", "--concurrency=1",
                                      "--without-gossip", "--without-mingle", "--without-heartbeat",
                                      "-l", "INFO"], env=env, cwd=str(BENCH))
        self.worker.wait_for_line(r"ready", 60)
        os.environ["BENCH_REDIS_URL"] = self.url
        sys.path.insert(0, str(BENCH))
        import importlib

        import celery_tasks

        self.tasks = importlib.reload(celery_tasks)
        self.pool = ThreadPoolExecutor(max_workers=64)

    def stop(self) -> None:
        self.worker.kill()
        self.redis.kill()
        self.redis.wait()
        self.pool.shutdown(wait=False)

    def _mission(self, i: int) -> None:
        self.tasks.noop.delay(i).get(timeout=30)

    async def warm_up(self) -> None:
        for i in range(20):
            await asyncio.to_thread(self._mission, i)

    async def round_trip(self, n: int) -> list[float]:
        def run():
            samples = []
            for i in range(n):
                start = time.perf_counter()
                self._mission(i)
                samples.append(time.perf_counter() - start)
            return samples

        return await asyncio.to_thread(run)

    async def closed_loop(self, missions: int, clients: int) -> tuple[float, float]:
        pids = [self.worker.proc.pid, self.redis.pid]
        left = iter(range(missions))

        def client():
            for i in left:
                self._mission(i)

        cpu0, start = cpu_seconds(pids), time.perf_counter()
        await asyncio.gather(*(asyncio.get_running_loop().run_in_executor(self.pool, client)
                               for _ in range(clients)))
        return missions / (time.perf_counter() - start), (cpu_seconds(pids) - cpu0) / missions * 1000

    async def dispatch_latency(self, n: int, clients: int) -> list[float]:
        left = iter(range(n))
        samples: list[float] = []
        results = []

        def client():
            for i in left:
                start = time.perf_counter()
                results.append(self.tasks.noop.delay(i))
                samples.append(time.perf_counter() - start)

        await asyncio.gather(*(asyncio.get_running_loop().run_in_executor(self.pool, client)
                               for _ in range(clients)))
        for result in results:
            await asyncio.to_thread(result.get, 60)
        return samples

    async def progress_rate(self, lines: int) -> float:
        def run():
            start = time.perf_counter()
            self.tasks.progress.delay(lines).get(timeout=300)
            return lines / (time.perf_counter() - start)

        return await asyncio.to_thread(run)

    async def idle_cpu(self, workers: int, seconds: float):
        return None


# --- pgqueuer ---------------------------------------------------------------------------------


class PgQueuer:
    durable = "yes"

    def __init__(self, pg_url: str, *, latency: bool) -> None:
        self.pg_url, self.latency = pg_url, latency
        self.name = "pgqueuer 1.6, tuned for latency" if latency else "pgqueuer 1.6, defaults"

    def start(self) -> None:
        import psycopg

        self.schema = f"bench_pgq_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.schema}")
        self.dsn = f"{self.pg_url}?options=-csearch_path%3D{self.schema}"

        async def install():
            import asyncpg
            from pgqueuer import AsyncpgDriver, Queries

            conn = await asyncpg.connect(self.dsn)
            await Queries(AsyncpgDriver(conn)).install()
            await conn.close()

        asyncio.run(install())
        batch = ["--batch-size", "1", "--dequeue-timeout", "0.05"] if self.latency else []
        self.consumer = ServiceProcess([sys.executable, str(BENCH / "pgq_consumer.py"), "--dsn", self.dsn, *batch])
        self.consumer.wait_for_line(r"consumer ready", 60)
        time.sleep(0.5)

    def stop(self) -> None:
        import psycopg

        self.consumer.kill()
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {self.schema} CASCADE")

    async def _session(self):
        import asyncpg
        from pgqueuer import AsyncpgDriver, Queries
        from pgqueuer.core.completion import CompletionWatcher

        listen = await asyncpg.connect(self.dsn)
        watcher = CompletionWatcher(AsyncpgDriver(listen), queries=Queries(AsyncpgDriver(listen)),
                                    debounce=timedelta(milliseconds=1 if self.latency else 50))
        return (listen,), watcher

    async def _queries(self):
        import asyncpg
        from pgqueuer import AsyncpgDriver, Queries

        conn = await asyncpg.connect(self.dsn)
        return conn, Queries(AsyncpgDriver(conn))

    async def _run(self, body):
        connections, watcher = await self._session()
        try:
            async with watcher:
                return await body(watcher)
        finally:
            for conn in connections:
                await conn.close()

    async def warm_up(self) -> None:
        await self.round_trip(20)

    async def round_trip(self, n: int) -> list[float]:
        async def body(watcher):
            conn, queries = await self._queries()
            samples = []
            for _ in range(n):
                start = time.perf_counter()
                (job_id,) = await queries.enqueue("noop", None)
                await watcher.wait_for(job_id)
                samples.append(time.perf_counter() - start)
            await conn.close()
            return samples

        return await self._run(body)

    async def closed_loop(self, missions: int, clients: int) -> tuple[float, float]:
        left = iter(range(missions))

        async def body(watcher):
            async def client():
                conn, queries = await self._queries()
                for _ in left:
                    (job_id,) = await queries.enqueue("noop", None)
                    await watcher.wait_for(job_id)
                await conn.close()

            pid = [self.consumer.proc.pid]
            cpu0, start = cpu_seconds(pid), time.perf_counter()
            await asyncio.gather(*(client() for _ in range(clients)))
            return missions / (time.perf_counter() - start), (cpu_seconds(pid) - cpu0) / missions * 1000

        return await self._run(body)

    async def dispatch_latency(self, n: int, clients: int) -> list[float]:
        left = iter(range(n))
        samples: list[float] = []
        jobs = []

        async def body(watcher):
            async def client():
                conn, queries = await self._queries()
                for _ in left:
                    start = time.perf_counter()
                    jobs.extend(await queries.enqueue("noop", None))
                    samples.append(time.perf_counter() - start)
                await conn.close()

            await asyncio.gather(*(client() for _ in range(clients)))
            await asyncio.gather(*(watcher.wait_for(job) for job in jobs))
            return samples

        return await self._run(body)

    async def progress_rate(self, lines: int):
        return None

    async def idle_cpu(self, workers: int, seconds: float):
        return None


# --- the run -------------------------------------------------------------------------------------


async def measure(system, args) -> Result:
    await system.warm_up()
    rtt = await system.round_trip(args.sequential)
    rate, cpu = await system.closed_loop(args.missions, args.clients)
    dispatch = await system.dispatch_latency(args.dispatches, 20)
    progress = await system.progress_rate(args.progress_lines)
    idle = await system.idle_cpu(args.idle_workers, args.idle_seconds) if args.idle_workers else None
    return Result(rtt_p50=pct(rtt, .5) * 1000, rtt_p99=pct(rtt, .99) * 1000, rate=rate, cpu=cpu,
                  dispatch_p50=pct(dispatch, .5) * 1000, progress=progress, idle=idle)


def fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sequential", type=int, default=200, help="missions for the round-trip figure")
    parser.add_argument("--missions", type=int, default=2000, help="missions for the closed-loop figure")
    parser.add_argument("--clients", type=int, default=20, help="closed-loop clients")
    parser.add_argument("--dispatches", type=int, default=1000, help="dispatches for the dispatch-latency figure")
    parser.add_argument("--progress-lines", type=int, default=20000)
    parser.add_argument("--idle-workers", type=int, default=1000, help="0 skips the idle-workers figure")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1, help="no-op worker processes of this project")
    parser.add_argument("--no-celery", action="store_true")
    args = parser.parse_args()
    pg_url = os.environ.get("VP_TEST_POSTGRES_URL", DEFAULT_PG).replace("postgresql+psycopg://", "postgresql://")

    results: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
        systems = [Project(backend, pg_url, tmp, args.workers) for backend in backends]
        if not args.no_celery:
            systems.append(CeleryRedis(tmp))
        if "postgres" in backends:
            systems += [PgQueuer(pg_url, latency=True), PgQueuer(pg_url, latency=False)]
        for round_no in range(args.rounds):
            order = systems if round_no % 2 == 0 else list(reversed(systems))
            for system in order:
                system.start()
                try:
                    result = asyncio.run(measure(system, args))
                finally:
                    system.stop()
                results.setdefault(system.name, []).append(result)
                print(f"round {round_no + 1}: {system.name}: {_row(result)}", file=sys.stderr, flush=True)

    print(f"\n{args.rounds} round(s), medians; {args.missions} missions closed loop with {args.clients} clients; "
          f"{args.sequential} sequential; {args.progress_lines} progress lines; {os.cpu_count()} cores\n")
    print("| system | durable | round trip p50 / p99 (ms) | end-to-end jobs/s | server CPU per job (ms) "
          "| DispatchMission p50, 20 clients (ms) | progress lines/s | idle workers: dispatcher / registry CPU |")
    print("|---|---|---|---|---|---|---|---|")
    for system in systems:
        runs = results[system.name]

        def med(key):
            values = [r[key] for r in runs if r[key] is not None]
            return statistics.median(values) if values else None

        idle = [r["idle"] for r in runs if r["idle"]]
        idle_text = "n/a" if not idle else (f"{idle[0][0]}: {statistics.median(i[1] for i in idle):.1f}% / "
                                           f"{statistics.median(i[2] for i in idle):.1f}%")
        print(f"| {system.name} | {system.durable} | {fmt(med('rtt_p50'), '.1f')} / {fmt(med('rtt_p99'), '.1f')} "
              f"| {fmt(med('rate'), '.0f')} | {fmt(med('cpu'), '.2f')} | {fmt(med('dispatch_p50'), '.2f')} "
              f"| {fmt(med('progress'), '.0f')} | {idle_text} |")
    return 0


def _row(result: Result) -> str:
    return ", ".join(f"{k}={v if not isinstance(v, float) else round(v, 2)}" for k, v in result.items())


if __name__ == "__main__":
    sys.exit(main())
