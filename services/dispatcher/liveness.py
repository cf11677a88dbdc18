"""A connected stream is not proof of a live worker: a worker frozen (SIGSTOP,
a stalled VM) keeps its TCP connection open and sends nothing. Its lease, renewed
only by its heartbeats, runs out; from then on the stream is treated as lost:

* ``silent_streams`` names every connection whose last renewed lease expiry
  (``lease_expires_at``, from the hello or the last successful renewal) has
  passed on the dispatcher's clock, i.e. no heartbeat renewed it for a whole
  TTL;
* ``end_silent_streams`` ends them with FAILED_PRECONDITION / LEASE_SUPERSEDED
  (the term is over for this dispatcher: an expired epoch is never renewed
  again) and detaches them, so the same supervision pass recovers their runs
  like those of a dropped stream.

A heartbeat that arrives on a stream whose lease already expired is not
renewed either: the stream ends the same way (worker_protocol.heartbeat)."""

from __future__ import annotations

import logging
from datetime import datetime

from services.common.errors import LeaseSuperseded
from services.dispatcher.worker_hub import WorkerConnection, WorkerHub

log = logging.getLogger(__name__)


def silent_streams(hub: WorkerHub, now: datetime) -> list[WorkerConnection]:
    return [c for c in hub.connections.values() if not c.closed and c.expired(now)]


def expired_error(connection: WorkerConnection) -> LeaseSuperseded:
    return LeaseSuperseded(
        f"lease epoch {connection.lease_epoch} on {connection.vp_id!r} expired without a renewing heartbeat; "
        "the term is not renewed again",
        metadata={"current_epoch": str(connection.lease_epoch), "current_owner": connection.owner,
                  "expired": "true"})


def end_expired(hub: WorkerHub, connection: WorkerConnection, now: datetime) -> None:
    silence = (now - connection.last_heartbeat_at).total_seconds() if connection.last_heartbeat_at else -1.0
    log.warning("worker %s (epoch %d) renewed nothing for %.1fs; its lease expired at %s: ending the stream, "
                "its runs are recovered", connection.owner, connection.lease_epoch, silence,
                connection.lease_expires_at.isoformat() if connection.lease_expires_at else "?",
                extra={"vp_id": connection.vp_id, "lease_epoch": connection.lease_epoch})
    connection.end(expired_error(connection))
    hub.detach(connection)


def end_silent_streams(hub: WorkerHub, now: datetime) -> int:
    silent = silent_streams(hub, now)
    for connection in silent:
        end_expired(hub, connection, now)
    return len(silent)
