"""Connected workers and the push of work to them.

One stream per lane (a lane is one vp_id, leased by one worker at a time). An
assignment is pushed the moment a queued mission and free capacity meet: on
dispatch, when a result frees a slot, and when a worker says hello. There is no
polling loop on this path."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.common.contracts.vp.v1 import worker_channel_service_pb2 as wc_pb
from services.common.errors import VpError

log = logging.getLogger(__name__)


@dataclass
class WorkerConnection:
    vp_id: str
    owner: str
    session_id: str
    lease_epoch: int
    capacity: int
    workspace_dir: str = ""
    lease_ttl: timedelta = timedelta(seconds=30)
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    # mission_id -> attempt of the runs this worker holds.
    running: dict[str, int] = field(default_factory=dict)
    draining: bool = False
    closed: bool = False
    # Last set of missions the worker itself reported running, and when.
    reported: set[str] = field(default_factory=set)
    reported_at: datetime | None = None
    assigned_at: dict[str, datetime] = field(default_factory=dict)
    pump_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pump_again: bool = False
    progress_seq: dict[str, int] = field(default_factory=dict)
    # Progress lines received and not yet handed to a group commit, and that commit.
    progress_lines: list = field(default_factory=list)
    progress_flush: asyncio.Future | None = None
    # (mission_id, attempt) this stream's worker handed back: nothing more from those runs counts.
    handed_back: set[tuple[str, int]] = field(default_factory=set)
    # The lease as last renewed for this stream (hello, then each heartbeat), and when a heartbeat came.
    lease_expires_at: datetime | None = None
    last_heartbeat_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        """No heartbeat renewed the lease for a whole TTL (liveness.py)."""
        return self.lease_expires_at is not None and now >= self.lease_expires_at

    @property
    def free(self) -> int:
        return 0 if self.draining or self.closed else max(0, self.capacity - len(self.running))

    def send(self, message: wc_pb.ConnectResponse) -> None:
        if not self.closed:
            self.outbox.put_nowait(message)

    def end(self, error: VpError | None = None) -> None:
        """Close the stream; with an error the worker sees that status (e.g. LEASE_SUPERSEDED)."""
        if not self.closed:
            self.closed = True
            self.outbox.put_nowait(error if error is not None else None)


class WorkerHub:
    def __init__(self) -> None:
        self.connections: dict[str, WorkerConnection] = {}

    def attach(self, connection: WorkerConnection) -> WorkerConnection | None:
        """Make connection the lane's stream; returns the one it replaced."""
        previous = self.connections.get(connection.vp_id)
        self.connections[connection.vp_id] = connection
        return previous

    def detach(self, connection: WorkerConnection) -> None:
        if self.connections.get(connection.vp_id) is connection:
            del self.connections[connection.vp_id]
        connection.closed = True

    def current(self, vp_id: str, owner: str = "", lease_epoch: int = 0) -> WorkerConnection | None:
        connection = self.connections.get(vp_id)
        if connection is None or connection.closed:
            return None
        if owner and (connection.owner != owner or connection.lease_epoch != lease_epoch):
            return None
        return connection

    def in_flight(self, vp_id: str) -> int:
        connection = self.connections.get(vp_id)
        return len(connection.running) if connection else 0
