"""SessionRegistry domain logic: validation, lease rules applied in one store
transaction each, and listing. The gRPC servicer only translates."""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from services.common.clock import Clock
from services.common.errors import FieldViolation, InvalidArgument, SessionNotFound
from services.common.states import SessionStatus
from services.common.store.interface import Store, Tx
from services.common.store.records import NewEvent, SessionRecord
from services.common.validation import OWNER_MAX, check_text, check_vp_id
from services.registry.workspaces import workspace_violations
from services.registry import leases, metrics_hooks
from services.registry.session_health import assess
from services.registry.settings import MAX_TTL, MIN_TTL, RegistrySettings
from services.registry.sweeper import SweepReport, sweep

log = logging.getLogger(__name__)
MAX_PAGE = 500
DEFAULT_PAGE = 100


@dataclass(frozen=True)
class SessionPage:
    sessions: list[SessionRecord]
    next_page_token: str


def _raise_if(violations: list[FieldViolation]) -> None:
    if violations:
        raise InvalidArgument(violations)


def _term_violations(vp_id: str, owner: str) -> list[FieldViolation]:
    return check_vp_id(vp_id) + check_text(owner, "owner", max_len=OWNER_MAX)


class SessionRegistry:
    def __init__(self, store: Store, clock: Clock, settings: RegistrySettings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        metrics_hooks.init()

    def _ttl(self, requested: timedelta | None) -> timedelta:
        if requested is None:
            return self.settings.lease_ttl
        if not MIN_TTL <= requested <= MAX_TTL:
            raise InvalidArgument(FieldViolation("ttl", f"must be within {MIN_TTL}..{MAX_TTL}"))
        return requested

    def _apply(self, tx: Tx, change: leases.LeaseChange, *, insert: bool = False) -> SessionRecord:
        if insert:
            tx.insert_session(change.session)
        else:
            tx.update_session(change.session)
        if change.event_type:
            tx.append_event(NewEvent(event_type=change.event_type, vp_id=change.session.vp_id,
                                     emitted_at=change.session.updated_at, payload=change.payload))
        return change.session

    async def acquire(
        self, *, vp_id: str, owner: str, runtime_id: str = "", workspace_dir: str = "",
        ttl: timedelta | None = None,
    ) -> tuple[SessionRecord, leases.AcquireOutcome]:
        violations = _term_violations(vp_id, owner) + check_text(runtime_id, "runtime_id", max_len=256,
                                                                 required=False)
        violations += check_text(workspace_dir, "workspace_dir", max_len=4096, required=False)
        _raise_if(violations)
        lease_ttl = self._ttl(ttl)

        def work(tx: Tx):
            existing = tx.get_session(vp_id, for_update=True)
            if existing is None and not workspace_dir:
                raise InvalidArgument(FieldViolation("workspace_dir", "required when the session is created"))
            if existing is None:
                _raise_if(workspace_violations(workspace_dir, self.settings.workspace_root))
            now = self.clock.now()
            change, outcome = leases.acquire(existing, vp_id=vp_id, owner=owner, runtime_id=runtime_id,
                                             workspace_dir=workspace_dir, ttl=lease_ttl, now=now)
            recovery = metrics_hooks.acquire_recovery(existing, outcome, now)
            return self._apply(tx, change, insert=existing is None), outcome, recovery

        session, outcome, recovery = await self.store.arun(work)
        metrics_hooks.recovered(recovery)
        metrics_hooks.lane_known(vp_id)
        return session, outcome

    async def renew(self, *, vp_id: str, owner: str, lease_epoch: int, ttl: timedelta | None = None) -> SessionRecord:
        _raise_if(_term_violations(vp_id, owner))
        lease_ttl = self._ttl(ttl)

        def work(tx: Tx) -> tuple[SessionRecord, str | None]:
            existing = self._require(tx, vp_id)
            now = self.clock.now()
            change = leases.renew(existing, owner=owner, lease_epoch=lease_epoch, ttl=lease_ttl, now=now)
            return self._apply(tx, change), metrics_hooks.renew_recovery(existing, now)

        session, recovery = await self.store.arun(work)
        metrics_hooks.recovered(recovery)
        return session

    async def release(self, *, vp_id: str, owner: str, lease_epoch: int) -> SessionRecord:
        _raise_if(_term_violations(vp_id, owner))

        def work(tx: Tx) -> SessionRecord:
            existing = self._require(tx, vp_id)
            return self._apply(tx, leases.release(existing, owner=owner, lease_epoch=lease_epoch, now=self.clock.now()))

        return await self.store.arun(work)

    async def retire(self, *, vp_id: str, reason: str = "") -> SessionRecord:
        _raise_if(check_vp_id(vp_id) + check_text(reason, "reason", max_len=1024, required=False))

        def work(tx: Tx) -> SessionRecord:
            existing = self._require(tx, vp_id)
            if existing.status == SessionStatus.RETIRED:
                return existing
            return self._apply(tx, leases.retire(existing, reason=reason, now=self.clock.now()))

        return await self.store.arun(work)

    async def set_conversation(self, *, vp_id: str, owner: str, lease_epoch: int, agent: str, conversation_id: str,
                               mission_id: str = "") -> SessionRecord:
        violations = _term_violations(vp_id, owner)
        violations += check_text(agent, "conversation.agent", max_len=64)
        violations += check_text(conversation_id, "conversation.conversation_id", max_len=256)
        violations += check_text(mission_id, "conversation.mission_id", max_len=128, required=False)
        _raise_if(violations)

        def work(tx: Tx) -> SessionRecord:
            existing = self._require(tx, vp_id)
            return self._apply(tx, leases.set_conversation(
                existing, owner=owner, lease_epoch=lease_epoch, agent=agent, conversation_id=conversation_id,
                mission_id=mission_id, now=self.clock.now()))

        return await self.store.arun(work)

    async def reset_conversation(self, *, vp_id: str, reason: str = "") -> SessionRecord:
        _raise_if(check_vp_id(vp_id) + check_text(reason, "reason", max_len=1024, required=False))

        def work(tx: Tx) -> SessionRecord:
            existing = self._require(tx, vp_id)
            change = leases.reset_conversation(existing, reason=reason, now=self.clock.now())
            return existing if change is None else self._apply(tx, change)

        return await self.store.arun(work)

    async def revive(self, *, vp_id: str, reason: str = "") -> SessionRecord:
        _raise_if(check_vp_id(vp_id) + check_text(reason, "reason", max_len=1024, required=False))

        def work(tx: Tx) -> SessionRecord:
            existing = self._require(tx, vp_id)
            return self._apply(tx, leases.revive(existing, reason=reason, now=self.clock.now()))

        return await self.store.arun(work)

    async def get(self, vp_id: str) -> SessionRecord:
        _raise_if(check_vp_id(vp_id))
        return await self.store.aread(lambda tx: self._require(tx, vp_id, for_update=False))

    async def list(
        self, *, statuses: Sequence[SessionStatus] = (), effective_statuses: Sequence[SessionStatus] = (),
        stale: bool | None = None, vp_id_prefix: str = "", page_size: int = 0, page_token: str = "",
    ) -> SessionPage:
        if page_size < 0 or page_size > MAX_PAGE:
            raise InvalidArgument(FieldViolation("page_size", f"must be within 0..{MAX_PAGE}"))
        limit = page_size or DEFAULT_PAGE
        after = _decode_token(page_token)
        stale_after = self.settings.heartbeat_stale_after

        def wanted(record: SessionRecord, now) -> bool:
            health = assess(record, now, stale_after)
            if effective_statuses and health.effective_status not in effective_statuses:
                return False
            return stale is None or health.stale == stale

        def work(tx: Tx) -> SessionPage:
            now = self.clock.now()
            found: list[SessionRecord] = []
            cursor = after
            # Effective status is computed, not stored: keep reading store pages
            # until this page is full or the table is exhausted.
            while len(found) < limit:
                batch = tx.list_sessions(statuses=statuses, vp_id_prefix=vp_id_prefix, after_vp_id=cursor,
                                         limit=limit + 1)
                for record in batch:
                    cursor = record.vp_id
                    if wanted(record, now):
                        found.append(record)
                        if len(found) == limit + 1:
                            break
                if len(batch) <= limit or len(found) > limit:
                    break
            more = len(found) > limit
            page = found[:limit]
            return SessionPage(page, _encode_token(page[-1].vp_id) if more and page else "")

        return await self.store.aread(work)

    async def sweep_once(self) -> SweepReport:
        report = await self.store.arun(lambda tx: sweep(tx, self.clock.now(), self.settings))
        metrics_hooks.leases_expired(report.degraded)
        try:
            await self.refresh_gauges()
        except Exception:  # noqa: BLE001 - gauges are best effort; the sweep itself committed
            log.warning("refreshing session gauges failed", exc_info=True)
        return report

    async def refresh_gauges(self) -> None:
        """vp_sessions and vp_sessions_orphaned from every session, by effective status."""
        sessions = await self.store.aread(lambda tx: tx.sessions_with_status(()))
        metrics_hooks.session_gauges(sessions, self.clock.now(), self.settings.heartbeat_stale_after)

    @staticmethod
    def _require(tx: Tx, vp_id: str, *, for_update: bool = True) -> SessionRecord:
        existing = tx.get_session(vp_id, for_update=for_update)
        if existing is None:
            raise SessionNotFound(vp_id)
        return existing


def _encode_token(vp_id: str) -> str:
    return base64.urlsafe_b64encode(vp_id.encode()).decode()


def _decode_token(token: str) -> str:
    if not token:
        return ""
    try:
        vp_id = base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        vp_id = ""
    if not vp_id:
        raise InvalidArgument(FieldViolation("page_token", "not a token from a previous response"))
    return vp_id
