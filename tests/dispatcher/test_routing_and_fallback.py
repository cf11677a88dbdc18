"""Every fallback reason end to end, re-routing to another lane, and shadow mode."""

from __future__ import annotations

from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration

from services.common.contracts.vp.v1 import enums_pb2 as S
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.dispatcher.routing import LaneFlags, RoutingFlags, default_lanes
from services.dispatcher.settings import DispatcherSettings
from tests.dispatcher.conftest import CODER, GENERAL, dispatch, events_of
from tests.support.scripted_worker import ScriptedWorker
from tests.support.stack import running_stack


def settings(**kwargs) -> DispatcherSettings:
    base = dict(heartbeat_interval=timedelta(milliseconds=200), health_cache_ttl=timedelta(0))
    return DispatcherSettings(**{**base, **kwargs})


async def fallback_payloads(stack, mission_id):
    events = stack.missions.StreamMissionEvents(mc_pb.StreamMissionEventsRequest(
        mission_id=mission_id, event_types=["vp.mission.fallback"]))
    return [dict(reply.event.payload) async for reply in events]


@pytest.mark.parametrize(("config", "reason", "healthy"), [
    (dict(flags=RoutingFlags(kill_switch=True)), S.FALLBACK_REASON_DISABLED, True),
    (dict(flags=RoutingFlags(lanes={CODER: LaneFlags(enabled=False)})), S.FALLBACK_REASON_DISABLED, True),
    (dict(flags=RoutingFlags(lanes={CODER: LaneFlags(force_fallback=True)})), S.FALLBACK_REASON_FORCED, True),
    (dict(), S.FALLBACK_REASON_UNHEALTHY, False),
], ids=["kill_switch", "disabled", "forced", "unhealthy"])
async def test_dispatch_time_fallback_to_caller(db_url, config, reason, healthy):
    async with running_stack(db_url, settings(**config)) as stack:
        worker = ScriptedWorker(stack, CODER)
        if healthy:
            await worker.connect()
        reply = await dispatch(stack)
        mission = reply.mission
        assert reply.route.decision == S.ROUTE_DECISION_FALLBACK
        assert reply.route.fallback_reason == reason
        assert reply.route.fallback_target.kind == S.FALLBACK_TARGET_KIND_CALLER
        assert reply.route.provenance.startswith("fallback to caller: ")
        assert mission.state == S.MISSION_STATE_FAILED and mission.error.code == "FALLBACK_TO_CALLER"
        assert await events_of(stack, mission.envelope.mission_id) == [
            "vp.mission.dispatched", "vp.mission.fallback", "vp.mission.failed"]
        await worker.close()


async def test_over_capacity_falls_back(db_url):
    lanes = default_lanes()
    lanes[CODER] = type(lanes[CODER])(**{**lanes[CODER].__dict__, "max_in_flight": 1, "max_queue_depth": 1})
    async with running_stack(db_url, settings(lanes=lanes)) as stack:
        worker = ScriptedWorker(stack, CODER, capacity=1)
        await worker.connect()
        assert (await dispatch(stack)).route.decision == S.ROUTE_DECISION_DELEGATED
        await worker.assignment()
        assert (await dispatch(stack)).route.decision == S.ROUTE_DECISION_DELEGATED  # queued
        third = await dispatch(stack)
        assert third.route.fallback_reason == S.FALLBACK_REASON_OVER_CAPACITY
        await worker.close()


async def test_unhealthy_coder_reroutes_to_general_lane(db_url):
    async with running_stack(db_url, settings(lanes=default_lanes(coder_falls_back_to_general=True))) as stack:
        general = ScriptedWorker(stack, GENERAL)
        await general.connect()
        reply = await dispatch(stack)
        assert reply.route.decision == S.ROUTE_DECISION_FALLBACK
        assert reply.route.lane == GENERAL and reply.route.fallback_reason == S.FALLBACK_REASON_UNHEALTHY
        assert reply.route.provenance == "fallback to vp.general.primary: unhealthy"
        assignment = await general.assignment()
        general.result(assignment)
        await general.next("result_accepted")
        done = await stack.missions.GetMission(mc_pb.GetMissionRequest(mission_id=reply.mission.envelope.mission_id))
        assert done.mission.state == S.MISSION_STATE_COMPLETED
        assert (await fallback_payloads(stack, reply.mission.envelope.mission_id))[0]["reason"] == "unhealthy"
        await general.close()


async def test_failure_without_attempts_left_reroutes_to_fallback_lane(db_url):
    async with running_stack(db_url, settings(lanes=default_lanes(coder_falls_back_to_general=True))) as stack:
        coder, general = ScriptedWorker(stack, CODER), ScriptedWorker(stack, GENERAL)
        await coder.connect()
        await general.connect()
        reply = await dispatch(stack, max_attempts=1)
        coder.result(await coder.assignment(), S.MISSION_STATE_FAILED, error_code="BOOM")
        await coder.next("result_accepted")
        rerouted = await general.assignment()
        assert rerouted.mission.envelope.mission_id == reply.mission.envelope.mission_id
        assert rerouted.mission.attempt == 2 and rerouted.mission.route.fallback_reason == S.FALLBACK_REASON_FAILED
        general.result(rerouted)
        await general.next("result_accepted")
        assert (await fallback_payloads(stack, reply.mission.envelope.mission_id))[0]["reason"] == "failed"
        for worker in (coder, general):
            await worker.close()


async def test_failed_attempt_is_retried_then_falls_back_to_caller(stack, worker_factory):
    worker = await worker_factory(CODER)
    await worker.connect()
    reply = await dispatch(stack, max_attempts=2)
    for attempt in (1, 2):
        assignment = await worker.assignment()
        assert assignment.mission.attempt == attempt
        worker.result(assignment, S.MISSION_STATE_FAILED, error_code="EXECUTOR_EXIT_NONZERO")
        await worker.next("result_accepted")
    final = await stack.missions.GetMission(mc_pb.GetMissionRequest(mission_id=reply.mission.envelope.mission_id))
    assert final.mission.state == S.MISSION_STATE_FAILED
    assert final.mission.route.decision == S.ROUTE_DECISION_FALLBACK
    assert final.mission.route.fallback_reason == S.FALLBACK_REASON_FAILED
    assert final.mission.error.code == "EXECUTOR_EXIT_NONZERO"


async def test_shadow_mode_runs_copy_and_records_comparison(db_url):
    flags = RoutingFlags(lanes={CODER: LaneFlags(shadow=True)})
    lanes = default_lanes(coder_falls_back_to_general=True)
    async with running_stack(db_url, settings(flags=flags, lanes=lanes)) as stack:
        coder, general = ScriptedWorker(stack, CODER), ScriptedWorker(stack, GENERAL)
        await coder.connect()
        await general.connect()
        reply = await dispatch(stack)
        assert reply.route.decision == S.ROUTE_DECISION_SHADOW and reply.route.lane == GENERAL
        mission_id = reply.mission.envelope.mission_id
        shadow = await coder.assignment()
        assert shadow.mission.shadow_of_mission_id == mission_id
        record = await general.assignment()
        assert record.mission.envelope.mission_id == mission_id
        general.result(record, summary="result of record")
        coder.result(shadow, summary="shadow result")
        await general.next("result_accepted")
        await coder.next("result_accepted")
        final = await stack.missions.WaitMission(mc_pb.WaitMissionRequest(mission_id=mission_id,
                                                                          timeout=Duration(seconds=5)))
        assert final.mission.state == S.MISSION_STATE_COMPLETED and final.mission.summary == "result of record"
        assert final.mission.shadow.shadow_mission_id == shadow.mission.envelope.mission_id
        assert final.mission.shadow.state == S.MISSION_STATE_COMPLETED
        assert final.mission.shadow.latency.ToTimedelta() > timedelta(0)
        for worker in (coder, general):
            await worker.close()
