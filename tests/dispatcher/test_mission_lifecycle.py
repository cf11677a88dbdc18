"""Dispatch -> push to a worker -> progress -> result, through the real
dispatcher and registry over gRPC, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from services.common.contracts.vp.v1 import enums_pb2
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from tests.dispatcher.conftest import CODER, GENERAL, dispatch, envelope, events_of
from tests.support.grpc_errors import details_of, reason_of

S = enums_pb2


async def test_dispatch_push_progress_complete(stack, worker_factory):
    worker = await worker_factory(CODER)
    await worker.connect()
    reply = await dispatch(stack, idempotency_key="k1")
    assert reply.route.decision == S.ROUTE_DECISION_DELEGATED
    assert reply.route.provenance == "delegated to vp.coder.primary"
    mission_id = reply.mission.envelope.mission_id
    assignment = await worker.assignment()
    assert assignment.mission.envelope.mission_id == mission_id
    assert assignment.mission.state == S.MISSION_STATE_RUNNING and assignment.mission.attempt == 1
    for seq in (1, 2, 3):
        worker.progress(assignment, seq, f"step {seq}")
    worker.progress(assignment, 2, "duplicate resend")  # dropped
    worker.result(assignment, result_ref="file:///nowhere", summary="poem written")
    accepted = await worker.next("result_accepted")
    assert accepted.result_accepted.state == S.MISSION_STATE_COMPLETED
    waited = await stack.missions.WaitMission(mc_pb.WaitMissionRequest(mission_id=mission_id,
                                                                       timeout=Duration(seconds=5)))
    assert not waited.timed_out and waited.mission.state == S.MISSION_STATE_COMPLETED
    assert waited.mission.summary == "poem written"
    assert waited.mission.completed_at.ToDatetime() >= waited.mission.started_at.ToDatetime()
    assert await events_of(stack, mission_id) == [
        "vp.mission.dispatched", "vp.mission.started", "vp.mission.progress", "vp.mission.progress",
        "vp.mission.progress", "vp.mission.completed"]
    progress = stack.missions.StreamMissionEvents(mc_pb.StreamMissionEventsRequest(
        mission_id=mission_id, event_types=["vp.mission.progress"]))
    assert [r.event.payload["message"] async for r in progress] == ["step 1", "step 2", "step 3"]
    # A second result for the same attempt is acknowledged and changes nothing.
    worker.result(assignment, S.MISSION_STATE_FAILED)
    again = await worker.next("result_accepted")
    assert again.result_accepted.state == S.MISSION_STATE_COMPLETED


async def test_work_is_pushed_when_capacity_frees(stack, worker_factory):
    worker = await worker_factory(GENERAL, capacity=1)
    await worker.connect()
    first = await dispatch(stack, vp_id=GENERAL, mission_type="task")
    second = await dispatch(stack, vp_id=GENERAL, mission_type="task")
    a1 = await worker.assignment()
    assert a1.mission.envelope.mission_id == first.mission.envelope.mission_id
    with pytest.raises(asyncio.TimeoutError):
        await worker.assignment(timeout=0.5)
    worker.result(a1)
    a2 = await worker.assignment()
    assert a2.mission.envelope.mission_id == second.mission.envelope.mission_id


async def test_idempotent_dispatch(stack, worker_factory):
    await (await worker_factory(CODER)).connect()
    first = await dispatch(stack, idempotency_key="same")
    again = await dispatch(stack, idempotency_key="same")
    assert again.deduplicated and again.mission.envelope.mission_id == first.mission.envelope.mission_id
    with pytest.raises(grpc.aio.AioRpcError) as conflict:
        await dispatch(stack, idempotency_key="same", objective="something else")
    assert conflict.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason_of(conflict.value) == "IDEMPOTENCY_CONFLICT"
    listed = await stack.missions.ListMissions(mc_pb.ListMissionsRequest())
    assert len(listed.missions) == 1


async def test_invalid_envelope_is_refused_and_nothing_is_stored(stack):
    bad = envelope(vp_id="nope", objective="", mission_type="BAD TYPE", priority=5000, mission_id="../x")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await dispatch(stack, bad)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in details_of(refused.value)["BadRequest"].field_violations}
    assert fields == {"envelope.vp_id", "envelope.objective", "envelope.mission_type", "envelope.priority",
                      "envelope.mission_id"}
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await dispatch(stack, vp_id="vp.unknown.lane")
    assert reason_of(unknown.value) == "UNKNOWN_VP"
    with pytest.raises(grpc.aio.AioRpcError) as too_big:
        await dispatch(stack, objective="x" * 300_000)
    assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.aio.AioRpcError) as outside:
        await dispatch(stack, target_path="/etc/passwd")
    assert reason_of(outside.value) == "PATH_NOT_ALLOWED"
    assert list((await stack.missions.ListMissions(mc_pb.ListMissionsRequest())).missions) == []
    events = stack.missions.StreamMissionEvents(mc_pb.StreamMissionEventsRequest())
    assert [e async for e in events] == []


async def test_list_filters_and_pages(stack, worker_factory):
    for i in range(5):
        await dispatch(stack, vp_id=GENERAL, mission_type="task", source={"session_id": f"s{i % 2}"})
    seen, token = [], ""
    while True:
        page = await stack.missions.ListMissions(mc_pb.ListMissionsRequest(page_size=2, page_token=token))
        seen += [m.envelope.mission_id for m in page.missions]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 5
    by_session = await stack.missions.ListMissions(mc_pb.ListMissionsRequest(source_session_id="s0"))
    assert len(by_session.missions) == 3
    failed = await stack.missions.ListMissions(mc_pb.ListMissionsRequest(states=[S.MISSION_STATE_FAILED]))
    assert len(failed.missions) == 5  # no live session: every one fell back to the caller


async def test_wait_times_out_and_get_unknown(stack):
    reply = await dispatch(stack, vp_id=GENERAL, mission_type="task", max_attempts=1)
    waited = await stack.missions.WaitMission(mc_pb.WaitMissionRequest(
        mission_id=reply.mission.envelope.mission_id, timeout=Duration(nanos=200_000_000)))
    assert waited.mission.state == S.MISSION_STATE_FAILED  # fell back at once: terminal, no wait
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stack.missions.GetMission(mc_pb.GetMissionRequest(mission_id="m-missing"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND and reason_of(missing.value) == "MISSION_NOT_FOUND"


async def test_twenty_concurrent_dispatchers(stack, worker_factory):
    worker = await worker_factory(CODER, capacity=8)
    await worker.connect()

    async def client(i):
        return [await dispatch(stack, idempotency_key=f"c{i}-{j}") for j in range(5)]

    replies = [r for batch in await asyncio.gather(*(client(i) for i in range(20))) for r in batch]
    assert len({r.mission.envelope.mission_id for r in replies}) == 100
    listed = await stack.missions.ListMissions(mc_pb.ListMissionsRequest(page_size=500))
    assert len(listed.missions) == 100
