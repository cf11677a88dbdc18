"""Mapping of routing decisions onto the wire Route message.

Route has no field for shadow_lane or hops: the shadow copy is its own Mission
(shadow_of_mission_id) and hops belong in events and logs.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.json_format import MessageToDict

from services.common.contracts.vp.v1 import enums_pb2, mission_pb2
from services.common.timeutil import to_timestamp
from services.dispatcher.routing.lanes import FallbackTarget
from services.dispatcher.routing.policy import Decision, Reason, RoutingDecision

_DECISIONS = {
    Decision.DELEGATED: enums_pb2.ROUTE_DECISION_DELEGATED,
    Decision.SHADOW: enums_pb2.ROUTE_DECISION_SHADOW,
    Decision.FALLBACK: enums_pb2.ROUTE_DECISION_FALLBACK,
}
_REASONS = {
    Reason.DISABLED: enums_pb2.FALLBACK_REASON_DISABLED,
    Reason.FORCED: enums_pb2.FALLBACK_REASON_FORCED,
    Reason.UNHEALTHY: enums_pb2.FALLBACK_REASON_UNHEALTHY,
    Reason.OVER_CAPACITY: enums_pb2.FALLBACK_REASON_OVER_CAPACITY,
    Reason.TIMED_OUT: enums_pb2.FALLBACK_REASON_TIMED_OUT,
    Reason.FAILED: enums_pb2.FALLBACK_REASON_FAILED,
    Reason.WORKER_LOST: enums_pb2.FALLBACK_REASON_WORKER_LOST,
}
_TARGET_KINDS = {
    "lane": enums_pb2.FALLBACK_TARGET_KIND_LANE,
    "caller": enums_pb2.FALLBACK_TARGET_KIND_CALLER,
}


def to_fallback_target_proto(target: FallbackTarget) -> mission_pb2.FallbackTarget:
    return mission_pb2.FallbackTarget(kind=_TARGET_KINDS[target.kind], vp_id=target.vp_id)


def to_route_proto(decision: RoutingDecision, decided_at: datetime) -> mission_pb2.Route:
    """decided_at must be timezone-aware (naive datetimes are refused by timeutil)."""
    route = mission_pb2.Route(
        decision=_DECISIONS[decision.decision],
        lane=decision.lane,
        requested_vp_id=decision.requested_vp_id,
        fallback_reason=(
            _REASONS[decision.reason] if decision.reason else enums_pb2.FALLBACK_REASON_UNSPECIFIED
        ),
        provenance=decision.provenance,
        decided_at=to_timestamp(decided_at),
    )
    if decision.fallback_target is not None:
        route.fallback_target.CopyFrom(to_fallback_target_proto(decision.fallback_target))
    return route


def route_dict(decision: RoutingDecision, decided_at: datetime) -> dict:
    """The Route as stored on a mission record (protobuf JSON mapping)."""
    return MessageToDict(to_route_proto(decision, decided_at), preserving_proto_field_name=True)
