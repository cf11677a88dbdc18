"""MissionControl operations: dispatch, read, wait, cancel, events, artifacts.
Plain async methods over DispatcherCore; the servicer only translates."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.common.contracts.vp.v1 import mission_pb2
from services.common.errors import (
    FieldViolation,
    IdempotencyConflict,
    InvalidArgument,
    MissionNotFound,
)
from services.common.states import MissionState
from services.common.telemetry import tracing
from services.common.timeutil import from_duration
from services.common.store.records import EventRecord, MissionRecord
from services.common.validation import check_mission_id, check_text
from services.dispatcher import envelope as envelopes
from services.dispatcher import quotas, transitions
from services.dispatcher.core import DispatcherCore
from services.dispatcher.agent_results import BudgetRaise
from services.dispatcher.routing import Decision, RoutingDecision, route_dict

M = MissionState
MAX_PAGE = 500
EVENT_BATCH = 500
# How often waiters re-read the store, to see changes made by another replica.
CROSS_REPLICA_POLL_S = 1.0


@dataclass(frozen=True)
class DispatchResult:
    mission: MissionRecord
    deduplicated: bool


class MissionsApi:
    def __init__(self, core: DispatcherCore) -> None:
        self.core = core
        self.store = core.store

    # --- dispatch ----------------------------------------------------------------
    async def dispatch(self, envelope: mission_pb2.MissionEnvelope) -> DispatchResult:
        now = self.core.clock.now()
        envelopes.validate(envelope, self.core.settings, now)
        digest = envelopes.canonical_hash(envelope)
        # No lookup first: the insert itself finds a replay (a taken idempotency
        # key or mission id), which is rare, and only then is the mission read.
        normal = envelopes.normalized(envelope, self.core.settings)
        if not normal.trace.traceparent:
            normal.trace.traceparent, normal.trace.tracestate = tracing.current_traceparent()
        full: frozenset[str] = frozenset()
        while True:
            with tracing.span("vp.route", attributes={"mission_id": normal.mission_id,
                                                      "vp_id": normal.vp_id}) as span:
                decision = await self.core.route(envelope.vp_id, normal.mission_type, full=full)
                span.set_attribute("route", decision.decision.value)
                span.set_attribute("lane", decision.lane)
            # Named by the caller, or chosen by an intent rule (decision.rule).
            normal.vp_id = decision.requested_vp_id
            lanes = (await self.core.flags.current()).lanes
            records = _records_for(normal, digest, decision, now)
            decisions = [decision, _shadow(decision)][:len(records)]
            try:
                mission, effects = await self.core.commits.run(
                    lambda tx: _dispatch_within_quota(tx, lanes, records, decisions, now))
                break
            except quotas.LaneFull as at_quota:
                if at_quota.lane in full:  # cannot happen: a full lane is routed away from
                    raise
                full |= {at_quota.lane}  # route again, treating that lane as over capacity
            except IdempotencyConflict:
                # Dispatched before (or an identical dispatch won the race): answer like a replay.
                existing = await self.store.aread(lambda tx: _find_existing(tx, envelope))
                if existing is None:
                    raise
                return _replay(existing, digest)
        self.core.apply(effects)
        return DispatchResult(mission, False)

    # --- reads -------------------------------------------------------------------
    async def get(self, mission_id: str) -> MissionRecord:
        _check_id(mission_id)
        record = await self.store.aread(lambda tx: tx.get_mission(mission_id))
        if record is None:
            raise MissionNotFound(mission_id)
        return record

    async def list(self, *, vp_id: str, states: Sequence[MissionState], source_session_id: str, page_size: int,
                   page_token: str, newest_first: bool = False) -> tuple[list[MissionRecord], str]:
        if not 0 <= page_size <= MAX_PAGE:
            raise InvalidArgument(FieldViolation("page_size", f"must be within 0..{MAX_PAGE}"))
        limit = page_size or 100
        after = _decode_token(page_token, newest_first)
        rows = await self.store.aread(lambda tx: tx.list_missions(
            vp_id=vp_id, states=states, source_session_id=source_session_id, after=after, limit=limit + 1,
            newest_first=newest_first))
        page = rows[:limit]
        token = _encode_token(page[-1], newest_first) if len(rows) > limit else ""
        return page, token

    async def wait(self, mission_id: str, timeout: timedelta) -> tuple[MissionRecord, bool]:
        timeout = min(timeout, self.core.settings.wait_cap)
        deadline = asyncio.get_running_loop().time() + timeout.total_seconds()
        record = await self.get(mission_id)
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            # BLOCKED waits for outside input: the caller has to act, so stop waiting.
            if record.state.terminal or record.state == M.BLOCKED:
                return record, False
            if remaining <= 0:
                return record, True
            # Woken with the committed record: answer from it. Timed out (or woken
            # without one): read again, the change may come from another replica.
            woken = await self.core.notifier.wait_mission(mission_id, min(remaining, CROSS_REPLICA_POLL_S))
            record = woken if woken is not None else await self.get(mission_id)

    # --- cancel --------------------------------------------------------------------
    async def cancel(self, mission_id: str, reason: str) -> MissionRecord:
        _check_id(mission_id)
        if violations := check_text(reason, "reason", max_len=1024, required=False):
            raise InvalidArgument(violations)
        reason = reason or "cancelled by caller"

        return await self.core.transact(
            lambda tx, _routes: transitions.cancel(tx, mission_id, reason, self.core.clock.now()))

    # --- resume (agent protocol v1 §9) ----------------------------------------------
    async def resume(self, mission_id: str, answer: str, budget: mission_pb2.Budget | None) -> MissionRecord:
        _check_id(mission_id)
        raise_ = _budget_raise(budget)
        return await self.core.transact(
            lambda tx, _routes: transitions.resume(tx, mission_id, answer, raise_, self.core.clock.now()))

    # --- events --------------------------------------------------------------------
    async def events(self, *, after_event_id: int, consumer: str, mission_id: str, vp_id: str,
                     event_types: Sequence[str], follow: bool) -> AsyncIterator[EventRecord]:
        if after_event_id < 0:
            raise InvalidArgument(FieldViolation("after_event_id", "must not be negative"))
        if consumer:
            _check_consumer(consumer)
            if after_event_id == 0:
                after_event_id = await self.store.aread(lambda tx: tx.get_cursor(consumer)) or 0
        cursor = after_event_id
        notifier = self.core.notifier
        while True:
            seen_version = notifier.event_version
            start = cursor
            batch = await self.store.aread(lambda tx: tx.events_after(
                start, mission_id=mission_id, vp_id=vp_id, event_types=event_types, limit=EVENT_BATCH))
            for record in batch:
                cursor = record.event_id
                yield record
            if len(batch) == EVENT_BATCH:
                continue
            if not follow:
                return
            await notifier.wait_events(seen_version, CROSS_REPLICA_POLL_S)

    async def commit_cursor(self, consumer: str, event_id: int) -> int:
        _check_consumer(consumer)
        if event_id < 0:
            raise InvalidArgument(FieldViolation("event_id", "must not be negative"))
        last = await self.store.aread(lambda tx: tx.last_event_id())
        if event_id > last:
            raise InvalidArgument(FieldViolation("event_id", f"beyond the last event ({last})"))
        await self.store.arun(lambda tx: tx.set_cursor(consumer, event_id, self.core.clock.now()))
        return event_id


def _dispatch_within_quota(tx, lanes, records, decisions, now):
    quotas.check(tx, lanes, records)
    return transitions.dispatch(tx, records, decisions, now)


def _check_id(mission_id: str) -> None:
    if violations := check_mission_id(mission_id):
        raise InvalidArgument(violations)


def _budget_raise(budget: mission_pb2.Budget | None) -> BudgetRaise:
    """The limits a ResumeMission sets; each must be positive (the rest is checked on the mission)."""
    if budget is None:
        return BudgetRaise()
    violations = []
    tokens = budget.max_tokens if budget.HasField("max_tokens") else None
    cost = budget.max_cost_usd if budget.HasField("max_cost_usd") else None
    if tokens is not None and tokens <= 0:
        violations.append(FieldViolation("budget.max_tokens", "must be > 0"))
    if cost is not None and not (cost > 0 and math.isfinite(cost)):
        violations.append(FieldViolation("budget.max_cost_usd", "must be a finite number > 0"))
    value = from_duration(budget.max_duration) if budget.HasField("max_duration") else None
    duration = value.total_seconds() if value is not None else None
    if violations:
        raise InvalidArgument(violations)
    return BudgetRaise(max_tokens=tokens, max_cost_usd=cost, max_duration_seconds=duration)


def _check_consumer(consumer: str) -> None:
    if violations := check_text(consumer, "consumer", max_len=128):
        raise InvalidArgument(violations)


def _find_existing(tx, envelope: mission_pb2.MissionEnvelope) -> MissionRecord | None:
    if envelope.idempotency_key:
        found = tx.get_mission_by_idempotency_key(envelope.idempotency_key)
        if found is not None:
            return found
    if envelope.mission_id:
        return tx.get_mission(envelope.mission_id)
    return None


def _replay(existing: MissionRecord, digest: str) -> DispatchResult:
    if existing.envelope_hash != digest:
        raise IdempotencyConflict(
            f"mission {existing.mission_id} was dispatched with this idempotency key or id and a different envelope",
            metadata={"mission_id": existing.mission_id, "idempotency_key": existing.idempotency_key or ""})
    return DispatchResult(existing, True)


def _records_for(envelope: mission_pb2.MissionEnvelope, digest: str, decision: RoutingDecision,
                 now: datetime) -> list[MissionRecord]:
    deadline = envelopes.from_timestamp(envelope.deadline) if envelope.HasField("deadline") else None
    max_duration = from_duration(envelope.budget.max_duration) if envelope.budget.HasField("max_duration") else None
    base = MissionRecord(
        mission_id=envelope.mission_id, vp_id=envelope.vp_id, mission_type=envelope.mission_type,
        objective=envelope.objective, state=M.QUEUED, envelope=envelopes.to_dict(envelope), lane=decision.lane,
        idempotency_key=envelope.idempotency_key or None, envelope_hash=digest, priority=envelope.priority,
        attempt=1, max_attempts=envelope.max_attempts, route=route_dict(decision, now),
        source_session_id=envelope.source.session_id, deadline=deadline, mission_deadline=deadline,
        max_duration_seconds=max_duration.total_seconds() if max_duration else None,
        created_at=now, updated_at=now,
    )
    if decision.decision != Decision.SHADOW or not decision.shadow_lane:
        return [base]
    shadow_envelope = mission_pb2.MissionEnvelope()
    shadow_envelope.CopyFrom(envelope)
    # Shadow ids stay within the 128-character id limit however long the original is.
    shadow_envelope.mission_id = f"{envelope.mission_id[:120]}.shadow"
    shadow_envelope.idempotency_key = ""
    # The copy is for comparison only: it must not write where the result of record goes.
    shadow_envelope.target_path = ""
    shadow_envelope.max_attempts = 1
    shadow = replace(base, mission_id=shadow_envelope.mission_id, envelope=envelopes.to_dict(shadow_envelope),
                     lane=decision.shadow_lane, idempotency_key=None, max_attempts=1,
                     shadow_of_mission_id=envelope.mission_id,
                     route=route_dict(_shadow(decision), now), shadow={})
    return [base, shadow]


def _shadow(decision: RoutingDecision) -> RoutingDecision:
    """The routing record of a shadow copy: delegated to the VP lane, for comparison only."""
    return replace(decision, decision=Decision.DELEGATED, lane=decision.shadow_lane or decision.lane, reason=None,
                   fallback_target=None, provenance=f"shadow copy on {decision.shadow_lane}")


def _encode_token(record: MissionRecord, newest_first: bool) -> str:
    position = [record.created_at.isoformat(), record.mission_id]
    raw = json.dumps([*position, "desc"] if newest_first else position)
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_token(token: str, newest_first: bool):
    """The keyset position in a page token; a token of the other order is refused
    (it would silently skip or repeat missions)."""
    if not token:
        return None
    try:
        fields = json.loads(base64.b64decode(token.encode(), altchars=b"-_", validate=True))
        created, mission_id = fields[:2]
        descending = fields[2:] == ["desc"]
        position = datetime.fromisoformat(created), mission_id
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidArgument(FieldViolation("page_token", "not a token from a previous response")) from None
    if descending != newest_first or len(fields) > 3:
        raise InvalidArgument(FieldViolation("page_token", "from a listing in another order"))
    return position
