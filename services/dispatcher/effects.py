"""What a committed transaction asks of the process: wake waiters, refill lanes,
push cancels, free worker slots, count metrics. Transition functions fill an
Effects inside the transaction; DispatcherCore.apply acts on it after commit,
so a transaction the store retries never acts twice."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.common.states import MissionState
from services.common.store.records import MissionRecord


@dataclass
class Effects:
    # Missions that reached a terminal state or BLOCKED: wake their waiters, count them.
    terminal: list[MissionRecord] = field(default_factory=list)
    # Lanes that gained queued work: pump them.
    queued_lanes: set[str] = field(default_factory=set)
    # (mission as stored, final state) whose worker must be told to stop.
    cancels: list[tuple[MissionRecord, MissionState]] = field(default_factory=list)
    # Missions (as they were while RUNNING) whose worker slot is free again.
    freed: list[MissionRecord] = field(default_factory=list)
    # (requested lane, route decision) of each mission accepted.
    dispatched: list[tuple[str, str]] = field(default_factory=list)
    # (lane that fell back, reason) of each vp.mission.fallback emitted.
    fallbacks: list[tuple[str, str]] = field(default_factory=list)
    # (lane the mission left, reason) of each re-queue.
    requeues: list[tuple[str, str]] = field(default_factory=list)
    # Whether any event was appended (followed event streams wake up).
    events: bool = False
    # (lane, agent report) of each accepted result that reported usage (agent protocol v1).
    usage: list[tuple[str, Any]] = field(default_factory=list)

    def merge(self, other: Effects) -> None:
        self.terminal += other.terminal
        self.queued_lanes |= other.queued_lanes
        self.cancels += other.cancels
        self.freed += other.freed
        self.dispatched += other.dispatched
        self.fallbacks += other.fallbacks
        self.requeues += other.requeues
        self.events = self.events or other.events
        self.usage += other.usage
