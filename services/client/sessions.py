"""Async client of vp.v1.SessionRegistry, read side (what operators look at),
plus the operator's actions: retire, revive, conversation reset."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from services.client.base import GrpcClient
from services.client.errors import invalid_argument
from services.client.states import parse_session_status
from services.common.contracts.vp.v1 import session_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as pb_grpc


class SessionsClient(GrpcClient):
    @property
    def stub(self) -> pb_grpc.SessionRegistryStub:
        return self._stub(pb_grpc.SessionRegistryStub)

    async def get_session(self, vp_id: str, *, timeout: float | None = None) -> session_pb2.VpSession:
        response = await self._unary("GetSession", self.stub.GetSession, pb.GetSessionRequest(vp_id=vp_id),
                                     timeout=timeout)
        return response.session

    async def list_sessions(
        self,
        *,
        statuses: Iterable[int | str] = (),
        effective_statuses: Iterable[int | str] = (),
        stale: bool | None = None,
        vp_id_prefix: str = "",
        page_size: int = 0,
        limit: int | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[session_pb2.VpSession]:
        """Every matching session across all pages (at most ``limit``)."""
        try:
            stored = [parse_session_status(s) for s in statuses]
            effective = [parse_session_status(s) for s in effective_statuses]
        except ValueError as exc:
            raise invalid_argument("statuses", str(exc)) from None
        request = pb.ListSessionsRequest(statuses=stored, effective_statuses=effective, vp_id_prefix=vp_id_prefix,
                                         page_size=page_size)
        if stale is not None:
            request.stale = stale
        async for session in self._paged("ListSessions", self.stub.ListSessions, request, "sessions", limit=limit,
                                         timeout=timeout):
            yield session

    async def retire_session(self, vp_id: str, reason: str = "", *, timeout: float | None = None
                             ) -> session_pb2.VpSession:
        """Operator: take the session out of service (its worker stops). Idempotent."""
        response = await self._unary("RetireSession", self.stub.RetireSession,
                                     pb.RetireSessionRequest(vp_id=vp_id, reason=reason), timeout=timeout)
        return response.session

    async def revive_session(self, vp_id: str, reason: str = "", *, timeout: float | None = None
                             ) -> session_pb2.VpSession:
        """Operator: bring a retired session back as IDLE; a worker may acquire it again."""
        response = await self._unary("ReviveSession", self.stub.ReviveSession,
                                     pb.ReviveSessionRequest(vp_id=vp_id, reason=reason), timeout=timeout,
                                     retryable=False)
        return response.session

    async def reset_conversation(self, vp_id: str, reason: str = "", *, timeout: float | None = None
                                 ) -> session_pb2.VpSession:
        """Forget the VP's agent conversation; its next mission starts fresh (idempotent)."""
        response = await self._unary("ResetConversation", self.stub.ResetConversation,
                                     pb.ResetConversationRequest(vp_id=vp_id, reason=reason), timeout=timeout)
        return response.session
