"""MissionRecord / EventRecord <-> vp.v1 messages."""

from __future__ import annotations

from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct

from services.common.contracts.vp.v1 import enums_pb2, event_pb2, mission_pb2, session_pb2
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
    _agent_fields(mission, record)
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


BLOCKED_REASON_TO_PROTO = {"input_required": enums_pb2.BLOCKED_REASON_INPUT_REQUIRED,
                           "budget_exceeded": enums_pb2.BLOCKED_REASON_BUDGET_EXCEEDED}


def _agent_fields(mission: mission_pb2.Mission, record: MissionRecord) -> None:
    """Agent protocol v1: usage totals, why blocked, question, answer, conversation, budget in force."""
    if record.usage_input_tokens or record.usage_output_tokens or record.usage_cost_usd or record.usage_model:
        mission.usage.CopyFrom(mission_pb2.Usage(
            input_tokens=record.usage_input_tokens, output_tokens=record.usage_output_tokens,
            cached_input_tokens=record.usage_cached_input_tokens,
            total_tokens=record.usage_input_tokens + record.usage_output_tokens,
            cost_usd=record.usage_cost_usd, model=record.usage_model))
    mission.blocked_reason = BLOCKED_REASON_TO_PROTO.get(record.blocked_reason, enums_pb2.BLOCKED_REASON_UNSPECIFIED)
    if record.question:
        mission.input_request.CopyFrom(mission_pb2.InputRequest(question=record.question,
                                                                choices=record.question_choices))
    mission.answer = record.answer
    if record.conversation_id:
        mission.conversation.CopyFrom(session_pb2.AgentConversation(agent=record.conversation_agent,
                                                                    conversation_id=record.conversation_id,
                                                                    mission_id=record.mission_id))
    mission.resume_count = record.resume_count
    budget = mission_pb2.Budget()
    budget.CopyFrom(mission.envelope.budget)
    if record.budget_max_tokens is not None:
        budget.max_tokens = record.budget_max_tokens
    if record.budget_max_cost_usd is not None:
        budget.max_cost_usd = record.budget_max_cost_usd
    if record.max_duration_seconds:
        from datetime import timedelta

        budget.max_duration.CopyFrom(to_duration(timedelta(seconds=record.max_duration_seconds)))
    if budget.ByteSize():
        mission.budget.CopyFrom(budget)


def event_to_proto(record: EventRecord) -> event_pb2.MissionEvent:
    payload = Struct()
    payload.update(record.payload)
    return event_pb2.MissionEvent(
        event_id=record.event_id, mission_id=record.mission_id, vp_id=record.vp_id,
        event_type=record.event_type, payload=payload, emitted_at=to_timestamp(record.emitted_at),
    )
