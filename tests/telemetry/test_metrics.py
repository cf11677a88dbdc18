"""Prometheus metrics: every service as a real process with --metrics-listen on
port 0, scraped over HTTP and parsed with prometheus-client's own parser; and
the after-commit rule (a retried store transaction counts once)."""

from __future__ import annotations

import sqlite3
import urllib.request

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import exc as sa_exc

from services.common.contracts.vp.v1 import enums_pb2 as S
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import mission_pb2
from services.common.telemetry.metrics_server import start_metrics_server
from tests.support.e2e import E2EStack
from tests.support.processes import ServiceProcess, console_script
from tests.support.scripted_worker import ScriptedWorker
from tests.support.stack import running_stack
from tests.support.waiting import async_wait_until, wait_until

CODER, GENERAL = "vp.coder.primary", "vp.general.primary"
MC = "vp.v1.MissionControl"
ON_FREE_PORT = ("--metrics-listen", "127.0.0.1:0")


class Scrape:
    """One /metrics page: sample values by (sample name, labels), and the family names."""

    def __init__(self, text: str) -> None:
        self.families = set()
        self.samples: dict[tuple[str, frozenset], float] = {}
        for family in text_string_to_metric_families(text):
            self.families.add(family.name)
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def total(self, name: str, **labels) -> float:
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def label_values(self) -> set[str]:
        return {value for (_, labels) in self.samples for _, value in labels}


def scrape(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return Scrape(response.read().decode())


def dispatch(stub, vp_id, **fields):
    return stub.DispatchMission(mc_pb.DispatchMissionRequest(envelope=mission_pb2.MissionEnvelope(
        vp_id=vp_id, mission_type="code", objective="metrics", **fields)), timeout=10)


def eventually(url: str, check, what: str, timeout: float = 15.0) -> Scrape:
    def attempt():
        page = scrape(url)
        return page if check(page) else None
    return wait_until(attempt, timeout=timeout, interval=0.1, what=what)


@pytest.fixture
def stack(sqlite_url, tmp_path):
    stack = E2EStack(sqlite_url, tmp_path)
    (tmp_path / "handoff").mkdir()
    try:
        stack.start_registry(*ON_FREE_PORT)
        stack.start_dispatcher(*ON_FREE_PORT)
        yield stack
    finally:
        stack.stop()


def test_every_service_exports_metrics(stack):
    registry_url, dispatcher_url = stack.registry.metrics_url(), stack.dispatcher.metrics_url()
    worker_url = stack.start_worker(CODER, *ON_FREE_PORT, executor="noop").metrics_url()
    channel, stub = stack.missions()
    try:
        delegated = dispatch(stub, CODER)
        done = stub.WaitMission(mc_pb.WaitMissionRequest(mission_id=delegated.mission.envelope.mission_id,
                                                         timeout=Duration(seconds=30)), timeout=35).mission
        assert done.state == S.MISSION_STATE_COMPLETED
        # No general worker is connected: the mission falls back to the caller at once.
        fallback = dispatch(stub, GENERAL)
        assert fallback.route.fallback_reason == S.FALLBACK_REASON_UNHEALTHY
        assert fallback.mission.state == S.MISSION_STATE_FAILED
        with pytest.raises(grpc.RpcError) as invalid:
            dispatch(stub, "vp.nope.primary")
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        channel.close()

    # The supervisor refreshes lane gauges every tick (0.2 s here).
    page = eventually(dispatcher_url, lambda p: p.value("vp_lane_live_session", lane=CODER) == 1,
                      "the coder lane's live-session gauge")
    assert page.value("vp_missions_dispatched_total", lane=CODER, route="delegated") == 1
    assert page.value("vp_missions_dispatched_total", lane=GENERAL, route="fallback") == 1
    assert page.total("vp_missions_dispatched_total") == 2
    assert page.value("vp_mission_fallbacks_total", lane=GENERAL, reason="unhealthy") == 1
    assert page.total("vp_mission_fallbacks_total") == 1
    assert page.value("vp_missions_finished_total", lane=CODER, outcome="completed") == 1
    assert page.value("vp_missions_finished_total", lane=GENERAL, outcome="failed") == 1
    assert page.total("vp_mission_duration_seconds_count") == 2  # one per mission that ended
    assert page.value("vp_mission_queue_wait_seconds_count", lane=CODER, outcome="completed") == 1
    assert page.total("vp_mission_requeues_total") == 0
    assert page.value("vp_rpc_duration_seconds_count", service=MC, method="DispatchMission", code="OK") == 2
    assert page.value("vp_rpc_duration_seconds_count", service=MC, method="DispatchMission",
                      code="INVALID_ARGUMENT") == 1
    assert page.value("vp_rpc_duration_seconds_count", service=MC, method="WaitMission", code="OK") == 1
    assert page.value("vp_worker_streams", lane=CODER) == 1
    assert page.value("vp_worker_streams", lane=GENERAL) == 0
    assert page.value("vp_lane_live_session", lane=GENERAL) == 0
    assert page.value("vp_lane_in_flight", lane=CODER) == 0 and page.value("vp_lane_queue_depth", lane=CODER) == 0
    dispatcher_page = page

    # Session gauges are refreshed by each sweep (every 0.5 s here).
    registry_page = eventually(registry_url, lambda p: p.value("vp_sessions", effective_status="active") == 1,
                               "the session gauge")
    assert registry_page.value("vp_sessions", effective_status="degraded") == 0
    assert registry_page.value("vp_sessions_orphaned") == 0
    assert "vp_lease_expirations" in registry_page.families
    assert registry_page.value("vp_session_recoveries_total", outcome="taken_over") == 0
    assert registry_page.value("vp_rpc_duration_seconds_count", service="vp.v1.SessionRegistry",
                               method="AcquireLease", code="OK") == 1

    worker_page = scrape(worker_url)
    assert "python_info" in worker_page.families

    # kill -9 the worker: its stream drops at once, its lease expires and the sweeper degrades it.
    stack.workers[CODER].kill()
    eventually(dispatcher_url, lambda p: p.value("vp_worker_streams", lane=CODER) == 0, "the stream to detach")
    registry_page = eventually(registry_url, lambda p: p.value("vp_lease_expirations_total", lane=CODER) == 1,
                               "the sweeper to expire the coder lease")
    assert registry_page.value("vp_sessions_orphaned") == 1
    assert registry_page.value("vp_sessions", effective_status="degraded") == 1
    # A new worker process (another owner) takes the degraded session over.
    stack.start_worker(CODER, executor="noop")
    registry_page = eventually(registry_url,
                               lambda p: p.value("vp_session_recoveries_total", outcome="taken_over") == 1,
                               "the takeover to be counted")
    eventually(registry_url, lambda p: p.value("vp_sessions_orphaned") == 0, "the orphan gauge to clear")
    eventually(dispatcher_url, lambda p: p.value("vp_worker_streams", lane=CODER) == 1, "the new stream")

    for page in (dispatcher_page, registry_page, worker_page):
        assert not [value for value in page.label_values() if value.startswith("m-")], "a mission id as a label"


def test_explicit_metrics_address_must_bind(stack):
    taken = stack.registry.metrics_url().removeprefix("http://").removesuffix("/metrics")
    clash = ServiceProcess([console_script("vp-registry"), "--listen", "127.0.0.1:0", "--db", stack.db_url,
                            "--metrics-listen", taken, "--insecure"])
    assert clash.proc.wait(20) == 2
    assert "cannot serve metrics" in clash.output


def test_metrics_server_port_zero_logs_bound_port(caplog):
    caplog.set_level("INFO")
    server = start_metrics_server("127.0.0.1:0")
    try:
        port = int(server.address.rsplit(":", 1)[1])
        assert port > 0 and f"metrics on http://127.0.0.1:{port}/metrics" in caplog.text
        assert "vp_rpc_duration_seconds" in scrape(server.url).families
    finally:
        server.close()


# --- a retried transaction counts once ---------------------------------------------------

def _busy() -> sa_exc.OperationalError:
    orig = sqlite3.OperationalError("database is locked")
    orig.sqlite_errorcode = 5  # SQLITE_BUSY: the store rolls back and runs the function again
    return sa_exc.OperationalError("COMMIT", {}, orig)


def _settled(attempts: list[list[int]]):
    async def check() -> bool:
        return all(len(calls) != 1 for calls in attempts)
    return check


def _sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_retried_transactions_count_once(sqlite_url, monkeypatch):
    async with running_stack(sqlite_url) as stack:
        original_run = stack.store.run
        attempts: list[list[int]] = []

        def run_twice(fn):
            """Every write transaction: the function runs, the attempt fails as busy
            and is rolled back, then the store retries it and commits."""
            calls: list[int] = []
            attempts.append(calls)

            def flaky(tx):
                result = fn(tx)
                calls.append(1)
                if len(calls) == 1:
                    raise _busy()
                return result

            return original_run(flaky)

        monkeypatch.setattr(stack.store, "run", run_twice)
        names = [
            ("vp_missions_dispatched_total", dict(lane=GENERAL, route="fallback")),
            ("vp_mission_fallbacks_total", dict(lane=GENERAL, reason="unhealthy")),
            ("vp_missions_finished_total", dict(lane=GENERAL, outcome="failed")),
            ("vp_mission_duration_seconds_count", dict(lane=GENERAL, outcome="failed")),
            ("vp_missions_dispatched_total", dict(lane=CODER, route="delegated")),
            ("vp_missions_finished_total", dict(lane=CODER, outcome="completed")),
            ("vp_mission_queue_wait_seconds_count", dict(lane=CODER, outcome="completed")),
            ("vp_mission_requeues_total", dict(lane=CODER, reason="failed")),
        ]
        before = {(n, tuple(sorted(ls.items()))): _sample(n, **ls) for n, ls in names}

        worker = ScriptedWorker(stack, CODER)
        try:
            await worker.connect()
            fallback = await stack.missions.DispatchMission(mc_pb.DispatchMissionRequest(
                envelope=mission_pb2.MissionEnvelope(vp_id=GENERAL, mission_type="task", objective="x")))
            assert fallback.mission.state == S.MISSION_STATE_FAILED
            await stack.missions.DispatchMission(mc_pb.DispatchMissionRequest(
                envelope=mission_pb2.MissionEnvelope(vp_id=CODER, mission_type="code", objective="y")))
            first = await worker.assignment()
            worker.result(first, S.MISSION_STATE_FAILED)  # attempts left: re-queued
            second = await worker.assignment()
            worker.result(second)
            while (await worker.next("result_accepted")).result_accepted.attempt != second.mission.attempt:
                pass
        finally:
            await worker.close()

        after = {(n, tuple(sorted(ls.items()))): _sample(n, **ls) for n, ls in names}
        assert {key: after[key] - before[key] for key in before} == {key: 1.0 for key in before}
        # Each write transaction that committed really ran twice (two dispatches,
        # two results, the claims, the hello's reconcile at least). A transaction the
        # last result triggered (a claim) may still be between its two runs: wait for it.
        await async_wait_until(_settled(attempts), timeout=10, what="in-flight transactions to finish")
        committed = [len(calls) for calls in attempts if calls]
        assert len(committed) >= 7 and set(committed) == {2}, attempts


def test_lane_series_exist_at_zero_before_any_event(stack):
    """rate() panels and alerts need a series to work on: every configured lane's
    counters and gauges are on the first scrape at 0, and the registry's lease
    expirations of a lane it knows are there at 0 before any lease expired."""
    from services.common.telemetry.metrics import FALLBACK_REASONS, OUTCOMES, REQUEUE_REASONS, ROUTES

    page = scrape(stack.dispatcher.metrics_url())
    for lane in (CODER, GENERAL):
        for reason in REQUEUE_REASONS:
            assert page.value("vp_mission_requeues_total", lane=lane, reason=reason) == 0, (lane, reason)
        for reason in FALLBACK_REASONS:
            assert page.value("vp_mission_fallbacks_total", lane=lane, reason=reason) == 0, (lane, reason)
        for route in ROUTES:
            assert page.value("vp_missions_dispatched_total", lane=lane, route=route) == 0, (lane, route)
        for outcome in OUTCOMES:
            assert page.value("vp_missions_finished_total", lane=lane, outcome=outcome) == 0, (lane, outcome)
        for gauge in ("vp_lane_in_flight", "vp_lane_queue_depth", "vp_lane_live_session", "vp_worker_streams"):
            assert page.value(gauge, lane=lane) == 0, (gauge, lane)

    registry_url = stack.registry.metrics_url()
    assert scrape(registry_url).value("vp_lease_expirations_total", lane=CODER) is None  # not known yet
    stack.start_worker(CODER, executor="noop")  # acquires the lane's lease
    page = scrape(registry_url)
    assert page.value("vp_lease_expirations_total", lane=CODER) == 0
