"""The in-memory registry keeps the registry's lease rules on an injected clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.common.clock import FakeClock
from services.common.errors import DependencyUnavailable, LeaseHeld, LeaseSuperseded, SessionNotFound
from services.dispatcher.registry_memory import InMemoryRegistry
from services.dispatcher.registry_port import Registry

LANE = "vp.coder.primary"


async def test_leases_expire_when_the_clock_moves():
    clock = FakeClock()
    registry: Registry = InMemoryRegistry(clock)
    session = await registry.acquire(LANE, "w-1", ttl=timedelta(seconds=10))
    assert session.lease_epoch == 1
    assert (await registry.lanes())[LANE].healthy and (await registry.lease(LANE)).lease_live
    with pytest.raises(LeaseHeld):
        await registry.acquire(LANE, "w-2")
    clock.advance(11)
    assert not (await registry.lease(LANE)).lease_live and not (await registry.lanes())[LANE].healthy
    taken = await registry.acquire(LANE, "w-2", ttl=timedelta(seconds=10))
    assert taken.lease_epoch == 2
    with pytest.raises(LeaseSuperseded):
        await registry.renew(LANE, "w-1", 1, timedelta(seconds=10))
    renewed = await registry.renew(LANE, "w-2", 2, timedelta(seconds=30))
    assert renewed.lease_expires_at.ToDatetime().timestamp() == (clock.now() + timedelta(seconds=30)).timestamp()


async def test_unknown_lanes_and_an_unreachable_registry_fail_like_the_grpc_client():
    registry = InMemoryRegistry(FakeClock())
    with pytest.raises(SessionNotFound):
        await registry.session("vp.nobody.here")
    assert not (await registry.lease("vp.nobody.here")).lease_live
    await registry.acquire(LANE, "w-1")
    registry.down = True
    assert await registry.lanes() == {}
    with pytest.raises(DependencyUnavailable):
        await registry.session(LANE)
