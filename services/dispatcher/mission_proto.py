"""MissionRecord / EventRecord <-> vp.v1 messages."""

from __future__ import annotations

from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct

from services.common.contracts.vp.v1 import enums_pb2, event_pb2, mission_pb2
from services.common.states import MissionState
from services.common.store.records import EventRecord, MissionRecord
from services.common.timeutil import to_duration, to_timestamp

STATE_TO_PROTO = {state: enums_pb2.MissionState.Value(f"MISSION_STATE_{state.name}") for state in MissionState}
PROTO_TO_STATE = {value: state for state, value in STATE_TO_PROTO.items()}


def envelope_of(record: MissionRecord) -> mission_pb2.MissionEnvelope:
    return ParseDict(record.envelope, mission_pb2.MissionEnvelope(), ignore_unknown_fields=True)


def route_of(record: MissionRecord) -> mission_pb2.Route:
    return ParseDict(record.route, mission_pb2.Route(), ignore_unknown_fields=True)


def mission_to_proto(record: MissionRecord) -> mission_pb2.Mission:
    mission = mission_pb2.Mission(
        envelope=envelope_of(record),
        state=STATE_TO_PROTO[record.state],
        attempt=record.attempt,
        route=route_of(record),
        result_ref=record.result_ref,
        created_at=to_timestamp(record.created_at),
        updated_at=to_timestamp(record.updated_at),
        started_at=to_timestamp(record.started_at),
        completed_at=to_timestamp(record.completed_at),
        run_id=record.run_id,
        session_id=record.session_id,
        lease_epoch=record.lease_epoch,
        worker_owner=record.worker_owner,
        cancel_requested=record.cancel_requested,
        shadow_of_mission_id=record.shadow_of_mission_id,
        summary=record.summary,
    )
    if record.error_code or record.error_message:
        mission.error.CopyFrom(mission_pb2.MissionError(code=record.error_code, message=record.error_message))
    if record.shadow:
        from datetime import timedelta

        shadow = mission_pb2.ShadowOutcome(shadow_mission_id=record.shadow.get("shadow_mission_id", ""))
        if "state" in record.shadow:
            shadow.state = STATE_TO_PROTO[MissionState(record.shadow["state"])]
        if "latency_seconds" in record.shadow:
            shadow.latency.CopyFrom(to_duration(timedelta(seconds=record.shadow["latency_seconds"])))
        mission.shadow.CopyFrom(shadow)
    return mission


def event_to_proto(record: EventRecord) -> event_pb2.MissionEvent:
    payload = Struct()
    payload.update(record.payload)
    return event_pb2.MissionEvent(
        event_id=record.event_id, mission_id=record.mission_id, vp_id=record.vp_id,
        event_type=record.event_type, payload=payload, emitted_at=to_timestamp(record.emitted_at),
    )
