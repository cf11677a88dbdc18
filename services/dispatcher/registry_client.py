"""The registry over gRPC (registry_port.Registry). Lane health is read
through a short cache so a burst of dispatches costs one registry call."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import grpc

from services.common.contracts.vp.v1 import session_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as reg_grpc
from services.common.errors import DependencyUnavailable, LeaseSuperseded, SessionNotFound, error_info
from services.common.grpc_options import CHANNEL_OPTIONS
from services.common.security import INSECURE_CHANNEL, ChannelSecurity
from services.common.timeutil import to_duration
from services.dispatcher.registry_port import LeaseFromSession, LeaseView, view_of

log = logging.getLogger(__name__)
CALL_TIMEOUT_S = 5.0


class RegistryClient(LeaseFromSession):
    def __init__(self, address: str, cache_ttl_s: float, security: ChannelSecurity = INSECURE_CHANNEL) -> None:
        self.channel = security.aio_channel(address, CHANNEL_OPTIONS)
        self.stub = reg_grpc.SessionRegistryStub(self.channel)
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, LeaseView] = {}
        self._cached_at = 0.0
        self._refresh_lock = asyncio.Lock()
        self._last_good: dict[str, LeaseView] = {}
        self._unreachable = False

    async def lanes(self) -> dict[str, LeaseView]:
        """Every session's lease view; unhealthy for all if the registry is down."""
        if time.monotonic() - self._cached_at < self.cache_ttl_s:
            return self._cache
        async with self._refresh_lock:
            if time.monotonic() - self._cached_at < self.cache_ttl_s:
                return self._cache
            views: dict[str, LeaseView] = {}
            token = ""
            try:
                while True:
                    page = await self.stub.ListSessions(reg_pb.ListSessionsRequest(page_size=500, page_token=token),
                                                        timeout=CALL_TIMEOUT_S)
                    views.update({s.vp_id: view_of(s) for s in page.sessions})
                    token = page.next_page_token
                    if not token:
                        break
            except grpc.aio.AioRpcError as error:
                # Once per outage: the supervisor reads lane health several times a second.
                (log.debug if self._unreachable else log.warning)(
                    "registry unreachable (%s); lanes without a live, heartbeating worker stream are unhealthy",
                    error.code().name)
                views, self._unreachable = {}, True
            else:
                if self._unreachable:
                    log.info("registry reachable again")
                self._last_good, self._unreachable = views, False
            self._cache, self._cached_at = views, time.monotonic()
            return views

    def last_known(self) -> dict[str, LeaseView] | None:
        return dict(self._last_good) if self._unreachable else None


    async def renew(self, vp_id: str, owner: str, lease_epoch: int, ttl: timedelta) -> session_pb2.VpSession:
        """Renew with the worker's own TTL, not the registry default."""
        request = reg_pb.RenewLeaseRequest(vp_id=vp_id, owner=owner, lease_epoch=lease_epoch, ttl=to_duration(ttl))
        reply = await self._call(self.stub.RenewLease, request, vp_id)
        self.invalidate()
        return reply.session

    async def session(self, vp_id: str) -> session_pb2.VpSession:
        reply = await self._call(self.stub.GetSession, reg_pb.GetSessionRequest(vp_id=vp_id), vp_id)
        return reply.session

    async def _call(self, method, request, vp_id: str):
        """One registry call; its failures become domain errors here, so no caller
        can leak a raw RpcError (an UNKNOWN to its own client)."""
        try:
            return await method(request, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            info = error_info(error)
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise SessionNotFound(vp_id) from None
            if info is not None and info.reason == "LEASE_SUPERSEDED":
                raise LeaseSuperseded(error.details() or "lease superseded", metadata=dict(info.metadata)) from None
            raise DependencyUnavailable(f"registry call failed: {error.code().name}: {error.details()}",
                                        metadata={"dependency": "registry", "code": error.code().name}) from None

    def invalidate(self) -> None:
        self._cached_at = 0.0

    async def close(self) -> None:
        await self.channel.close()
