"""Lane health while the registry is unreachable.

A registry restart of a few seconds used to make every lane unhealthy at once,
so dispatches to lanes whose workers were connected and heartbeating fell back
to the caller. During such a blip a lane keeps the view the registry last gave
(healthy, with the same lease owner and epoch) while its worker's stream is
open, heartbeating, and its lease, as last renewed, has not expired: that is at
most one lease TTL after the last renewal the registry confirmed. Past that the
stream's lease has lapsed (liveness.py ends it) and the lane is unhealthy as
before; nothing here extends a lease."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from services.dispatcher.registry_port import LeaseView
from services.dispatcher.worker_hub import WorkerHub


def bridged(health: Mapping[str, LeaseView], last_known: Mapping[str, LeaseView] | None, hub: WorkerHub,
            now: datetime, heartbeat_interval: timedelta) -> dict[str, LeaseView]:
    """health as read, plus the last known healthy view of every lane whose
    worker is demonstrably still there while the registry cannot be read
    (last_known is None while the registry answers)."""
    views = dict(health)
    if last_known is None:
        return views
    for lane, connection in hub.connections.items():
        known = last_known.get(lane)
        if lane in views or known is None or not known.healthy:
            continue
        same_term = known.lease_owner == connection.owner and known.lease_epoch == connection.lease_epoch
        beating = connection.last_heartbeat_at is not None and \
            now - connection.last_heartbeat_at <= heartbeat_interval * 2
        if same_term and beating and not connection.closed and not connection.draining and not connection.expired(now):
            views[lane] = known
    return views
