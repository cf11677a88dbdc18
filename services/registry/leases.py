"""The lease protocol, as pure functions over a SessionRecord.

A term is (vp_id, lease_epoch). Acquiring a session without a live lease
starts a new term with epoch + 1; renew and release act only on the exact
(owner, epoch) of the current term. Once another owner has taken the session
over, the old term can never be renewed: its holder gets LEASE_SUPERSEDED and
must stop. specs/vp-session-registry-v1.md is the prose version of this file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from services.common.errors import LeaseHeld, LeaseSuperseded, SessionRetired
from services.common.states import SessionStatus, session_transition
from services.common.store.records import SessionRecord


class AcquireOutcome(StrEnum):
    CREATED = "created"
    RESUMED = "resumed"
    TAKEN_OVER = "taken_over"
    REACQUIRED = "reacquired"


@dataclass(frozen=True)
class LeaseChange:
    session: SessionRecord
    # Event to append, or None when the change is a plain heartbeat.
    event_type: str | None
    payload: dict


def is_live(session: SessionRecord, now: datetime) -> bool:
    return bool(session.lease_owner) and session.lease_expires_at is not None and session.lease_expires_at > now


def _status_after_acquire(current: SessionStatus) -> SessionStatus:
    # A paused lane stays paused: its worker may hold the lease, routing skips it.
    return SessionStatus.PAUSED if current == SessionStatus.PAUSED else SessionStatus.ACTIVE


def acquire(
    existing: SessionRecord | None,
    *,
    vp_id: str,
    owner: str,
    runtime_id: str,
    workspace_dir: str,
    ttl: timedelta,
    now: datetime,
) -> tuple[LeaseChange, AcquireOutcome]:
    if existing is None:
        transition = session_transition("acquire", None, SessionStatus.ACTIVE)
        session = SessionRecord(
            vp_id=vp_id,
            session_id=f"s-{uuid.uuid4().hex}",
            workspace_dir=workspace_dir,
            status=SessionStatus.ACTIVE,
            runtime_id=runtime_id,
            lease_owner=owner,
            lease_epoch=1,
            lease_expires_at=now + ttl,
            last_heartbeat_at=now,
            status_changed_at=now,
            created_at=now,
            updated_at=now,
        )
        payload = {"session_id": session.session_id, "owner": owner, "lease_epoch": 1}
        return LeaseChange(session, transition.event, payload), AcquireOutcome.CREATED

    if existing.status == SessionStatus.RETIRED:
        raise SessionRetired(f"session {vp_id!r} is retired", metadata={"vp_id": vp_id})

    if is_live(existing, now):
        if existing.lease_owner != owner:
            raise LeaseHeld(
                f"lease on {vp_id!r} is held by {existing.lease_owner!r} (epoch {existing.lease_epoch}) "
                f"until {existing.lease_expires_at.isoformat()}",
                metadata={
                    "holder": existing.lease_owner,
                    "lease_epoch": str(existing.lease_epoch),
                    "lease_expires_at": existing.lease_expires_at.isoformat(),
                },
            )
        session = replace(
            existing, runtime_id=runtime_id or existing.runtime_id, lease_expires_at=now + ttl,
            last_heartbeat_at=now, updated_at=now,
        )
        return LeaseChange(session, None, {}), AcquireOutcome.REACQUIRED

    target = _status_after_acquire(existing.status)
    transition = session_transition("acquire", existing.status, target)
    took_over = bool(existing.lease_owner) and existing.lease_owner != owner
    outcome = AcquireOutcome.TAKEN_OVER if took_over else AcquireOutcome.RESUMED
    session = replace(
        existing,
        status=target,
        runtime_id=runtime_id or existing.runtime_id,
        lease_owner=owner,
        lease_epoch=existing.lease_epoch + 1,
        lease_expires_at=now + ttl,
        last_heartbeat_at=now,
        status_changed_at=now if target != existing.status else existing.status_changed_at,
        updated_at=now,
    )
    payload = {
        "session_id": session.session_id,
        "owner": owner,
        "lease_epoch": session.lease_epoch,
        "outcome": outcome.value,
        "previous_owner": existing.lease_owner,
        "previous_epoch": existing.lease_epoch,
        "previous_status": existing.status.value,
    }
    return LeaseChange(session, transition.event, payload), outcome


def _require_term(existing: SessionRecord, owner: str, lease_epoch: int) -> None:
    if existing.lease_owner != owner or existing.lease_epoch != lease_epoch:
        raise LeaseSuperseded(
            f"lease term ({owner!r}, epoch {lease_epoch}) on {existing.vp_id!r} is superseded by "
            f"({existing.lease_owner or '-'!r}, epoch {existing.lease_epoch})",
            metadata={"current_epoch": str(existing.lease_epoch), "current_owner": existing.lease_owner},
        )


def renew(existing: SessionRecord, *, owner: str, lease_epoch: int, ttl: timedelta, now: datetime) -> LeaseChange:
    """Heartbeat. The holder of the current term may renew even after expiry as
    long as nobody took the session over: the epoch proves nobody else acted."""
    if existing.status == SessionStatus.RETIRED:
        raise LeaseSuperseded(
            f"session {existing.vp_id!r} is retired", metadata={"current_epoch": str(existing.lease_epoch),
                                                                 "current_owner": ""}
        )
    _require_term(existing, owner, lease_epoch)
    event_type = None
    payload: dict = {}
    status = existing.status
    if existing.status in (SessionStatus.DEGRADED, SessionStatus.RECOVERING):
        status = SessionStatus.ACTIVE
        event_type = session_transition("renew", existing.status, status).event
        payload = {"session_id": existing.session_id, "owner": owner, "lease_epoch": lease_epoch,
                   "outcome": "renewed_after_expiry", "previous_status": existing.status.value}
    session = replace(
        existing, status=status, lease_expires_at=now + ttl, last_heartbeat_at=now, updated_at=now,
        status_changed_at=now if status != existing.status else existing.status_changed_at,
    )
    return LeaseChange(session, event_type, payload)


def set_conversation(existing: SessionRecord, *, owner: str, lease_epoch: int, agent: str, conversation_id: str,
                     mission_id: str, now: datetime) -> LeaseChange:
    """Remember the VP's agent conversation. Fenced like renew: only the current
    term may write it, so a superseded worker cannot overwrite its successor's."""
    if existing.status == SessionStatus.RETIRED:
        raise LeaseSuperseded(
            f"session {existing.vp_id!r} is retired", metadata={"current_epoch": str(existing.lease_epoch),
                                                                 "current_owner": ""}
        )
    _require_term(existing, owner, lease_epoch)
    session = replace(existing, conversation_agent=agent, conversation_id=conversation_id,
                      conversation_mission_id=mission_id, conversation_updated_at=now, updated_at=now)
    return LeaseChange(session, None, {})


def reset_conversation(existing: SessionRecord, *, reason: str, now: datetime) -> LeaseChange | None:
    """Operator: forget the conversation; None when there is none (nothing changes)."""
    if not existing.conversation_id:
        return None
    session = replace(existing, conversation_agent="", conversation_id="", conversation_mission_id="",
                      conversation_updated_at=None, updated_at=now)
    payload = {"session_id": existing.session_id, "reason": reason, "previous_agent": existing.conversation_agent,
               "previous_conversation_id": existing.conversation_id}
    return LeaseChange(session, "vp.session.conversation_reset", payload)


def release(existing: SessionRecord, *, owner: str, lease_epoch: int, now: datetime) -> LeaseChange:
    _require_term(existing, owner, lease_epoch)
    target = SessionStatus.PAUSED if existing.status == SessionStatus.PAUSED else SessionStatus.IDLE
    transition = session_transition("release", existing.status, target)
    session = replace(
        existing, status=target, lease_owner="", lease_expires_at=None, updated_at=now,
        status_changed_at=now if target != existing.status else existing.status_changed_at,
    )
    payload = {"session_id": existing.session_id, "owner": owner, "lease_epoch": lease_epoch}
    return LeaseChange(session, transition.event, payload)


def revive(existing: SessionRecord, *, reason: str, now: datetime) -> LeaseChange:
    """RETIRED -> IDLE: the session may be acquired again (epoch + 1), same id and workspace."""
    transition = session_transition("revive", existing.status, SessionStatus.IDLE)
    session = replace(existing, status=SessionStatus.IDLE, lease_owner="", lease_expires_at=None, last_error="",
                      status_changed_at=now, updated_at=now)
    payload = {"session_id": existing.session_id, "reason": reason, "lease_epoch": existing.lease_epoch}
    return LeaseChange(session, transition.event, payload)


def retire(existing: SessionRecord, *, reason: str, now: datetime) -> LeaseChange:
    transition = session_transition("retire", existing.status, SessionStatus.RETIRED)
    session = replace(
        existing, status=SessionStatus.RETIRED, lease_owner="", lease_expires_at=None,
        last_error=reason or existing.last_error, status_changed_at=now, updated_at=now,
    )
    payload = {"session_id": existing.session_id, "reason": reason, "lease_epoch": existing.lease_epoch}
    return LeaseChange(session, transition.event, payload)
