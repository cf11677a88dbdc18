"""Runtime flags and hard quotas with two dispatcher replicas on one database
(both backends) and a FakeClock: a change made through one replica routes on the
other once REFRESH (0.5 s) of clock time has passed, it is audited, bad changes
change nothing, and a lane's queue quota holds exactly inside the dispatch
transaction even when routing's load view is stale."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from services.common.contracts.vp.v1 import enums_pb2 as S
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.dispatcher.runtime_flags import AUDIT_EVENT, REFRESH
from services.dispatcher.settings import DispatcherSettings
from tests.dispatcher.conftest import CODER, envelope
from tests.support.scripted_worker import ScriptedWorker
from tests.support.stack import fake_clock_stack


async def flags(stack) -> mc_pb.GetRoutingFlagsResponse:
    return await stack.operator.GetRoutingFlags(mc_pb.GetRoutingFlagsRequest())


async def route_of(stack, **fields) -> mc_pb.DispatchMissionResponse:
    return await stack.missions.DispatchMission(mc_pb.DispatchMissionRequest(envelope=envelope(**fields)))


async def test_a_change_on_one_replica_routes_on_the_other_within_the_refresh(db_url):
    async with fake_clock_stack(db_url) as a, fake_clock_stack(db_url, clock=a.clock, registry=a.memory_registry) as b:
        worker = ScriptedWorker(a, CODER)
        await worker.acquire()
        assert not (await flags(b)).kill_switch  # b has read (and seeded) the flags
        assert (await route_of(b)).route.decision == S.ROUTE_DECISION_DELEGATED

        reply = await a.operator.SetRoutingFlags(mc_pb.SetRoutingFlagsRequest(kill_switch=True, reason="incident 42",
                                                                              actor="ops"))
        assert reply.flags.kill_switch and reply.audit_event_id > 0
        # b routes with its last read until REFRESH of clock time has passed...
        assert not (await flags(b)).kill_switch
        a.clock.advance(REFRESH)
        # ...and with the change from then on.
        assert (await flags(b)).kill_switch
        fallback = await route_of(b)
        assert fallback.route.decision == S.ROUTE_DECISION_FALLBACK
        assert fallback.route.fallback_reason == S.FALLBACK_REASON_DISABLED

        await b.operator.SetRoutingFlags(mc_pb.SetRoutingFlagsRequest(kill_switch=False, reason="over"))
        await b.operator.SetRoutingFlags(mc_pb.SetRoutingFlagsRequest(vp_id=CODER, force_fallback=True,
                                                                      max_queue_depth=7, reason="drain coder"))
        a.clock.advance(REFRESH)
        lane = {lane.vp_id: lane for lane in (await flags(a)).lanes}[CODER]
        assert lane.force_fallback and lane.max_queue_depth == 7 and lane.quotas_set and lane.version == 2
        assert (await route_of(a)).route.fallback_reason == S.FALLBACK_REASON_FORCED
        only = await a.operator.GetRoutingFlags(mc_pb.GetRoutingFlagsRequest(vp_id=CODER))
        assert [lane.vp_id for lane in only.lanes] == [CODER]

        audit = [r.event async for r in a.missions.StreamMissionEvents(
            mc_pb.StreamMissionEventsRequest(event_types=[AUDIT_EVENT]))]
        assert [(e.vp_id, dict(e.payload["changes"])) for e in audit][0] == (
            "", {"kill_switch": {"before": False, "after": True}})
        assert audit[0].event_id == reply.audit_event_id and audit[0].payload["reason"] == "incident 42"
        assert audit[0].payload["actor"] == "ops"
        assert [e.vp_id for e in audit] == ["", "", CODER]
        assert set(audit[2].payload["changes"]) == {"force_fallback", "max_queue_depth"}
        await worker.close()


@pytest.mark.parametrize("request_fields, field", [
    ({"reason": "x"}, "kill_switch"),
    ({"kill_switch": True}, "reason"),
    ({"vp_id": CODER, "kill_switch": True, "reason": "x"}, "kill_switch"),
    ({"enabled": False, "kill_switch": True, "reason": "x"}, "enabled"),
    ({"vp_id": CODER, "max_queue_depth": -2, "reason": "x"}, "max_queue_depth"),
    ({"vp_id": CODER, "reason": "x"}, "vp_id"),
    ({"vp_id": "vp.nobody.primary", "enabled": False, "reason": "x"}, "vp_id"),
])
async def test_bad_changes_are_invalid_argument_and_change_nothing(sqlite_url, request_fields, field):
    async with fake_clock_stack(sqlite_url) as stack:
        before = await flags(stack)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stack.operator.SetRoutingFlags(mc_pb.SetRoutingFlagsRequest(**request_fields))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in refused.value.details()
        stack.clock.advance(REFRESH)
        after = await flags(stack)
        assert [(lane.vp_id, lane.version) for lane in after.lanes] == [(lane.vp_id, lane.version)
                                                                        for lane in before.lanes]
        assert not after.kill_switch


async def test_queue_quota_is_exact_inside_the_dispatch_transaction(db_url):
    # Routing's load view is cached for a minute: only the transaction's own count can hold the quota.
    settings = DispatcherSettings(heartbeat_interval=timedelta(seconds=1), health_cache_ttl=timedelta(seconds=60))
    async with fake_clock_stack(db_url, settings) as stack:
        worker = ScriptedWorker(stack, CODER)
        await worker.acquire()  # a live lease, no stream: queued missions stay queued
        await stack.operator.SetRoutingFlags(mc_pb.SetRoutingFlagsRequest(
            vp_id=CODER, max_in_flight=0, max_queue_depth=2, reason="quota test"))
        replies = await asyncio.gather(*(route_of(stack, objective=f"m{i}") for i in range(6)))
        decisions = sorted((r.route.decision, r.route.fallback_reason) for r in replies)
        assert decisions == sorted([(S.ROUTE_DECISION_DELEGATED, S.FALLBACK_REASON_UNSPECIFIED)] * 2
                                   + [(S.ROUTE_DECISION_FALLBACK, S.FALLBACK_REASON_OVER_CAPACITY)] * 4)
        queued = await stack.store.aread(lambda tx: tx.count_missions(CODER, ["queued"]))
        assert queued == 2
        await worker.close()
