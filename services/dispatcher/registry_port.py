"""What the dispatcher needs from the session registry, as a Protocol.

Two implementations: registry_client.RegistryClient (gRPC, production) and
registry_memory.InMemoryRegistry (the real lease rules over a dict, driven by
an injected clock) for running the dispatcher without a registry process.
Both raise the same domain errors: SessionNotFound, LeaseSuperseded,
DependencyUnavailable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from services.common.contracts.vp.v1 import enums_pb2, session_pb2
from services.common.errors import SessionNotFound


@dataclass(frozen=True)
class LeaseView:
    healthy: bool
    lease_owner: str
    lease_epoch: int
    lease_live: bool


def view_of(session: session_pb2.VpSession | None) -> LeaseView:
    """Healthy: ACTIVE, not stale, leased. Live: the lease holds (PAUSED lanes too)."""
    if session is None:
        return LeaseView(False, "", 0, False)
    live = session.effective_status in (enums_pb2.SESSION_STATUS_ACTIVE, enums_pb2.SESSION_STATUS_PAUSED) \
        and not session.stale and bool(session.lease_owner)
    healthy = live and session.effective_status == enums_pb2.SESSION_STATUS_ACTIVE
    return LeaseView(healthy, session.lease_owner, session.lease_epoch, live)


class LeaseFromSession:
    """Registry.lease for an implementation that has session(): one rule for
    both, so an unknown lane reads as "no lease" the same way everywhere."""

    async def lease(self, vp_id: str) -> LeaseView:
        try:
            return view_of(await self.session(vp_id))  # type: ignore[attr-defined]
        except SessionNotFound:
            return view_of(None)


class Registry(Protocol):
    async def lanes(self) -> dict[str, LeaseView]:
        """Every session's lease view (may be cached briefly); empty if unreachable."""
        ...

    async def lease(self, vp_id: str) -> LeaseView:
        """Fresh view of one lane's lease, for fencing decisions."""
        ...

    async def renew(self, vp_id: str, owner: str, lease_epoch: int, ttl: timedelta) -> session_pb2.VpSession: ...

    async def session(self, vp_id: str) -> session_pb2.VpSession: ...

    def invalidate(self) -> None:
        """Drop any cached lane view: the next lanes() reads afresh."""
        ...

    def last_known(self) -> dict[str, LeaseView] | None:
        """The views of the last successful read while the latest lanes() read
        failed (registry unreachable); None while the registry answers."""
        ...

    async def close(self) -> None: ...
