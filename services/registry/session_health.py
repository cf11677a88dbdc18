"""Effective status: what a reader should act on, computed from the stored
status plus lease and heartbeat age (the seeds' stale-state hardening)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.common.states import SessionStatus
from services.common.store.records import SessionRecord


class StaleReason(StrEnum):
    NONE = ""
    LEASE_EXPIRED = "lease_expired"
    HEARTBEAT_OVERDUE = "heartbeat_overdue"


@dataclass(frozen=True)
class SessionHealth:
    effective_status: SessionStatus
    stale: bool
    stale_reason: StaleReason


_LEASED = (SessionStatus.ACTIVE, SessionStatus.PAUSED)


def assess(session: SessionRecord, now: datetime, heartbeat_stale_after: timedelta) -> SessionHealth:
    if session.status not in _LEASED:
        return SessionHealth(session.status, False, StaleReason.NONE)
    # A stale ACTIVE session reads DEGRADED; a paused one stays PAUSED (routing skips it anyway).
    stale_status = SessionStatus.DEGRADED if session.status == SessionStatus.ACTIVE else session.status
    if session.lease_expires_at is None or session.lease_expires_at <= now:
        return SessionHealth(stale_status, True, StaleReason.LEASE_EXPIRED)
    if session.last_heartbeat_at is None or now - session.last_heartbeat_at > heartbeat_stale_after:
        return SessionHealth(stale_status, True, StaleReason.HEARTBEAT_OVERDUE)
    return SessionHealth(session.status, False, StaleReason.NONE)
