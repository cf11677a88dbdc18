"""The one store interface the services call.

Usage: ``store.run(fn)`` runs ``fn(tx)`` in one write transaction and returns
its result; transient lock/serialization conflicts are retried with backoff
and, if they persist, surface as errors.StoreBusy (UNAVAILABLE, retryable).
``store.read(fn)`` does the same for read-only work. Both are synchronous;
asyncio services call them through ``await store.arun(fn)`` / ``store.aread``,
which run on a dedicated thread pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from services.common.states import MissionState, SessionStatus
from services.common.store.records import EventRecord, FlagsRecord, MissionRecord, NewEvent, SessionRecord

T = TypeVar("T")


class Tx(Protocol):
    # --- sessions ---------------------------------------------------------
    def get_session(self, vp_id: str, *, for_update: bool = False) -> SessionRecord | None: ...
    def insert_session(self, record: SessionRecord) -> None: ...
    def update_session(self, record: SessionRecord) -> None: ...
    def list_sessions(
        self,
        *,
        statuses: Sequence[SessionStatus] = (),
        vp_id_prefix: str = "",
        after_vp_id: str = "",
        limit: int = 100,
    ) -> list[SessionRecord]:
        """Ordered by vp_id; keyset pagination with after_vp_id."""
        ...

    def sessions_with_status(self, statuses: Sequence[SessionStatus]) -> list[SessionRecord]: ...

    # --- missions ---------------------------------------------------------
    def get_mission(self, mission_id: str, *, for_update: bool = False) -> MissionRecord | None: ...
    def get_mission_by_idempotency_key(self, key: str) -> MissionRecord | None: ...
    def insert_mission(self, record: MissionRecord) -> None:
        """Raises errors.IdempotencyConflict if the idempotency key or the mission_id is taken."""
        ...

    def update_mission(self, record: MissionRecord) -> None: ...
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
        """Ordered by (created_at, mission_id) (descending with newest_first);
        keyset pagination with after."""
        ...

    def next_queued(self, lane: str, limit: int) -> list[MissionRecord]:
        """QUEUED missions of a lane, highest priority first, then oldest."""
        ...

    def claim_queued(self, lane: str, limit: int, *, owner: str, session_id: str, lease_epoch: int,
                     now: datetime) -> list[MissionRecord]:
        """Up to limit QUEUED missions of lane, in next_queued's order, moved to
        RUNNING for this worker in one statement (started_at = updated_at = now,
        queue_wait_seconds set); concurrent claimers never take the same mission."""
        ...

    def set_runs(self, runs: Sequence[tuple[str, str, datetime | None, float | None]]) -> None:
        """(mission_id, run_id, deadline, queue_wait_seconds) of claimed missions."""
        ...

    def count_missions(self, lane: str, states: Sequence[MissionState]) -> int: ...
    def count_by_lane(self, states: Sequence[MissionState]) -> dict[str, dict[MissionState, int]]:
        """Per lane, how many missions are in each of states (one grouped query)."""
        ...

    def missions_in_states(self, states: Sequence[MissionState], *, lane: str = "") -> list[MissionRecord]: ...
    def missions_past_deadline(self, now: datetime, states: Sequence[MissionState]) -> list[MissionRecord]: ...

    # --- events -----------------------------------------------------------
    def append_event(self, event: NewEvent) -> EventRecord:
        """event_id strictly increases per store and ids become visible in
        commit order, so a reader polling after_id never skips one."""
        ...

    def queue_event(self, event: NewEvent) -> None:
        """append_event without the id: queued events are written together, in
        order, before the transaction commits (or before its next event read)."""
        ...

    def order_with_event_writers(self) -> None:
        """Take, now, the lock that event-writing transactions hold until commit
        (PostgreSQL; SQLite serializes writers already). A check that must see
        every committed write of its kind (a lane quota) takes it before it reads,
        and takes no other lock first: one lock, one order, so no deadlock."""
        ...

    def events_after(
        self,
        after_id: int,
        *,
        mission_id: str = "",
        vp_id: str = "",
        event_types: Sequence[str] = (),
        limit: int = 500,
    ) -> list[EventRecord]: ...

    def last_event_id(self) -> int: ...

    # --- consumer cursors -------------------------------------------------
    def get_cursor(self, consumer: str) -> int | None: ...
    def set_cursor(self, consumer: str, event_id: int, updated_at: datetime) -> None: ...

    # --- routing flags ----------------------------------------------------
    def routing_flags(self) -> list[FlagsRecord]:
        """Every row (lanes and the global "*" row), ordered by scope."""
        ...

    def get_routing_flags(self, scope: str, *, for_update: bool = False) -> FlagsRecord | None:
        """for_update: the row stays locked until commit (quota checks)."""
        ...

    def seed_routing_flags(self, records: Sequence[FlagsRecord]) -> list[str]:
        """Insert rows for scopes that have none; returns the scopes inserted."""
        ...

    def put_routing_flags(self, record: FlagsRecord) -> FlagsRecord:
        """Create or overwrite; returns the row stored (version incremented)."""
        ...


class Store(Protocol):
    url: str

    def run(self, fn: Callable[[Tx], T]) -> T: ...
    def read(self, fn: Callable[[Tx], T]) -> T: ...
    async def arun(self, fn: Callable[[Tx], T]) -> T: ...
    async def aread(self, fn: Callable[[Tx], T]) -> T: ...
    def close(self) -> None: ...
