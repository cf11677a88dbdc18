"""The worker's trust window (services/worker/trust.py): the arithmetic on an
injected clock, and a worker whose renewals stop being confirmed stopping its
runs at its trust deadline -- moved by the injected clock, never by sleeping."""

from __future__ import annotations

import asyncio

import pytest

from services.common.contracts.vp.v1 import session_pb2
from services.worker.trust import TrustWindow, granted_ttl, safety_margin
from tests.support.fake_dispatcher import make_mission
from test_worker_lane import child_pid, fake, get_session, registry, registry_addr, sleeper_lane, start_worker  # noqa: F401
from worker_test_helpers import pid_alive


class FakeMonotonic:
    def __init__(self, start: float = 1000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


def test_safety_margin_is_a_fifth_of_the_ttl_at_least_one_second_at_most_half():
    assert safety_margin(30) == 6
    assert safety_margin(6) == pytest.approx(1.2)
    assert safety_margin(3) == 1
    assert safety_margin(1.5) == 0.75


def test_trust_is_anchored_at_the_send_and_lapses_at_ttl_minus_margin():
    clock = FakeMonotonic()
    trust = TrustWindow(clock)
    assert not trust.trusted()  # nothing confirmed yet
    sent = clock()
    clock.advance(2.0)  # a slow answer must not stretch the window
    trust.confirm(sent, 6.0)
    assert trust.trusted_until == pytest.approx(sent + 6.0 - 1.2)
    clock.advance(2.79)
    assert trust.trusted() and trust.remaining() == pytest.approx(0.01)
    clock.advance(0.01)
    assert not trust.trusted() and trust.remaining() == 0


def test_an_older_confirmation_never_moves_the_window_back():
    clock = FakeMonotonic()
    trust = TrustWindow(clock)
    trust.confirm(clock() + 5, 6.0)
    later = trust.trusted_until
    trust.confirm(clock(), 6.0)  # the answer to an earlier heartbeat, arriving late
    assert trust.trusted_until == later
    trust.reset()
    assert not trust.trusted()


def test_granted_ttl_is_the_difference_of_the_sessions_registry_times():
    session = session_pb2.VpSession()
    assert granted_ttl(session) == 0
    session.last_heartbeat_at.FromSeconds(1_000)
    session.lease_expires_at.FromSeconds(1_030)
    assert granted_ttl(session) == 30


async def test_unconfirmed_renewals_stop_the_runs_at_the_trust_deadline_and_start_a_new_term(
        tmp_path, fake, registry, registry_addr, start_worker):  # noqa: F811
    """The dispatcher keeps renewing the lease but its confirmations are lost:
    the worker must stop its run once its own window ends, report nothing
    more under that epoch, and come back under a new term."""
    clock = FakeMonotonic()
    fake.confirm_renewals = False
    config = sleeper_lane(tmp_path, fake, registry_addr, lease_ttl=30)
    worker = start_worker(config, monotonic=clock)
    stream = await fake.wait_stream(1)
    epoch = stream.hello.lease_epoch
    await stream.assign(make_mission("m-trust", vp_id=config.vp_id))
    pid = await child_pid(fake, config, "m-trust", registry)

    clock.advance(30 - 6 - 0.5)  # just inside the window (acquired at t0, TTL 30, margin 6)
    beats = len(stream.of_kind("heartbeat"))
    await fake.wait_until(lambda: len(stream.of_kind("heartbeat")) > beats + 1, what="heartbeats while trusted")
    assert pid_alive(pid) and worker.task.done() is False

    clock.advance(0.6)  # past trusted_until
    await fake.wait_until(lambda: not pid_alive(pid), what="the run stopped by the worker itself")
    second = await fake.wait_stream(2, timeout=20)
    assert second.hello.lease_epoch == epoch + 1
    assert list(second.hello.running_mission_ids) == []
    assert fake.results_for("m-trust") == []  # nothing reported under the lapsed term
    session = await get_session(registry, config.vp_id)
    assert session.lease_epoch == epoch + 1
