"""How long a worker may still act on its lease term (registry spec, section 6.7).

The worker trusts its term only up to ``trusted_until``, on its own monotonic
clock:

    trusted_until = attempt_started + granted_ttl - safety_margin(granted_ttl)

``attempt_started`` is when the worker sent the request whose renewal it saw
succeed: an AcquireLease or RenewLease it made itself, or the WorkerHeartbeat
that a dispatcher's LeaseRenewed confirms (matched by heartbeat seq). Anchoring
to the send, and using only the granted duration, makes a slow answer and any
offset between host clocks irrelevant. ``safety_margin`` covers clock drift
(rate differences between the registry's and the worker's clocks) and the time
the worker needs to notice: max(1 s, granted_ttl / 5), never more than half the
TTL. Once ``trusted_until`` passes with no newer confirmation, the worker stops
every run, reports nothing more under the term and acquires a new one.

The clock is injected (a callable returning seconds), so the arithmetic is
tested by moving a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

MIN_SAFETY_MARGIN = 1.0
SAFETY_MARGIN_FRACTION = 0.2

Monotonic = Callable[[], float]


def granted_ttl(session) -> float:
    """The TTL a renewal or acquire granted: lease_expires_at - last_heartbeat_at
    of the session it returned (both set from the registry's one ``now``)."""
    if not session.HasField("lease_expires_at") or not session.HasField("last_heartbeat_at"):
        return 0.0
    delta = session.lease_expires_at.ToDatetime() - session.last_heartbeat_at.ToDatetime()
    return max(0.0, delta.total_seconds())


def safety_margin(granted_ttl: float) -> float:
    return min(max(MIN_SAFETY_MARGIN, granted_ttl * SAFETY_MARGIN_FRACTION), granted_ttl / 2)


class TrustWindow:
    def __init__(self, now: Monotonic = time.monotonic) -> None:
        self.now = now
        self.trusted_until: float | None = None
        #: attempt_started + granted_ttl of the newest confirmation: the lease
        #: expiry as far as this worker knows (the watchdog's deadline).
        self.lease_ends: float | None = None
        self.confirmations = 0
        #: Called with the seconds until lease_ends whenever a confirmation moves it.
        self.on_change: Callable[[float], None] | None = None

    def reset(self) -> None:
        """A new term: nothing is trusted until its acquire is confirmed."""
        self.trusted_until = None
        self.lease_ends = None
        self.confirmations = 0

    def confirm(self, attempt_started: float, granted_ttl: float) -> float:
        """A renewal sent at ``attempt_started`` succeeded with ``granted_ttl``
        seconds. Never moves the window back (answers may arrive out of order)."""
        if granted_ttl <= 0:
            return self.trusted_until or attempt_started
        until = attempt_started + granted_ttl - safety_margin(granted_ttl)
        if self.trusted_until is None or until > self.trusted_until:
            self.trusted_until = until
            self.lease_ends = attempt_started + granted_ttl
            if self.on_change is not None:
                self.on_change(self.lease_ends - self.now())
        self.confirmations += 1
        return self.trusted_until

    def trusted(self) -> bool:
        return self.trusted_until is not None and self.now() < self.trusted_until

    def remaining(self) -> float:
        """Seconds of trust left (0 when lapsed or never granted)."""
        if self.trusted_until is None:
            return 0.0
        return max(0.0, self.trusted_until - self.now())
