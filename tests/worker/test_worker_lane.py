"""The worker against a REAL registry subprocess (vp-registry) and a test double
of the dispatcher's WorkerChannel side (tests/support/fake_dispatcher.py; the
real dispatcher is not the subject here). The worker runs in-process through
run_worker() or as the real `vp-worker` console script."""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlparse

import grpc
import pytest

from services.common.contracts.vp.v1 import enums_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as reg_grpc
from services.worker.lane_config import LaneConfig
from services.worker.service import run_worker
from tests.support.fake_dispatcher import FakeDispatcherChannel, make_mission
from tests.support.processes import ServiceProcess, console_script
from worker_test_helpers import pid_alive

_lanes = itertools.count(1)
S = enums_pb2


def new_vp_id() -> str:
    return f"vp.wtest.lane{next(_lanes)}"


SLEEPER = """
import os, time
with open(os.path.join(os.environ["VP_MISSION_DIR"], "child.pid"), "w") as fh:
    fh.write(str(os.getpid()))
print("ready", flush=True)
time.sleep(60)
"""


def dispose(proc: ServiceProcess) -> None:
    """SIGKILL if still running, then close its output pipe once the reader thread is done."""
    proc.kill()
    proc._reader.join(timeout=5)
    if proc.proc.stdout is not None and not proc._reader.is_alive():
        proc.proc.stdout.close()


@pytest.fixture(scope="module")
def registry_addr(tmp_path_factory):
    db = tmp_path_factory.mktemp("registry") / "registry.db"
    proc = ServiceProcess([console_script("vp-registry"), "--listen", "127.0.0.1:0", "--db", f"sqlite:///{db}",
                           "--sweep-interval", "0.2", "--workspace-root", str(tmp_path_factory.getbasetemp()), "--insecure"])
    try:
        yield proc.address()
    finally:
        dispose(proc)


@pytest.fixture
async def registry(registry_addr):
    channel = grpc.aio.insecure_channel(registry_addr)
    yield reg_grpc.SessionRegistryStub(channel)
    await channel.close()


@pytest.fixture
async def fake(registry_addr):
    dispatcher = FakeDispatcherChannel(registry_addr=registry_addr, lease_ttl=30)
    await dispatcher.start()
    yield dispatcher
    await dispatcher.stop()


async def get_session(registry, vp_id: str):
    return (await registry.GetSession(reg_pb.GetSessionRequest(vp_id=vp_id), timeout=5)).session


def lane(tmp_path: Path, fake: FakeDispatcherChannel, registry_addr: str, **overrides) -> LaneConfig:
    values = dict(vp_id=new_vp_id(), workspace_root=tmp_path / "ws", dispatcher_addr=fake.address,
                  registry_addr=registry_addr, executor="demo", executor_options={"delay": 0.02},
                  lease_ttl=30, drain_timeout=5)
    values.update(overrides)
    return LaneConfig(**values)


def sleeper_lane(tmp_path: Path, fake, registry_addr: str, **overrides) -> LaneConfig:
    script = tmp_path / "sleeper.py"
    script.write_text(textwrap.dedent(SLEEPER))
    return lane(tmp_path, fake, registry_addr, executor="subprocess", command=(sys.executable, str(script)),
                executor_options={"kill_grace": 2.0}, **overrides)


class InProcessWorker:
    def __init__(self, config: LaneConfig, **options) -> None:
        self.config = config
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(run_worker(config, stop_event=self.stop, **options))

    async def shutdown(self, timeout: float = 20.0) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, timeout)


@pytest.fixture
async def start_worker():
    workers: list[InProcessWorker] = []

    def start(config: LaneConfig, **options) -> InProcessWorker:
        worker = InProcessWorker(config, **options)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if not worker.task.done():
            worker.stop.set()
            try:
                await asyncio.wait_for(worker.task, 20)
            except BaseException:  # noqa: BLE001 - cleanup only
                worker.task.cancel()


def progress_lines(fake, mission_id: str) -> list[str]:
    return [p.message for p in fake.all_received("progress") if p.mission_id == mission_id]


async def child_pid(fake, config: LaneConfig, mission_id: str, registry) -> int:
    await fake.wait_until(lambda: "ready" in progress_lines(fake, mission_id), what=f"{mission_id} ready")
    workspace = Path((await get_session(registry, config.vp_id)).workspace_dir)
    return int((workspace / "missions" / mission_id / "child.pid").read_text())


# -- in-process worker ---------------------------------------------------------------


async def test_hello_carries_registry_epoch_and_demo_mission_reports_in_order(
        tmp_path, fake, registry, registry_addr, start_worker):
    config = lane(tmp_path, fake, registry_addr, capacity=2)
    worker = start_worker(config)
    stream = await fake.wait_stream(1)
    session = await get_session(registry, config.vp_id)
    hello = stream.hello
    assert (hello.vp_id, hello.session_id, hello.lease_epoch, hello.owner) == (
        config.vp_id, session.session_id, session.lease_epoch, session.lease_owner)
    assert hello.lease_epoch == 1 and hello.capacity == 2 and hello.runtime_id.startswith("vp-worker/")
    assert list(hello.running_mission_ids) == []
    assert session.workspace_dir == str(tmp_path / "ws" / config.vp_id)

    await stream.assign(make_mission("m-demo-1", vp_id=config.vp_id, objective="summarise the plan"), "run-1")
    await fake.wait_until(lambda: fake.results_for("m-demo-1"), what="result")
    mine = [r for r in stream.received if r.WhichOneof("message") in ("started", "progress", "result")]
    kinds = [r.WhichOneof("message") for r in mine]
    assert kinds[0] == "started" and kinds[-1] == "result" and set(kinds[1:-1]) == {"progress"}, kinds
    started = mine[0].started
    assert (started.mission_id, started.attempt, started.lease_epoch, started.run_id) == ("m-demo-1", 1, 1, "run-1")
    seqs = [r.progress.seq for r in mine[1:-1]]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 3
    assert all(r.progress.lease_epoch == 1 for r in mine[1:-1])

    result = mine[-1].result
    assert result.outcome == S.MISSION_STATE_COMPLETED, result
    assert (result.attempt, result.lease_epoch) == (1, 1)
    mission_dir = Path(urlparse(result.result_ref).path)
    assert mission_dir == (tmp_path / "ws" / config.vp_id / "missions" / "m-demo-1").resolve()
    assert (mission_dir / "mission_receipt.json").is_file() and (mission_dir / "sync_ready.json").is_file()
    assert (mission_dir / "result.md").is_file()

    # Heartbeats carry the epoch; the dispatcher (double) renews the lease on each.
    await fake.wait_until(lambda: fake.renewals >= 2, what="heartbeat renewals")
    assert all(h.lease_epoch == 1 for h in stream.of_kind("heartbeat"))
    await worker.shutdown()


async def test_never_runs_more_than_capacity_at_once(tmp_path, fake, registry_addr, start_worker):
    config = lane(tmp_path, fake, registry_addr, capacity=2, executor_options={"delay": 0.05})
    start_worker(config)
    stream = await fake.wait_stream(1)
    missions = [f"m-cap-{i}" for i in range(5)]
    for mission_id in missions:  # more than capacity: the worker queues the rest
        await stream.assign(make_mission(mission_id, vp_id=config.vp_id))
    await fake.wait_until(lambda: all(fake.results_for(m) for m in missions), what="all results")
    running = peak = 0
    for request in stream.received:
        kind = request.WhichOneof("message")
        running += {"started": 1, "result": -1}.get(kind, 0)
        peak = max(peak, running)
    assert peak == 2
    assert all(fake.results_for(m)[0].outcome == S.MISSION_STATE_COMPLETED for m in missions)


async def test_result_is_resent_after_stream_drop_until_accepted(
        tmp_path, fake, registry_addr, start_worker):
    config = lane(tmp_path, fake, registry_addr, executor="noop", executor_options={})
    start_worker(config)
    fake.accept_results = False
    first = await fake.wait_stream(1)
    await first.assign(make_mission("m-resend", vp_id=config.vp_id))
    await fake.wait_until(lambda: first.of_kind("result"), what="result on stream 1")

    fake.accept_results = True
    await first.drop()
    second = await fake.wait_stream(2)
    assert "m-resend" in second.hello.running_mission_ids  # still owed to the dispatcher
    await fake.wait_until(lambda: second.of_kind("result"), what="result resent on stream 2")
    resent = second.of_kind("result")[0]
    assert (resent.mission_id, resent.attempt, resent.outcome) == ("m-resend", 1, S.MISSION_STATE_COMPLETED)
    assert resent.result_ref == first.of_kind("result")[0].result_ref

    # Accepted on stream 2: a later reconnect neither lists nor resends it.
    await fake.wait_until(lambda: second.of_kind("heartbeat") and
                          "m-resend" not in second.of_kind("heartbeat")[-1].running_mission_ids,
                          what="heartbeat without the accepted mission")
    await second.drop()
    third = await fake.wait_stream(3)
    await fake.wait_until(lambda: third.of_kind("heartbeat"), what="heartbeat on stream 3")
    assert list(third.hello.running_mission_ids) == [] and third.of_kind("result") == []
    assert len(fake.results_for("m-resend")) == 2


async def test_cancel_stops_subprocess_and_reports_dispatcher_final_state(
        tmp_path, fake, registry, registry_addr, start_worker):
    config = sleeper_lane(tmp_path, fake, registry_addr, capacity=2)
    start_worker(config)
    stream = await fake.wait_stream(1)
    await stream.assign(make_mission("m-cancel", vp_id=config.vp_id))
    await stream.assign(make_mission("m-timeout", vp_id=config.vp_id))
    pid_cancel = await child_pid(fake, config, "m-cancel", registry)
    pid_timeout = await child_pid(fake, config, "m-timeout", registry)
    assert pid_alive(pid_cancel) and pid_alive(pid_timeout)

    await stream.cancel("m-cancel", S.MISSION_STATE_CANCELLED, "operator said stop")
    await stream.cancel("m-timeout", S.MISSION_STATE_TIMED_OUT, "deadline passed")
    await fake.wait_until(lambda: fake.results_for("m-cancel") and fake.results_for("m-timeout"), what="results")
    cancelled, timed_out = fake.results_for("m-cancel")[0], fake.results_for("m-timeout")[0]
    assert cancelled.outcome == S.MISSION_STATE_CANCELLED, cancelled
    assert timed_out.outcome == S.MISSION_STATE_TIMED_OUT, timed_out
    assert not pid_alive(pid_cancel) and not pid_alive(pid_timeout)
    assert Path(urlparse(cancelled.result_ref).path, "sync_ready.json").is_file()


async def test_target_path_outside_allowed_roots_fails_without_running(
        tmp_path, fake, registry_addr, start_worker):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = tmp_path / "elsewhere" / "out.md"
    config = lane(tmp_path, fake, registry_addr, allowed_roots=(allowed,), protected_roots=(allowed / "secret",))
    start_worker(config)
    stream = await fake.wait_stream(1)
    await stream.assign(make_mission("m-outside", vp_id=config.vp_id, target_path=str(outside)))
    await stream.assign(make_mission("m-protected", vp_id=config.vp_id, target_path=str(allowed / "secret" / "x")))
    await stream.assign(make_mission("m-inside", vp_id=config.vp_id, target_path=str(allowed / "out.md")))
    await fake.wait_until(lambda: all(fake.results_for(m) for m in ("m-outside", "m-protected", "m-inside")),
                          what="three results")
    for mission_id in ("m-outside", "m-protected"):
        result = fake.results_for(mission_id)[0]
        assert result.outcome == S.MISSION_STATE_FAILED and result.error.code == "PATH_NOT_ALLOWED", result
        assert result.result_ref == ""
        assert not (tmp_path / "ws" / config.vp_id / "missions" / mission_id).exists()
    started = {s.mission_id for s in fake.all_received("started")}
    assert started == {"m-inside"}
    assert not outside.exists()
    assert fake.results_for("m-inside")[0].outcome == S.MISSION_STATE_COMPLETED
    assert (allowed / "out.md").is_file()


async def test_lease_superseded_stops_every_run_and_reports_nothing(
        tmp_path, fake, registry, registry_addr, start_worker):
    config = sleeper_lane(tmp_path, fake, registry_addr, capacity=2)
    start_worker(config)
    first = await fake.wait_stream(1)
    await first.assign(make_mission("m-zombie-1", vp_id=config.vp_id))
    await first.assign(make_mission("m-zombie-2", vp_id=config.vp_id))
    pids = [await child_pid(fake, config, m, registry) for m in ("m-zombie-1", "m-zombie-2")]

    await first.end_superseded()
    second = await fake.wait_stream(2)
    assert not any(pid_alive(pid) for pid in pids)
    assert fake.all_received("result") == []
    assert list(second.hello.running_mission_ids) == []
    # A new term of the same session.
    session = await get_session(registry, config.vp_id)
    assert second.hello.lease_epoch == first.hello.lease_epoch + 1 == session.lease_epoch
    assert second.hello.session_id == first.hello.session_id == session.session_id
    await fake.wait_until(lambda: second.of_kind("heartbeat"), what="heartbeat in the new term")
    assert fake.all_received("result") == []


async def test_reconnect_reports_running_missions_and_stops_revoked_ones(
        tmp_path, fake, registry, registry_addr, start_worker):
    config = sleeper_lane(tmp_path, fake, registry_addr, capacity=2)
    start_worker(config)
    first = await fake.wait_stream(1)
    await first.assign(make_mission("m-keep", vp_id=config.vp_id))
    await first.assign(make_mission("m-revoked", vp_id=config.vp_id))
    keep = await child_pid(fake, config, "m-keep", registry)
    revoked = await child_pid(fake, config, "m-revoked", registry)
    fake.revoke = ["m-revoked"]
    await first.drop()
    second = await fake.wait_stream(2)
    assert sorted(second.hello.running_mission_ids) == ["m-keep", "m-revoked"]
    await fake.wait_until(lambda: not pid_alive(revoked), what="revoked child gone")
    await fake.wait_until(lambda: second.of_kind("heartbeat") and
                          list(second.of_kind("heartbeat")[-1].running_mission_ids) == ["m-keep"],
                          what="heartbeat listing only m-keep")
    assert pid_alive(keep) and fake.all_received("result") == []
    await second.cancel("m-keep")
    await fake.wait_until(lambda: fake.results_for("m-keep"), what="m-keep result")
    assert fake.results_for("m-revoked") == []


async def test_drain_timeout_stops_leftover_runs_and_hands_them_back(
        tmp_path, fake, registry, registry_addr, start_worker):
    config = sleeper_lane(tmp_path, fake, registry_addr, drain_timeout=0.3)
    worker = start_worker(config)
    stream = await fake.wait_stream(1)
    await stream.assign(make_mission("m-long", vp_id=config.vp_id))
    pid = await child_pid(fake, config, "m-long", registry)
    await worker.shutdown()
    assert stream.of_kind("draining") and stream.of_kind("draining")[0].lease_epoch == stream.hello.lease_epoch
    assert not pid_alive(pid)
    assert fake.all_received("result") == []
    [back] = fake.all_received("hand_back")
    assert (back.mission_id, back.attempt, back.reason) == ("m-long", 1, "DRAINING")
    # Every hand-back was acknowledged, so nothing is left in flight: the lease is released.
    session = await get_session(registry, config.vp_id)
    assert session.lease_owner == "" and session.status == S.SESSION_STATUS_IDLE, session


async def test_drain_keeps_the_lease_when_a_hand_back_is_not_acknowledged(
        tmp_path, fake, registry, registry_addr, start_worker):
    fake.accept_results = False
    config = sleeper_lane(tmp_path, fake, registry_addr, drain_timeout=0.3)
    worker = start_worker(config)
    stream = await fake.wait_stream(1)
    await stream.assign(make_mission("m-long", vp_id=config.vp_id))
    pid = await child_pid(fake, config, "m-long", registry)
    await worker.shutdown()
    assert not pid_alive(pid) and [b.mission_id for b in fake.all_received("hand_back")] == ["m-long"]
    session = await get_session(registry, config.vp_id)
    # Not released: the lease expires and the dispatcher re-queues the mission.
    assert session.lease_owner == stream.hello.owner and session.status == S.SESSION_STATUS_ACTIVE


async def test_dispatcher_restart_worker_renews_lease_directly_and_reconnects(
        tmp_path, registry, registry_addr, start_worker):
    fake = FakeDispatcherChannel(registry_addr=registry_addr, lease_ttl=1)
    address = await fake.start()
    config = lane(tmp_path, fake, registry_addr, lease_ttl=1)
    start_worker(config)
    first = await fake.wait_stream(1)
    await fake.stop()

    gone = (await get_session(registry, config.vp_id)).last_heartbeat_at.ToDatetime()

    async def renewed_well_past_ttl():
        session = await get_session(registry, config.vp_id)
        return (session.last_heartbeat_at.ToDatetime() - gone).total_seconds() > 1.5 and not session.stale

    deadline = time.monotonic() + 10
    while not await renewed_well_past_ttl():
        assert time.monotonic() < deadline, "the worker did not keep its lease alive while disconnected"
        await asyncio.sleep(0.1)

    restarted = FakeDispatcherChannel(registry_addr=registry_addr, lease_ttl=1)
    await restarted.start(address)
    try:
        again = await restarted.wait_stream(1)
        assert (again.hello.session_id, again.hello.lease_epoch) == (first.hello.session_id, first.hello.lease_epoch)
    finally:
        await restarted.stop()


# -- the vp-worker console script --------------------------------------------------------


def start_worker_process(vp_id: str, fake, registry_addr: str, workspace_root: Path, *extra: str) -> ServiceProcess:
    return ServiceProcess([console_script("vp-worker"), "--dispatcher", fake.address, "--registry", registry_addr,
                           "--vp-id", vp_id, "--workspace-root", str(workspace_root), "--insecure", *extra])


async def wait_exit(proc: ServiceProcess, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while proc.proc.poll() is None:
        assert time.monotonic() < deadline, f"vp-worker did not exit:\n{proc.output}"
        await asyncio.sleep(0.05)
    return proc.proc.returncode


async def test_vp_worker_process_sigterm_drains_finishes_work_and_releases_lease(
        tmp_path, fake, registry, registry_addr):
    vp_id = new_vp_id()
    proc = start_worker_process(vp_id, fake, registry_addr, tmp_path / "ws", "--executor", "demo",
                                "--drain-timeout", "20")
    try:
        stream = await fake.wait_stream(1, timeout=20)
        # The fake sees the hello before the worker logs the welcome: wait for the line.
        proc.wait_for_line(rf"vp-worker {re.escape(vp_id)} connected to {re.escape(fake.address)} \(epoch 1\)")
        await stream.assign(make_mission("m-drain", vp_id=vp_id))
        await fake.wait_until(lambda: progress_lines(fake, "m-drain"), what="mission running")
        proc.proc.send_signal(signal.SIGTERM)
        await fake.wait_until(lambda: stream.of_kind("draining"), what="draining")
        await stream.assign(make_mission("m-too-late", vp_id=vp_id))  # takes no new work
        assert await wait_exit(proc) == 0, proc.output
    finally:
        dispose(proc)
    result = fake.results_for("m-drain")[0]
    assert result.outcome == S.MISSION_STATE_COMPLETED
    assert not [s for s in fake.all_received("started") if s.mission_id == "m-too-late"]
    [back] = fake.all_received("hand_back")  # given back at once, not left to a timeout
    assert (back.mission_id, back.reason, back.lease_epoch) == ("m-too-late", "DRAINING", stream.hello.lease_epoch)
    session = await get_session(registry, vp_id)
    assert session.status == S.SESSION_STATUS_IDLE and session.lease_owner == "", session


async def test_restarted_worker_process_resumes_session_with_next_epoch(tmp_path, registry, registry_addr):
    fake = FakeDispatcherChannel(registry_addr=registry_addr, lease_ttl=1)
    await fake.start()
    vp_id = new_vp_id()
    old = start_worker_process(vp_id, fake, registry_addr, tmp_path / "ws", "--lease-ttl", "1")
    new = None
    try:
        before = await fake.wait_stream(1, timeout=20)
        workspace = (await get_session(registry, vp_id)).workspace_dir
        old.kill()  # SIGKILL: no release, the lease must expire first
        # Another root on purpose: a resumed session keeps its stored workspace.
        new = start_worker_process(vp_id, fake, registry_addr, tmp_path / "other-root", "--lease-ttl", "1")
        after = await fake.wait_stream(2, timeout=20)
        assert after.hello.session_id == before.hello.session_id
        assert after.hello.lease_epoch == before.hello.lease_epoch + 1
        assert after.hello.owner != before.hello.owner
        session = await get_session(registry, vp_id)
        assert (session.workspace_dir, session.lease_epoch, session.lease_owner) == (
            workspace, after.hello.lease_epoch, after.hello.owner)
        await after.assign(make_mission("m-after-restart", vp_id=vp_id))
        await fake.wait_until(lambda: fake.results_for("m-after-restart"), timeout=15, what="result")
        ref = Path(urlparse(fake.results_for("m-after-restart")[0].result_ref).path)
        assert ref.parent.parent == Path(workspace).resolve()
        new.proc.send_signal(signal.SIGTERM)
        assert await wait_exit(new) == 0, new.output
    finally:
        dispose(old)
        if new is not None:
            dispose(new)
        await fake.stop()
