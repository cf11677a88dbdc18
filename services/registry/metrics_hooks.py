"""The registry's Prometheus metrics. Counters are observed after the
transaction that made the change commits (a retried transaction function must
not count twice); gauges are set from a listing of every session."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from services.common.states import SessionStatus
from services.common.store.records import SessionRecord
from services.common.telemetry.metrics import LEASE_EXPIRATIONS, SESSION_RECOVERIES, SESSIONS, SESSIONS_ORPHANED
from services.registry.leases import AcquireOutcome, is_live
from services.registry.session_health import assess

RECOVERY_OUTCOMES = ("taken_over", "resumed", "renewed")
_DOWN = (SessionStatus.DEGRADED, SessionStatus.RECOVERING)


def init() -> None:
    for outcome in RECOVERY_OUTCOMES:
        SESSION_RECOVERIES.labels(outcome)


def _was_down(before: SessionRecord | None, now: datetime) -> bool:
    """Degraded, recovering, or ACTIVE with an expired lease the sweeper has not seen yet."""
    if before is None:
        return False
    return before.status in _DOWN or (before.status == SessionStatus.ACTIVE and not is_live(before, now))


def acquire_recovery(before: SessionRecord | None, outcome: AcquireOutcome, now: datetime) -> str | None:
    """Inside the transaction: the recovery an acquire made, to observe after commit."""
    if outcome in (AcquireOutcome.TAKEN_OVER, AcquireOutcome.RESUMED) and _was_down(before, now):
        return outcome.value
    return None


def renew_recovery(before: SessionRecord, now: datetime) -> str | None:
    return "renewed" if _was_down(before, now) else None


def recovered(outcome: str | None) -> None:
    if outcome:
        SESSION_RECOVERIES.labels(outcome).inc()


def leases_expired(vp_ids: Iterable[str]) -> None:
    """After a sweep commits: one per ACTIVE -> DEGRADED transition."""
    for vp_id in vp_ids:
        LEASE_EXPIRATIONS.labels(vp_id).inc()


def lane_known(vp_id: str) -> None:
    """A lane's counters exist at 0 from the moment the registry knows the lane,
    so rate() and alerts have a series before the first expiration."""
    LEASE_EXPIRATIONS.labels(vp_id)


def session_gauges(sessions: Iterable[SessionRecord], now: datetime, stale_after: timedelta) -> None:
    counts = dict.fromkeys(SessionStatus, 0)
    for session in sessions:
        lane_known(session.vp_id)
        counts[assess(session, now, stale_after).effective_status] += 1
    for status, count in counts.items():
        SESSIONS.labels(status.value).set(count)
    SESSIONS_ORPHANED.set(sum(counts[status] for status in _DOWN))
