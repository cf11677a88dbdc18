"""Runtime routing flags: read by every dispatcher replica, changed by operators."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from services.common.store.records import FlagsRecord
from services.common.store.schema import vp_routing_flags
from services.common.store.tx_base import TxBase, require_set

f = vp_routing_flags


def _record(row: Row[Any]) -> FlagsRecord:
    return FlagsRecord(**row._mapping)


class FlagQueries(TxBase):
    def routing_flags(self) -> list[FlagsRecord]:
        """Every row, ordered by scope."""
        return [_record(row) for row in self._execute(select(f).order_by(f.c.scope))]

    def get_routing_flags(self, scope: str, *, for_update: bool = False) -> FlagsRecord | None:
        """One row; for_update locks it until commit (PostgreSQL; SQLite's writers
        are serialized anyway), which is how a dispatch counts a lane's load
        against its quota without another dispatch slipping in between."""
        query = select(f).where(f.c.scope == scope)
        if for_update and self._postgres:
            query = query.with_for_update()
        row = self._execute(query).first()
        return _record(row) if row is not None else None

    def seed_routing_flags(self, records: Sequence[FlagsRecord]) -> list[str]:
        """Insert the rows whose scope has none yet (first start); existing rows,
        changed at runtime, win. Returns the scopes inserted."""
        self._require_write("seed_routing_flags")
        inserted = []
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        for record in records:
            require_set(record, "updated_at")
            statement = dialect_insert(f).values(asdict(replace(record, version=1))).on_conflict_do_nothing(
                index_elements=[f.c.scope]).returning(f.c.scope)
            if self._execute(statement).first() is not None:
                inserted.append(record.scope)
        return inserted

    def put_routing_flags(self, record: FlagsRecord) -> FlagsRecord:
        """Create or overwrite a row; its version becomes one more than before."""
        self._require_write("put_routing_flags")
        require_set(record, "updated_at")
        current = self.get_routing_flags(record.scope, for_update=True)
        stored = replace(record, version=(current.version if current else 0) + 1)
        values = asdict(stored)
        if current is None:
            self._execute(insert(f).values(values))
        else:
            self._execute(update(f).where(f.c.scope == record.scope).values(values))
        return stored
