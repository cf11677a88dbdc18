"""The stale-session sweeper: an expired lease makes a session DEGRADED, and a
session degraded for longer than the grace period goes RECOVERING, waiting for
a new owner. Each step is one transaction, so a crash mid-sweep loses nothing."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.common.states import SessionStatus, session_transition
from services.common.store.interface import Tx
from services.common.store.records import NewEvent, SessionRecord
from services.registry.settings import RegistrySettings

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    degraded: list[str] = field(default_factory=list)
    recovering: list[str] = field(default_factory=list)


def _move(tx: Tx, session: SessionRecord, name: str, target: SessionStatus, now: datetime, payload: dict) -> None:
    transition = session_transition(name, session.status, target)
    tx.update_session(replace(session, status=target, status_changed_at=now, updated_at=now))
    tx.append_event(
        NewEvent(event_type=transition.event, vp_id=session.vp_id, emitted_at=now,
                 payload={"session_id": session.session_id, "lease_epoch": session.lease_epoch, **payload})
    )


def sweep(tx: Tx, now: datetime, settings: RegistrySettings) -> SweepReport:
    report = SweepReport()
    for candidate in tx.sessions_with_status([SessionStatus.ACTIVE, SessionStatus.DEGRADED]):
        # Re-read under lock: the holder may have renewed since the scan.
        session = tx.get_session(candidate.vp_id, for_update=True)
        if session is None:
            continue
        if session.status == SessionStatus.ACTIVE and session.lease_expires_at is not None \
                and session.lease_expires_at <= now:
            _move(tx, session, "expire", SessionStatus.DEGRADED, now,
                  {"reason": "lease_expired", "lease_owner": session.lease_owner,
                   "lease_expires_at": session.lease_expires_at.isoformat()})
            report.degraded.append(session.vp_id)
        elif session.status == SessionStatus.DEGRADED and session.status_changed_at is not None \
                and now - session.status_changed_at >= settings.recovery_grace:
            _move(tx, session, "start_recovery", SessionStatus.RECOVERING, now,
                  {"reason": "grace_elapsed", "degraded_since": session.status_changed_at.isoformat()})
            report.recovering.append(session.vp_id)
    return report


async def run_sweeper(sweep_once, interval_seconds: float) -> None:
    """Call sweep_once every interval until cancelled; a failing sweep is logged
    and retried next tick rather than killing the service."""
    while True:
        try:
            report = await sweep_once()
            if report.degraded or report.recovering:
                log.info("sweep: degraded=%s recovering=%s", report.degraded, report.recovering)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sweep failed; retrying next interval")
        await asyncio.sleep(interval_seconds)
