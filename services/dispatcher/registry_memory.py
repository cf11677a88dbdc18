"""An in-memory session registry for the dispatcher (registry_port.Registry).

It applies the registry's own lease rules (services/registry/leases.py) to
sessions kept in a dict, on an injected clock: moving a FakeClock expires
leases exactly as time would. Workers (or tests acting as workers) acquire
and release through it directly. Use it to run the dispatcher in one process
without a registry service, and to test lease faults without sleeping. It
keeps no events and no history; nothing survives the process.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from services.common.clock import Clock
from services.common.contracts.vp.v1 import session_pb2
from services.common.errors import DependencyUnavailable, SessionNotFound
from services.common.store.records import SessionRecord
from services.dispatcher.registry_port import LeaseFromSession, LeaseView, view_of
from services.registry import leases
from services.registry.session_proto import session_to_proto
from services.registry.settings import RegistrySettings


class InMemoryRegistry(LeaseFromSession):
    def __init__(self, clock: Clock, settings: RegistrySettings | None = None) -> None:
        self.clock = clock
        self.settings = settings or RegistrySettings()
        self.sessions: dict[str, SessionRecord] = {}
        # While set, every call fails as an unreachable registry would.
        self.down = False
        self._last_good: dict[str, LeaseView] = {}
        self._lock = asyncio.Lock()

    # --- the lease holder's side (what a worker does over gRPC) ---------------
    async def acquire(self, vp_id: str, owner: str, *, workspace_dir: str = "", runtime_id: str = "",
                      ttl: timedelta | None = None) -> session_pb2.VpSession:
        async with self._lock:
            self._check_up()
            existing = self.sessions.get(vp_id)
            change, _ = leases.acquire(existing, vp_id=vp_id, owner=owner, runtime_id=runtime_id,
                                       workspace_dir=workspace_dir or f"/workspaces/{vp_id}",
                                       ttl=ttl or self.settings.lease_ttl, now=self.clock.now())
            self.sessions[vp_id] = change.session
            return self._proto(change.session)

    async def release(self, vp_id: str, owner: str, lease_epoch: int) -> session_pb2.VpSession:
        async with self._lock:
            change = leases.release(self._require(vp_id), owner=owner, lease_epoch=lease_epoch, now=self.clock.now())
            self.sessions[vp_id] = change.session
            return self._proto(change.session)

    # --- registry_port.Registry --------------------------------------------------
    async def lanes(self) -> dict[str, LeaseView]:
        if self.down:
            return {}
        self._last_good = {vp_id: view_of(self._proto(record)) for vp_id, record in self.sessions.items()}
        return dict(self._last_good)

    def last_known(self) -> dict[str, LeaseView] | None:
        return dict(self._last_good) if self.down else None


    async def renew(self, vp_id: str, owner: str, lease_epoch: int, ttl: timedelta) -> session_pb2.VpSession:
        async with self._lock:
            change = leases.renew(self._require(vp_id), owner=owner, lease_epoch=lease_epoch, ttl=ttl,
                                  now=self.clock.now())
            self.sessions[vp_id] = change.session
            return self._proto(change.session)

    async def session(self, vp_id: str) -> session_pb2.VpSession:
        return self._proto(self._require(vp_id))

    def invalidate(self) -> None:
        """Nothing is cached."""

    async def close(self) -> None:
        """Nothing to release."""

    # --- helpers -------------------------------------------------------------------
    def _require(self, vp_id: str) -> SessionRecord:
        self._check_up()
        record = self.sessions.get(vp_id)
        if record is None:
            raise SessionNotFound(vp_id)
        return record

    def _check_up(self) -> None:
        if self.down:
            raise DependencyUnavailable("registry call failed: UNAVAILABLE: in-memory registry is down",
                                        metadata={"dependency": "registry", "code": "UNAVAILABLE"})

    def _proto(self, record: SessionRecord) -> session_pb2.VpSession:
        return session_to_proto(record, self.clock.now(), self.settings.heartbeat_stale_after)
