"""vp.v1.SessionRegistry over gRPC: translation only; rules live in registry.py."""

from __future__ import annotations

from services.common.contracts.vp.v1 import session_registry_service_pb2 as pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as pb_grpc
from services.common.grpc_errors import translate_errors
from services.common.timeutil import from_duration
from services.registry.leases import AcquireOutcome
from services.registry.registry import SessionRegistry
from services.registry.session_proto import PROTO_TO_STATUS, session_to_proto

OUTCOME_TO_PROTO = {outcome: pb.AcquireOutcome.Value(f"ACQUIRE_OUTCOME_{outcome.name}") for outcome in AcquireOutcome}
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SessionRegistry"].full_name


@translate_errors
class SessionRegistryServicer(pb_grpc.SessionRegistryServicer):
    def __init__(self, registry: SessionRegistry) -> None:
        self.registry = registry

    def _proto(self, record):
        return session_to_proto(record, self.registry.clock.now(), self.registry.settings.heartbeat_stale_after)

    async def AcquireLease(self, request, context):
        record, outcome = await self.registry.acquire(
            vp_id=request.vp_id, owner=request.owner, runtime_id=request.runtime_id,
            workspace_dir=request.workspace_dir, ttl=from_duration(request.ttl) if request.HasField("ttl") else None,
        )
        return pb.AcquireLeaseResponse(session=self._proto(record), outcome=OUTCOME_TO_PROTO[outcome])

    async def RenewLease(self, request, context):
        record = await self.registry.renew(
            vp_id=request.vp_id, owner=request.owner, lease_epoch=request.lease_epoch,
            ttl=from_duration(request.ttl) if request.HasField("ttl") else None,
        )
        return pb.RenewLeaseResponse(session=self._proto(record))

    async def ReleaseLease(self, request, context):
        record = await self.registry.release(vp_id=request.vp_id, owner=request.owner, lease_epoch=request.lease_epoch)
        return pb.ReleaseLeaseResponse(session=self._proto(record))

    async def GetSession(self, request, context):
        return pb.GetSessionResponse(session=self._proto(await self.registry.get(request.vp_id)))

    async def ListSessions(self, request, context):
        page = await self.registry.list(
            statuses=[_status(v, "statuses") for v in request.statuses],
            effective_statuses=[_status(v, "effective_statuses") for v in request.effective_statuses],
            stale=request.stale if request.HasField("stale") else None,
            vp_id_prefix=request.vp_id_prefix, page_size=request.page_size, page_token=request.page_token,
        )
        return pb.ListSessionsResponse(sessions=[self._proto(r) for r in page.sessions],
                                       next_page_token=page.next_page_token)

    async def ReviveSession(self, request, context):
        record = await self.registry.revive(vp_id=request.vp_id, reason=request.reason)
        return pb.ReviveSessionResponse(session=self._proto(record))

    async def RetireSession(self, request, context):
        record = await self.registry.retire(vp_id=request.vp_id, reason=request.reason)
        return pb.RetireSessionResponse(session=self._proto(record))


    async def SetConversation(self, request, context):
        c = request.conversation
        record = await self.registry.set_conversation(
            vp_id=request.vp_id, owner=request.owner, lease_epoch=request.lease_epoch, agent=c.agent,
            conversation_id=c.conversation_id, mission_id=c.mission_id)
        return pb.SetConversationResponse(session=self._proto(record))

    async def ResetConversation(self, request, context):
        record = await self.registry.reset_conversation(vp_id=request.vp_id, reason=request.reason)
        return pb.ResetConversationResponse(session=self._proto(record))


def _status(value: int, field: str):
    from services.common.errors import FieldViolation, InvalidArgument

    try:
        return PROTO_TO_STATUS[value]
    except KeyError:
        raise InvalidArgument(FieldViolation(field, f"unknown or unspecified SessionStatus {value}")) from None


def add_to_server(servicer: SessionRegistryServicer, server) -> list[str]:
    pb_grpc.add_SessionRegistryServicer_to_server(servicer, server)
    return [SERVICE_NAME]
