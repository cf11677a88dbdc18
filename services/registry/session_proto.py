"""SessionRecord -> vp.v1.VpSession."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.common.contracts.vp.v1 import enums_pb2, session_pb2
from services.common.states import SessionStatus
from services.common.store.records import SessionRecord
from services.common.timeutil import to_timestamp
from services.registry.session_health import StaleReason, assess

STATUS_TO_PROTO = {status: enums_pb2.SessionStatus.Value(f"SESSION_STATUS_{status.name}") for status in SessionStatus}
PROTO_TO_STATUS = {value: status for status, value in STATUS_TO_PROTO.items()}
STALE_TO_PROTO = {
    StaleReason.NONE: enums_pb2.STALE_REASON_UNSPECIFIED,
    StaleReason.LEASE_EXPIRED: enums_pb2.STALE_REASON_LEASE_EXPIRED,
    StaleReason.HEARTBEAT_OVERDUE: enums_pb2.STALE_REASON_HEARTBEAT_OVERDUE,
}


def session_to_proto(record: SessionRecord, now: datetime, heartbeat_stale_after: timedelta) -> session_pb2.VpSession:
    health = assess(record, now, heartbeat_stale_after)
    return session_pb2.VpSession(
        vp_id=record.vp_id,
        runtime_id=record.runtime_id,
        session_id=record.session_id,
        workspace_dir=record.workspace_dir,
        status=STATUS_TO_PROTO[record.status],
        effective_status=STATUS_TO_PROTO[health.effective_status],
        stale=health.stale,
        stale_reason=STALE_TO_PROTO[health.stale_reason],
        lease_owner=record.lease_owner,
        lease_epoch=record.lease_epoch,
        lease_expires_at=to_timestamp(record.lease_expires_at),
        last_heartbeat_at=to_timestamp(record.last_heartbeat_at),
        last_error=record.last_error,
        created_at=to_timestamp(record.created_at),
        updated_at=to_timestamp(record.updated_at),
        conversation=_conversation(record),
    )


def _conversation(record: SessionRecord) -> session_pb2.AgentConversation | None:
    if not record.conversation_id:
        return None
    return session_pb2.AgentConversation(agent=record.conversation_agent, conversation_id=record.conversation_id,
                                         mission_id=record.conversation_mission_id,
                                         updated_at=to_timestamp(record.conversation_updated_at))
