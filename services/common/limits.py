"""Limits both ends of a connection must agree on, defined once. A worker
configured within its own limit but outside the dispatcher's (capacity 1024 vs
256) was refused at every hello and reconnected forever."""

from __future__ import annotations

from datetime import timedelta

#: Missions one worker stream may run at once (WorkerHello.capacity).
MAX_WORKER_CAPACITY = 256
#: Lease TTLs the registry grants (AcquireLease / RenewLease ttl, --lease-ttl).
MIN_LEASE_TTL = timedelta(seconds=1)
MAX_LEASE_TTL = timedelta(hours=1)
