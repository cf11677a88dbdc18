"""Session rows: one per vp_id, holding the lease and status of a VP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import Row, func, insert, select, update

from services.common.errors import SessionNotFound
from services.common.states import SessionStatus
from services.common.store.records import SessionRecord
from services.common.store.schema import vp_sessions
from services.common.store.tx_base import TxBase, check_limit, require_set

t = vp_sessions


def _values(record: SessionRecord) -> dict[str, Any]:
    require_set(record, "created_at", "updated_at")
    values = asdict(record)
    values["status"] = SessionStatus(record.status).value
    return values


def _record(row: Row[Any]) -> SessionRecord:
    values = dict(row._mapping)
    values["status"] = SessionStatus(values["status"])
    for key in ("conversation_agent", "conversation_id", "conversation_mission_id"):
        values[key] = values.get(key) or ""
    return SessionRecord(**values)


class SessionQueries(TxBase):
    def get_session(self, vp_id: str, *, for_update: bool = False) -> SessionRecord | None:
        query = select(t).where(t.c.vp_id == vp_id)
        if for_update:
            self._require_write("get_session(for_update=True)")
            query = query.with_for_update()
        row = self._execute(query).first()
        return None if row is None else _record(row)

    def insert_session(self, record: SessionRecord) -> None:
        self._require_write("insert_session")
        self._execute(insert(t).values(_values(record)))

    def update_session(self, record: SessionRecord) -> None:
        """Writes every field; SessionNotFound if the vp_id has no row."""
        self._require_write("update_session")
        values = _values(record)
        del values["vp_id"]
        result = self._execute(update(t).where(t.c.vp_id == record.vp_id).values(values))
        if result.rowcount == 0:
            raise SessionNotFound(record.vp_id)

    def list_sessions(
        self,
        *,
        statuses: Sequence[SessionStatus] = (),
        vp_id_prefix: str = "",
        after_vp_id: str = "",
        limit: int = 100,
    ) -> list[SessionRecord]:
        """Ordered by vp_id; keyset pagination with after_vp_id."""
        query = select(t).order_by(t.c.vp_id).limit(check_limit(limit))
        if statuses:
            query = query.where(t.c.status.in_([SessionStatus(s).value for s in statuses]))
        if vp_id_prefix:
            # substr, not LIKE: LIKE is case-insensitive on SQLite and treats
            # % and _ in the prefix as wildcards.
            query = query.where(func.substr(t.c.vp_id, 1, len(vp_id_prefix)) == vp_id_prefix)
        if after_vp_id:
            query = query.where(t.c.vp_id > after_vp_id)
        return [_record(row) for row in self._execute(query)]

    def sessions_with_status(self, statuses: Sequence[SessionStatus]) -> list[SessionRecord]:
        """Every session in one of statuses (all sessions if empty), by vp_id."""
        query = select(t).order_by(t.c.vp_id)
        if statuses:
            query = query.where(t.c.status.in_([SessionStatus(s).value for s in statuses]))
        return [_record(row) for row in self._execute(query)]
