"""Hard per-lane quotas, checked inside the dispatch transaction.

Routing reads lane load through a one-second cache, so on its own it lets a
burst overshoot a quota (four missions queued on a lane limited to two). The
dispatch transaction therefore counts the lane's load again and refuses to queue
past its quota. On PostgreSQL it first takes the lock that orders event-writing
transactions (held to commit), so two replicas dispatching to one lane count one
after the other. It used to lock each lane's routing-flags row instead: a group
commit checks several dispatches in submission order, so two replicas locked two
lanes' rows in opposite orders and deadlocked under load. SQLite serializes
writers anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.common.states import MissionState
from services.common.store.interface import Tx
from services.common.store.records import MissionRecord
from services.dispatcher.routing import LaneConfig
from services.dispatcher.routing.policy import over_capacity


class LaneFull(Exception):
    """The lane reached its quota between routing and the transaction."""

    def __init__(self, lane: str) -> None:
        super().__init__(f"lane {lane} is at its quota")
        self.lane = lane


def check(tx: Tx, lanes: Mapping[str, LaneConfig], records: Sequence[MissionRecord]) -> None:
    """Raise LaneFull for the first lane a new record would queue on past its quota."""
    lanes_touched = sorted({record.lane for record in records if record.lane in lanes})
    if lanes_touched:
        tx.order_with_event_writers()
    for lane in lanes_touched:
        in_flight = tx.count_missions(lane, [MissionState.RUNNING])
        if in_flight < lanes[lane].max_in_flight:
            continue  # a lane with free run slots takes work whatever its queue (and the queue is not counted)
        queued = tx.count_missions(lane, [MissionState.QUEUED])
        if over_capacity(lanes[lane], in_flight, queued):
            raise LaneFull(lane)
