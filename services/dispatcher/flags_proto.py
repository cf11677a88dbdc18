"""Runtime routing flags <-> vp.v1 messages."""

from __future__ import annotations

from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.timeutil import to_timestamp
from services.dispatcher.runtime_flags import FlagsChange, FlagsSnapshot


def snapshot_to_proto(snapshot: FlagsSnapshot, *, only: str = "") -> mc_pb.GetRoutingFlagsResponse:
    reply = mc_pb.GetRoutingFlagsResponse(kill_switch=snapshot.flags.kill_switch,
                                          read_at=to_timestamp(snapshot.read_at))
    for vp_id in sorted(snapshot.lanes):
        if only and vp_id != only:
            continue
        flags, cfg, row = snapshot.flags.for_lane(vp_id), snapshot.lanes[vp_id], snapshot.rows.get(vp_id)
        lane = mc_pb.LaneFlags(vp_id=vp_id, enabled=flags.enabled, shadow=flags.shadow,
                               force_fallback=flags.force_fallback, max_in_flight=cfg.max_in_flight,
                               max_queue_depth=cfg.max_queue_depth)
        if row is not None:
            lane.quotas_set = row.max_in_flight is not None or row.max_queue_depth is not None
            lane.version, lane.updated_by = row.version, row.updated_by
            if row.updated_at is not None:
                lane.updated_at.CopyFrom(to_timestamp(row.updated_at))
        reply.lanes.append(lane)
    return reply


def change_from_proto(request: mc_pb.SetRoutingFlagsRequest) -> FlagsChange:
    def opt(name: str):
        return getattr(request, name) if request.HasField(name) else None

    return FlagsChange(vp_id=request.vp_id, kill_switch=opt("kill_switch"), enabled=opt("enabled"),
                       shadow=opt("shadow"), force_fallback=opt("force_fallback"),
                       max_in_flight=opt("max_in_flight"), max_queue_depth=opt("max_queue_depth"),
                       reason=request.reason, actor=request.actor)
