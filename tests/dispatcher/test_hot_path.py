"""The hot path end to end: streamed progress, replays found by the insert,
claims only when there is work."""

from __future__ import annotations

import asyncio

from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from tests.dispatcher.conftest import CODER, dispatch, envelope


async def test_streamed_progress_lines_all_land_in_order_before_the_result(stack, worker_factory):
    worker = await worker_factory(CODER)
    await worker.connect()
    reply = await dispatch(stack)
    mission_id = reply.mission.envelope.mission_id
    assignment = await worker.assignment()
    for seq in range(1, 301):
        worker.progress(assignment, seq, f"line {seq}")
    worker.progress(assignment, 150, "a resend: dropped")
    worker.result(assignment)
    accepted = await worker.next("result_accepted")
    assert accepted.result_accepted.mission_id == mission_id
    events = stack.missions.StreamMissionEvents(mc_pb.StreamMissionEventsRequest(mission_id=mission_id))
    seen = [reply.event async for reply in events]
    lines = [int(e.payload["seq"]) for e in seen if e.event_type == "vp.mission.progress"]
    assert lines == list(range(1, 301))
    assert seen[-1].event_type == "vp.mission.completed"


async def test_a_replayed_dispatch_answers_from_the_stored_mission(stack):
    first = await dispatch(stack, env=envelope(idempotency_key="k-1", mission_id="m-replay"))
    again = await dispatch(stack, env=envelope(idempotency_key="k-1", mission_id="m-replay"))
    assert again.deduplicated and again.mission.envelope.mission_id == first.mission.envelope.mission_id
    assert again.mission.created_at == first.mission.created_at


async def test_a_lane_found_empty_is_not_claimed_again_until_work_arrives(stack, worker_factory):
    worker = await worker_factory(CODER)
    await worker.connect()
    assignment = None
    for _ in range(2):
        await dispatch(stack)
        assignment = await worker.assignment()
        worker.result(assignment)
        await worker.next("result_accepted")
    await asyncio.gather(*list(stack.core._background), return_exceptions=True)  # pumps done
    applied = stack.core.commits.applied
    stack.core.request_pump(CODER)  # a freed slot, nothing queued: no claim transaction
    await asyncio.gather(*list(stack.core._background), return_exceptions=True)
    assert stack.core.commits.applied == applied
    stack.core.request_pump(CODER, look=True)  # the supervision pass looks anyway
    await asyncio.gather(*list(stack.core._background), return_exceptions=True)
    assert stack.core.commits.applied == applied + 1
    await dispatch(stack)
    await worker.assignment()
