"""Lane health over a registry blip, on a FakeClock: while the registry is
unreachable, a lane whose worker stream is open and heartbeating keeps the last
view the registry gave, for at most one lease TTL after the last confirmed
renewal; a lane whose worker went quiet, or with no stream, is unhealthy as before."""

from __future__ import annotations

from datetime import timedelta

from services.common.contracts.vp.v1 import enums_pb2 as S
from tests.dispatcher.conftest import CODER, GENERAL, dispatch
from tests.support.scripted_worker import ScriptedWorker
from tests.support.stack import fake_clock_stack
from tests.support.waiting import async_wait_until

TTL_S = 30


async def beat(stack, worker) -> None:
    now = stack.clock.now()
    worker.heartbeat()
    connection = stack.core.hub.connections[worker.vp_id]
    await async_wait_until(lambda: _seen(connection, now), timeout=5, what="the heartbeat to be handled")


async def _seen(connection, now) -> bool:
    return connection.last_heartbeat_at == now


async def test_a_heartbeating_lane_stays_healthy_through_a_blip_for_at_most_one_ttl(db_url):
    async with fake_clock_stack(db_url) as stack:
        coder = ScriptedWorker(stack, CODER, ttl_s=TTL_S)
        await coder.connect()
        await ScriptedWorker(stack, GENERAL).acquire()  # leased, but no stream
        coder.heartbeat(seq=1)
        await coder.next("lease_renewed")
        renewed_at = stack.clock.now()
        before = await dispatch(stack, vp_id=CODER)  # routing has read the registry's view
        assert before.route.decision == S.ROUTE_DECISION_DELEGATED
        await coder.assignment()

        stack.memory_registry.down = True
        stack.clock.advance(10)
        await beat(stack, coder)
        during = await dispatch(stack, vp_id=CODER)
        assert during.route.decision == S.ROUTE_DECISION_DELEGATED, during.route
        assert (await coder.assignment()).mission.envelope.mission_id == during.mission.envelope.mission_id
        # A lane with no worker stream has nothing to vouch for it.
        assert (await dispatch(stack, vp_id=GENERAL, mission_type="task")).route.fallback_reason == \
            S.FALLBACK_REASON_UNHEALTHY

        # A worker that stopped heartbeating is not vouched for either...
        stack.clock.advance(3)  # > 2 heartbeat intervals (1 s here)
        assert (await dispatch(stack, vp_id=CODER)).route.fallback_reason == S.FALLBACK_REASON_UNHEALTHY
        # ...until it beats again.
        await beat(stack, coder)
        assert (await dispatch(stack, vp_id=CODER)).route.decision == S.ROUTE_DECISION_DELEGATED

        # One TTL after the last confirmed renewal the lease has lapsed: unhealthy, blip or not.
        stack.clock.advance(renewed_at + timedelta(seconds=TTL_S) - stack.clock.now())
        assert (await dispatch(stack, vp_id=CODER)).route.fallback_reason == S.FALLBACK_REASON_UNHEALTHY

        await coder.close()
