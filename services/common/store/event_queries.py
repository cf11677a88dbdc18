"""The event log and the cursors its consumers keep in it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from services.common.store.records import EventRecord, NewEvent
from services.common.store.schema import vp_event_cursors, vp_events
from services.common.store.tx_base import TxBase, check_limit
from services.common.timeutil import require_utc

ev = vp_events
cur = vp_event_cursors

# Arbitrary constant naming the PostgreSQL advisory lock for event appends.
EVENT_APPEND_LOCK_KEY = 0x5650_4556_4E54  # "VPEVNT"


def _record(row: Row[Any]) -> EventRecord:
    return EventRecord(**row._mapping)


_INSERT_EVENT = insert(ev)


class EventQueries(TxBase):
    _event_lock_held = False
    _queued_events: list[dict[str, Any]] | None = None

    def queue_event(self, event: NewEvent) -> None:
        """Like append_event, but the event is written with the transaction's
        other queued events in one statement, before commit (or before the next
        event read or append of this transaction); its id is not returned."""
        self._require_write("queue_event")
        if self._queued_events is None:
            self._queued_events = []
        self._queued_events.append(self._event_values(event))

    def flush_events(self) -> None:
        """Write the queued events, in the order they were queued."""
        if not self._queued_events:
            return
        queued, self._queued_events = self._queued_events, None
        self._lock_event_order()
        self._execute(_INSERT_EVENT, queued)

    def order_with_event_writers(self) -> None:
        self._require_write("order_with_event_writers")
        self._lock_event_order()

    def _lock_event_order(self) -> None:
        if self._postgres and not self._event_lock_held:
            # Sequence values are handed out at INSERT but become visible at
            # COMMIT, so without this a transaction holding id 7 could commit
            # after one holding id 8; a consumer that already moved its cursor
            # to 8 would never see 7. Holding this lock from before nextval()
            # until commit makes event-writing transactions commit in id order.
            # The price is that they serialize with each other: keep them short.
            # SQLite needs nothing: BEGIN IMMEDIATE already serializes writers.
            self._execute(select(func.pg_advisory_xact_lock(EVENT_APPEND_LOCK_KEY)))
            self._event_lock_held = True

    @staticmethod
    def _event_values(event: NewEvent) -> dict[str, Any]:
        return {
            "mission_id": event.mission_id,
            "vp_id": event.vp_id,
            "event_type": event.event_type,
            "payload": dict(event.payload),
            "emitted_at": require_utc(event.emitted_at),
        }

    def append_event(self, event: NewEvent) -> EventRecord:
        """event_id strictly increases per store and ids become visible in
        commit order, so a reader polling after_id never skips one."""
        self._require_write("append_event")
        self.flush_events()
        self._lock_event_order()
        values = self._event_values(event)
        result = self._execute(insert(ev).values(values))
        return EventRecord(event_id=int(result.inserted_primary_key[0]), **values)

    def events_after(
        self,
        after_id: int,
        *,
        mission_id: str = "",
        vp_id: str = "",
        event_types: Sequence[str] = (),
        limit: int = 500,
    ) -> list[EventRecord]:
        """Events with event_id > after_id in id order; empty filters match all."""
        self.flush_events()
        query = select(ev).where(ev.c.event_id > after_id).order_by(ev.c.event_id).limit(check_limit(limit))
        if mission_id:
            query = query.where(ev.c.mission_id == mission_id)
        if vp_id:
            query = query.where(ev.c.vp_id == vp_id)
        if event_types:
            query = query.where(ev.c.event_type.in_(list(event_types)))
        return [_record(row) for row in self._execute(query)]

    def last_event_id(self) -> int:
        """The highest event_id, 0 when the log is empty."""
        self.flush_events()
        return int(self._execute(select(func.coalesce(func.max(ev.c.event_id), 0))).scalar_one())

    def get_cursor(self, consumer: str) -> int | None:
        return self._execute(select(cur.c.event_id).where(cur.c.consumer == consumer)).scalar_one_or_none()

    def set_cursor(self, consumer: str, event_id: int, updated_at: datetime) -> None:
        """Create or overwrite (also backwards, for replays) the consumer's cursor."""
        self._require_write("set_cursor")
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = dialect_insert(cur).values(consumer=consumer, event_id=event_id, updated_at=updated_at)
        statement = statement.on_conflict_do_update(
            index_elements=[cur.c.consumer],
            set_={"event_id": statement.excluded.event_id, "updated_at": statement.excluded.updated_at},
        )
        self._execute(statement)
