"""Mission rows: the queue, the lifecycle and the listing views.

A lane argument of "" means any lane; an empty states sequence means any state.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Row, Select, and_, bindparam, cast, func, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from services.common.errors import IdempotencyConflict, MissionNotFound
from services.common.states import MissionState
from services.common.store.records import MissionRecord
from services.common.store.schema import MISSION_AGENT_INTEGERS, MISSION_AGENT_TEXTS, vp_missions
from services.common.store.tx_base import TxBase, check_limit, require_set
from services.common.store.types import UTCDateTime

t = vp_missions
_LISTING_ORDER = (t.c.created_at, t.c.mission_id)
_QUEUE_ORDER = (t.c.priority.desc(), *_LISTING_ORDER)
_FIELDS = tuple(f.name for f in fields(MissionRecord))

# Built once: statement construction, not the database, is most of the cost of
# a small write, and these run several times per mission.
_INSERT_IF_NEW = {postgres: dialect.insert(t).on_conflict_do_nothing().returning(t.c.mission_id)
                  for postgres, dialect in ((True, postgresql), (False, sqlite))}
_UPDATE = update(t).where(t.c.mission_id == bindparam("b_mission_id")).values(
    {name: bindparam(name) for name in _FIELDS if name != "mission_id"})
_GET = select(t).where(t.c.mission_id == bindparam("b_mission_id"))
_GET_FOR_UPDATE = _GET.with_for_update()
_SET_RUN = update(t).where(t.c.mission_id == bindparam("b_mission_id")).values(
    run_id=bindparam("run_id"), deadline=bindparam("deadline"), queue_wait_seconds=bindparam("queue_wait_seconds"))


def _values(record: MissionRecord) -> dict[str, Any]:
    require_set(record, "created_at", "updated_at")
    # Shallow on purpose: dataclasses.asdict deep-copies the envelope on every write.
    values = {name: getattr(record, name) for name in _FIELDS}
    values["state"] = MissionState(record.state).value
    return values


def _record(row: Row[Any]) -> MissionRecord:
    values = dict(row._mapping)
    values["state"] = MissionState(values["state"])
    # Rows from before migration 0004_agent_protocol hold NULL in the agent protocol columns.
    for name in MISSION_AGENT_INTEGERS:
        values[name] = values.get(name) or 0
    for name in MISSION_AGENT_TEXTS:
        values[name] = values.get(name) or ""
    values["usage_cost_usd"] = values.get("usage_cost_usd") or 0.0
    values["question_choices"] = list(values.get("question_choices") or [])
    return MissionRecord(**values)


def _state_values(states: Sequence[MissionState]) -> list[str]:
    return [MissionState(s).value for s in states]


@functools.cache
def _claim_statement(postgres: bool, limit: int):
    """The claim, built once per (dialect, limit): see MissionQueries.claim_queued."""
    picked = (select(t.c.mission_id).where(t.c.lane == bindparam("b_lane"), t.c.state == MissionState.QUEUED.value)
              .order_by(*_QUEUE_ORDER).limit(limit))
    now = bindparam("b_now", type_=UTCDateTime)
    if postgres:
        picked = picked.with_for_update(skip_locked=True)
        waited = func.extract("epoch", now - t.c.updated_at)
    else:
        waited = (func.julianday(now) - func.julianday(t.c.updated_at)) * literal_column("86400.0")
    return (update(t).where(t.c.mission_id.in_(picked.scalar_subquery()))
            .values(state=MissionState.RUNNING.value, worker_owner=bindparam("b_owner"),
                    session_id=bindparam("b_session_id"), lease_epoch=bindparam("b_lease_epoch"), started_at=now,
                    updated_at=now, queue_wait_seconds=cast(waited, Float))
            .returning(*t.c))


class MissionQueries(TxBase):
    def get_mission(self, mission_id: str, *, for_update: bool = False) -> MissionRecord | None:
        if for_update:
            self._require_write("get_mission(for_update=True)")
        row = self._execute(_GET_FOR_UPDATE if for_update else _GET, {"b_mission_id": mission_id}).first()
        return None if row is None else _record(row)

    def get_mission_by_idempotency_key(self, key: str) -> MissionRecord | None:
        row = self._execute(select(t).where(t.c.idempotency_key == key)).first()
        return None if row is None else _record(row)

    def insert_mission(self, record: MissionRecord) -> None:
        """Raises IdempotencyConflict if the idempotency key or the mission_id is
        taken; the transaction stays usable (e.g. to load the mission holding it)."""
        self._require_write("insert_mission")
        # ON CONFLICT DO NOTHING instead of a savepoint around a failing INSERT:
        # a taken key is an empty RETURNING, not an error that would abort the
        # PostgreSQL transaction, and costs no SAVEPOINT/RELEASE round trips.
        inserted = self._execute(_INSERT_IF_NEW[self._postgres], _values(record)).first()
        if inserted is not None:
            return
        if record.idempotency_key:
            holder = self.get_mission_by_idempotency_key(record.idempotency_key)
            if holder is not None:
                raise IdempotencyConflict(
                    f"idempotency key {record.idempotency_key!r} is already used by another mission",
                    metadata={"idempotency_key": record.idempotency_key})
        raise IdempotencyConflict(f"mission {record.mission_id} already exists",
                                  metadata={"mission_id": record.mission_id})

    def update_mission(self, record: MissionRecord) -> None:
        """Writes every field; MissionNotFound if the mission has no row."""
        self._require_write("update_mission")
        values = _values(record)
        values["b_mission_id"] = values.pop("mission_id")
        result = self._execute(_UPDATE, values)
        if result.rowcount == 0:
            raise MissionNotFound(record.mission_id)

    def claim_queued(self, lane: str, limit: int, *, owner: str, session_id: str, lease_epoch: int,
                     now: datetime) -> list[MissionRecord]:
        """Move up to limit QUEUED missions of lane to RUNNING for one worker, in
        next_queued's order, with one statement: UPDATE ... RETURNING (and FOR
        UPDATE SKIP LOCKED on PostgreSQL, so concurrent claimers take different
        missions instead of waiting). Sets started_at = updated_at = now and
        queue_wait_seconds (now minus the time it was queued); the caller sets the
        attempt's run_id and deadline (set_runs)."""
        self._require_write("claim_queued")
        statement = _claim_statement(self._postgres, check_limit(limit))
        params = {"b_lane": lane, "b_owner": owner, "b_session_id": session_id, "b_lease_epoch": lease_epoch,
                  "b_now": now}
        claimed = [_record(row) for row in self._execute(statement, params)]
        # RETURNING has no order: restore the queue's.
        claimed.sort(key=lambda r: (-r.priority, r.created_at, r.mission_id))
        return claimed

    def set_runs(self, runs: Sequence[tuple[str, str, datetime | None, float | None]]) -> None:
        """(mission_id, run_id, deadline, queue_wait_seconds) of freshly claimed missions, in one executemany."""
        self._require_write("set_runs")
        if runs:
            self._execute(_SET_RUN, [{"b_mission_id": m, "run_id": r, "deadline": d, "queue_wait_seconds": w}
                                     for m, r, d, w in runs])

    def list_missions(
        self,
        *,
        vp_id: str = "",
        states: Sequence[MissionState] = (),
        source_session_id: str = "",
        after: tuple[datetime, str] | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[MissionRecord]:
        """Ordered by (created_at, mission_id), descending with newest_first;
        keyset pagination with after, the (created_at, mission_id) of the last
        mission of the previous page."""
        order = [c.desc() for c in _LISTING_ORDER] if newest_first else list(_LISTING_ORDER)
        query = select(t).order_by(*order).limit(check_limit(limit))
        if vp_id:
            query = query.where(t.c.vp_id == vp_id)
        if states:
            query = query.where(t.c.state.in_(_state_values(states)))
        if source_session_id:
            query = query.where(t.c.source_session_id == source_session_id)
        if after is not None:
            created_at, mission_id = after
            if newest_first:
                query = query.where(or_(t.c.created_at < created_at,
                                        and_(t.c.created_at == created_at, t.c.mission_id < mission_id)))
            else:
                query = query.where(or_(t.c.created_at > created_at,
                                        and_(t.c.created_at == created_at, t.c.mission_id > mission_id)))
        return self._records(query)

    def next_queued(self, lane: str, limit: int) -> list[MissionRecord]:
        """QUEUED missions of a lane, highest priority first, then oldest."""
        query = select(t).where(t.c.state == MissionState.QUEUED.value).order_by(*_QUEUE_ORDER).limit(check_limit(limit))
        return self._records(self._in_lane(query, lane))

    def count_missions(self, lane: str, states: Sequence[MissionState]) -> int:
        query = self._in_lane(select(func.count()).select_from(t), lane)
        if states:
            query = query.where(t.c.state.in_(_state_values(states)))
        return int(self._execute(query).scalar_one())

    def count_by_lane(self, states: Sequence[MissionState]) -> dict[str, dict[MissionState, int]]:
        query = (select(t.c.lane, t.c.state, func.count()).where(t.c.state.in_(_state_values(states)))
                 .group_by(t.c.lane, t.c.state))
        counts: dict[str, dict[MissionState, int]] = {}
        for lane, state, count in self._execute(query):
            counts.setdefault(lane, {})[MissionState(state)] = int(count)
        return counts

    def missions_in_states(self, states: Sequence[MissionState], *, lane: str = "") -> list[MissionRecord]:
        query = self._in_lane(select(t).order_by(*_LISTING_ORDER), lane)
        if states:
            query = query.where(t.c.state.in_(_state_values(states)))
        return self._records(query)

    def missions_past_deadline(self, now: datetime, states: Sequence[MissionState]) -> list[MissionRecord]:
        """Missions whose deadline is at or before now, earliest deadline first."""
        query = (
            select(t)
            .where(t.c.deadline.is_not(None), t.c.deadline <= now)
            .order_by(t.c.deadline, t.c.mission_id)
        )
        if states:
            query = query.where(t.c.state.in_(_state_values(states)))
        return self._records(query)

    def _records(self, query: Select[Any]) -> list[MissionRecord]:
        return [_record(row) for row in self._execute(query)]

    @staticmethod
    def _in_lane(query: Select[Any], lane: str) -> Select[Any]:
        return query.where(t.c.lane == lane) if lane else query
