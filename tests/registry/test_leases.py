"""Lease rules as pure functions, with a fake clock: acquire, renew, expiry,
takeover, fencing, release, retire and effective status."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from services.common.clock import FakeClock
from services.common.errors import IllegalTransition, LeaseHeld, LeaseSuperseded, SessionRetired
from services.common.states import SessionStatus
from services.registry import leases
from services.registry.leases import AcquireOutcome
from services.registry.session_health import StaleReason, assess

TTL = timedelta(seconds=30)
VP = "vp.coder.primary"


@pytest.fixture
def clock():
    return FakeClock()


def first(clock, owner="w1"):
    change, outcome = leases.acquire(None, vp_id=VP, owner=owner, runtime_id="rt", workspace_dir="/ws",
                                     ttl=TTL, now=clock.now())
    assert outcome is AcquireOutcome.CREATED
    return change.session


def test_create_starts_epoch_one_and_emits_created(clock):
    change, outcome = leases.acquire(None, vp_id=VP, owner="w1", runtime_id="rt", workspace_dir="/ws",
                                     ttl=TTL, now=clock.now())
    assert outcome is AcquireOutcome.CREATED
    assert change.event_type == "vp.session.created"
    s = change.session
    assert (s.status, s.lease_epoch, s.lease_owner, s.workspace_dir) == (SessionStatus.ACTIVE, 1, "w1", "/ws")
    assert s.lease_expires_at == clock.now() + TTL
    assert s.session_id.startswith("s-")
    assert s.created_at.tzinfo is not None


def test_live_lease_of_other_owner_is_refused_with_holder(clock):
    session = first(clock)
    clock.advance(29)
    with pytest.raises(LeaseHeld) as info:
        leases.acquire(session, vp_id=VP, owner="w2", runtime_id="", workspace_dir="", ttl=TTL, now=clock.now())
    assert info.value.metadata["holder"] == "w1"
    assert info.value.metadata["lease_epoch"] == "1"
    assert info.value.metadata["lease_expires_at"] == session.lease_expires_at.isoformat()


def test_same_owner_reacquires_without_new_term(clock):
    session = first(clock)
    clock.advance(10)
    change, outcome = leases.acquire(session, vp_id=VP, owner="w1", runtime_id="", workspace_dir="/other",
                                     ttl=TTL, now=clock.now())
    assert outcome is AcquireOutcome.REACQUIRED and change.event_type is None
    assert change.session.lease_epoch == 1
    assert change.session.lease_expires_at == clock.now() + TTL
    assert change.session.workspace_dir == "/ws"


def test_expired_lease_is_taken_over_with_higher_epoch_keeping_identity(clock):
    session = first(clock)
    clock.advance(TTL + timedelta(seconds=1))
    change, outcome = leases.acquire(session, vp_id=VP, owner="w2", runtime_id="rt2", workspace_dir="/new",
                                     ttl=TTL, now=clock.now())
    assert outcome is AcquireOutcome.TAKEN_OVER
    assert change.event_type == "vp.session.resumed"
    taken = change.session
    assert taken.lease_epoch == 2 and taken.lease_owner == "w2"
    assert (taken.session_id, taken.workspace_dir) == (session.session_id, "/ws")
    assert change.payload["previous_owner"] == "w1"


def test_zombie_cannot_renew_after_takeover(clock):
    session = first(clock)
    clock.advance(TTL * 2)
    taken, _ = leases.acquire(session, vp_id=VP, owner="w2", runtime_id="", workspace_dir="", ttl=TTL,
                              now=clock.now())
    with pytest.raises(LeaseSuperseded) as info:
        leases.renew(taken.session, owner="w1", lease_epoch=1, ttl=TTL, now=clock.now())
    assert info.value.reason == "LEASE_SUPERSEDED"
    assert info.value.metadata == {"current_epoch": "2", "current_owner": "w2"}


def test_stale_epoch_from_same_owner_is_superseded(clock):
    session = first(clock)
    clock.advance(TTL * 2)
    again, outcome = leases.acquire(session, vp_id=VP, owner="w1", runtime_id="", workspace_dir="", ttl=TTL,
                                    now=clock.now())
    assert outcome is AcquireOutcome.RESUMED and again.session.lease_epoch == 2
    with pytest.raises(LeaseSuperseded):
        leases.renew(again.session, owner="w1", lease_epoch=1, ttl=TTL, now=clock.now())


def test_renew_extends_from_now(clock):
    session = first(clock)
    clock.advance(20)
    change = leases.renew(session, owner="w1", lease_epoch=1, ttl=TTL, now=clock.now())
    assert change.session.lease_expires_at == clock.now() + TTL
    assert change.session.last_heartbeat_at == clock.now()
    assert change.event_type is None


def test_holder_renews_degraded_session_back_to_active(clock):
    session = replace(first(clock), status=SessionStatus.DEGRADED)
    clock.advance(TTL * 2)
    change = leases.renew(session, owner="w1", lease_epoch=1, ttl=TTL, now=clock.now())
    assert change.session.status == SessionStatus.ACTIVE
    assert change.event_type == "vp.session.resumed"


def test_release_then_resume_bumps_epoch(clock):
    session = first(clock)
    released = leases.release(session, owner="w1", lease_epoch=1, now=clock.now())
    assert released.session.status == SessionStatus.IDLE and released.session.lease_owner == ""
    assert released.event_type == "vp.session.released"
    resumed, outcome = leases.acquire(released.session, vp_id=VP, owner="w3", runtime_id="", workspace_dir="",
                                      ttl=TTL, now=clock.now())
    assert outcome is AcquireOutcome.RESUMED and resumed.session.lease_epoch == 2


def test_release_by_non_holder_is_superseded(clock):
    with pytest.raises(LeaseSuperseded):
        leases.release(first(clock), owner="w9", lease_epoch=1, now=clock.now())


def test_retired_session_refuses_acquire_and_renew(clock):
    retired = leases.retire(first(clock), reason="decommissioned", now=clock.now()).session
    assert retired.status == SessionStatus.RETIRED
    with pytest.raises(SessionRetired):
        leases.acquire(retired, vp_id=VP, owner="w1", runtime_id="", workspace_dir="", ttl=TTL, now=clock.now())
    with pytest.raises(LeaseSuperseded):
        leases.renew(retired, owner="w1", lease_epoch=1, ttl=TTL, now=clock.now())
    with pytest.raises(IllegalTransition):
        leases.retire(retired, reason="again", now=clock.now())


def test_epochs_strictly_increase_over_many_terms(clock):
    session = first(clock)
    epochs = [session.lease_epoch]
    for i in range(10):
        clock.advance(TTL * 2)
        change, _ = leases.acquire(session, vp_id=VP, owner=f"w{i % 3}", runtime_id="", workspace_dir="",
                                   ttl=TTL, now=clock.now())
        session = change.session
        epochs.append(session.lease_epoch)
    assert epochs == sorted(set(epochs)) and len(epochs) == 11


@pytest.mark.parametrize(
    ("advance", "effective", "stale", "reason"),
    [
        (timedelta(seconds=5), SessionStatus.ACTIVE, False, StaleReason.NONE),
        (TTL, SessionStatus.DEGRADED, True, StaleReason.LEASE_EXPIRED),
    ],
)
def test_effective_status(clock, advance, effective, stale, reason):
    session = first(clock)
    clock.advance(advance)
    health = assess(session, clock.now(), TTL * 2)
    assert (health.effective_status, health.stale, health.stale_reason) == (effective, stale, reason)


def test_heartbeat_overdue_is_stale_even_with_live_lease(clock):
    session = first(clock)
    long_lease = replace(session, lease_expires_at=clock.now() + timedelta(hours=1))
    clock.advance(TTL * 3)
    health = assess(long_lease, clock.now(), TTL * 2)
    assert health.stale and health.stale_reason == StaleReason.HEARTBEAT_OVERDUE


def test_idle_and_retired_are_never_stale(clock):
    session = first(clock)
    idle = leases.release(session, owner="w1", lease_epoch=1, now=clock.now()).session
    clock.advance(timedelta(days=1))
    assert not assess(idle, clock.now(), TTL).stale
