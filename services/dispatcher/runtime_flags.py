"""Routing flags at runtime: stored, shared by every replica, changed by operators.

The environment (VP_LANE_*, the seeds' UA_* names, VP_ROUTING_KILL_SWITCH)
seeds the store once, at the first start on a database; from then on the store
is the truth and SetRoutingFlags (vpctl flags set) changes it. Each replica
re-reads the rows at most REFRESH after its last read, so a change made on one
replica routes on all of them within a second, PostgreSQL included. Every change
is audited as a vp.flags.changed event written in the same transaction.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta

from services.common.clock import Clock
from services.common.errors import FieldViolation, InvalidArgument
from services.common.store.interface import Store, Tx
from services.common.store.records import GLOBAL_SCOPE, FlagsRecord, NewEvent
from services.dispatcher.routing import LaneConfig, LaneFlags, RoutingFlags

REFRESH = timedelta(milliseconds=500)
AUDIT_EVENT = "vp.flags.changed"
SEEDED_BY = "env"
LANE_FIELDS = ("enabled", "shadow", "force_fallback", "max_in_flight", "max_queue_depth")
MAX_QUOTA = 1_000_000
#: A quota set to this returns to the configured default.
DEFAULT_QUOTA = -1


@dataclass(frozen=True)
class FlagsChange:
    """What an operator asks to change; None leaves a field as it is."""

    vp_id: str = ""
    kill_switch: bool | None = None
    enabled: bool | None = None
    shadow: bool | None = None
    force_fallback: bool | None = None
    max_in_flight: int | None = None
    max_queue_depth: int | None = None
    reason: str = ""
    actor: str = ""


@dataclass(frozen=True)
class FlagsSnapshot:
    """One consistent view: what routing decides with."""

    flags: RoutingFlags
    # The configured lanes with their effective quotas.
    lanes: dict[str, LaneConfig]
    rows: dict[str, FlagsRecord]
    read_at: datetime


def seed_rows(configured: dict[str, LaneConfig], env_flags: RoutingFlags, now: datetime) -> list[FlagsRecord]:
    """The rows the environment gives at first start. Quotas stay unset: the
    configured limits (--lane-max-*) apply until an operator sets one."""
    rows = [FlagsRecord(GLOBAL_SCOPE, kill_switch=env_flags.kill_switch, updated_at=now, updated_by=SEEDED_BY)]
    for vp_id in sorted(configured):
        lane = env_flags.for_lane(vp_id)
        rows.append(FlagsRecord(vp_id, enabled=lane.enabled, shadow=lane.shadow, force_fallback=lane.force_fallback,
                                updated_at=now, updated_by=SEEDED_BY))
    return rows


def snapshot_of(rows: list[FlagsRecord], configured: dict[str, LaneConfig], now: datetime) -> FlagsSnapshot:
    by_scope = {row.scope: row for row in rows}
    glob = by_scope.get(GLOBAL_SCOPE)
    lane_flags, lanes = {}, {}
    for vp_id, cfg in configured.items():
        row = by_scope.get(vp_id)
        if row is None:
            lane_flags[vp_id], lanes[vp_id] = LaneFlags(), cfg
            continue
        lane_flags[vp_id] = LaneFlags(enabled=row.enabled, shadow=row.shadow, force_fallback=row.force_fallback)
        lanes[vp_id] = replace(
            cfg,
            max_in_flight=cfg.max_in_flight if row.max_in_flight is None else row.max_in_flight,
            max_queue_depth=cfg.max_queue_depth if row.max_queue_depth is None else row.max_queue_depth)
    flags = RoutingFlags(kill_switch=bool(glob and glob.kill_switch), lanes=lane_flags, default=LaneFlags())
    return FlagsSnapshot(flags=flags, lanes=lanes, rows=by_scope, read_at=now)


def validate_change(change: FlagsChange, configured: dict[str, LaneConfig]) -> None:
    violations = []
    lane_values = {name: getattr(change, name) for name in LANE_FIELDS}
    if change.vp_id:
        if change.vp_id not in configured:
            raise InvalidArgument(FieldViolation("vp_id", f"not a configured lane; lanes: {', '.join(sorted(configured))}"),
                                  reason="UNKNOWN_VP")
        if change.kill_switch is not None:
            violations.append(FieldViolation("kill_switch", "is global: set it with an empty vp_id"))
        if all(value is None for value in lane_values.values()):
            violations.append(FieldViolation("vp_id", "nothing to change: set enabled, shadow, force_fallback or a quota"))
    else:
        if change.kill_switch is None:
            violations.append(FieldViolation("kill_switch", "required when vp_id is empty"))
        for name, value in lane_values.items():
            if value is not None:
                violations.append(FieldViolation(name, "belongs to a lane: set vp_id"))
    for name in ("max_in_flight", "max_queue_depth"):
        value = getattr(change, name)
        if value is not None and not DEFAULT_QUOTA <= value <= MAX_QUOTA:
            violations.append(FieldViolation(name, f"must be within {DEFAULT_QUOTA}..{MAX_QUOTA} (-1: the default)"))
    if not change.reason.strip():
        violations.append(FieldViolation("reason", "required: the audit event records why"))
    elif len(change.reason.encode()) > 1024:
        violations.append(FieldViolation("reason", "at most 1024 bytes"))
    if len(change.actor.encode()) > 256:
        violations.append(FieldViolation("actor", "at most 256 bytes"))
    if violations:
        raise InvalidArgument(violations)


def apply_change(tx: Tx, change: FlagsChange, now: datetime) -> tuple[FlagsRecord, int]:
    """Inside a write transaction: store the change and its audit event; returns
    (the stored row, the event id)."""
    scope = change.vp_id or GLOBAL_SCOPE
    before = tx.get_routing_flags(scope, for_update=True) or FlagsRecord(scope, updated_at=now)
    after = before
    for name in ("kill_switch", *LANE_FIELDS):
        value = getattr(change, name)
        if value is None:
            continue
        if name.startswith("max_") and value == DEFAULT_QUOTA:
            value = None
        after = replace(after, **{name: value})
    diff = {f.name: {"before": getattr(before, f.name), "after": getattr(after, f.name)}
            for f in fields(FlagsRecord) if f.name in ("kill_switch", *LANE_FIELDS)
            and getattr(before, f.name) != getattr(after, f.name)}
    stored = tx.put_routing_flags(replace(after, updated_at=now, updated_by=change.actor or "operator"))
    event = tx.append_event(NewEvent(
        event_type=AUDIT_EVENT, vp_id=change.vp_id, emitted_at=now,
        payload={"scope": scope, "changes": diff, "reason": change.reason, "actor": stored.updated_by,
                 "version": stored.version}))
    return stored, event.event_id


def _seed_and_read(tx: Tx, seed: list[FlagsRecord]) -> list[FlagsRecord]:
    tx.seed_routing_flags(seed)
    return tx.routing_flags()


class FlagsView:
    """This replica's view of the stored flags, at most REFRESH old."""

    def __init__(self, store: Store, clock: Clock, configured: dict[str, LaneConfig], env_flags: RoutingFlags) -> None:
        self.store = store
        self.clock = clock
        self.configured = configured
        self.env_flags = env_flags
        self._snapshot: FlagsSnapshot | None = None
        self._lock = asyncio.Lock()

    def _fresh(self, now: datetime) -> bool:
        snap = self._snapshot
        return snap is not None and snap.read_at <= now < snap.read_at + REFRESH

    async def current(self) -> FlagsSnapshot:
        if self._fresh(self.clock.now()):
            return self._snapshot  # type: ignore[return-value]
        async with self._lock:
            now = self.clock.now()
            if self._fresh(now):
                return self._snapshot  # type: ignore[return-value]
            if self._snapshot is None:
                seed = seed_rows(self.configured, self.env_flags, now)
                rows = await self.store.arun(lambda tx: _seed_and_read(tx, seed))
            else:
                rows = await self.store.aread(lambda tx: tx.routing_flags())
            self._snapshot = snapshot_of(rows, self.configured, now)
            return self._snapshot

    async def change(self, change: FlagsChange) -> tuple[FlagsSnapshot, int]:
        validate_change(change, self.configured)
        await self.current()  # seeded before the first change
        now = self.clock.now()
        _, event_id = await self.store.arun(lambda tx: apply_change(tx, change, now))
        self._snapshot = None if self._snapshot is None else replace(self._snapshot, read_at=now - REFRESH)
        return await self.current(), event_id
