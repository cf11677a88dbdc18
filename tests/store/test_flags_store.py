"""Routing flags in the store, on both backends: seeding inserts only missing
rows (a runtime change survives a restart that seeds again), put bumps the
version, and a row locked for update holds off a concurrent writer until commit."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from services.common.store import SqlStore
from services.common.store.records import GLOBAL_SCOPE, FlagsRecord
from store_factories import at


@pytest.fixture
def store(db_url):
    s = SqlStore(db_url)
    yield s
    s.close()


def test_seed_then_put_then_seed_again_keeps_the_runtime_change(store):
    seed = [FlagsRecord(GLOBAL_SCOPE, updated_at=at(0), updated_by="env"),
            FlagsRecord("vp.coder.primary", max_queue_depth=5, updated_at=at(0), updated_by="env")]
    assert store.run(lambda tx: tx.seed_routing_flags(seed)) == [GLOBAL_SCOPE, "vp.coder.primary"]
    current = store.read(lambda tx: tx.get_routing_flags(GLOBAL_SCOPE))
    changed = store.run(lambda tx: tx.put_routing_flags(replace(current, kill_switch=True, updated_at=at(5),
                                                                updated_by="ops")))
    assert changed.version == 2 and changed.kill_switch
    # A restart seeds from its environment again: nothing is overwritten.
    assert store.run(lambda tx: tx.seed_routing_flags(seed)) == []
    rows = {r.scope: r for r in store.read(lambda tx: tx.routing_flags())}
    assert rows[GLOBAL_SCOPE].kill_switch and rows[GLOBAL_SCOPE].updated_by == "ops"
    assert rows[GLOBAL_SCOPE].updated_at == at(5)
    assert rows["vp.coder.primary"] == FlagsRecord("vp.coder.primary", max_queue_depth=5, version=1,
                                                   updated_at=at(0), updated_by="env")
    new_lane = store.run(lambda tx: tx.put_routing_flags(FlagsRecord("vp.x", enabled=False, updated_at=at(6))))
    assert new_lane.version == 1 and store.read(lambda tx: tx.get_routing_flags("vp.x")).enabled is False
    assert store.read(lambda tx: tx.get_routing_flags("vp.none")) is None


def test_a_row_locked_for_update_holds_off_another_writer_until_commit(store):
    store.run(lambda tx: tx.seed_routing_flags([FlagsRecord("lane", updated_at=at(0))]))
    locked, release, order = threading.Event(), threading.Event(), []

    def holder(tx):
        tx.get_routing_flags("lane", for_update=True)
        locked.set()
        release.wait(10)
        order.append("holder")
        return tx.put_routing_flags(FlagsRecord("lane", max_queue_depth=1, updated_at=at(1)))

    def other(tx):
        row = tx.get_routing_flags("lane", for_update=True)
        order.append("other")
        return tx.put_routing_flags(replace(row, max_queue_depth=(row.max_queue_depth or 0) + 1, updated_at=at(2)))

    first = threading.Thread(target=lambda: store.run(holder))
    first.start()
    assert locked.wait(10)
    second = threading.Thread(target=lambda: store.run(other))
    second.start()
    second.join(0.3)  # it must still be waiting for the lock (a bounded check, not a sleep for state)
    release.set()
    first.join(10)
    second.join(10)
    assert order == ["holder", "other"]
    final = store.read(lambda tx: tx.get_routing_flags("lane"))
    assert final.max_queue_depth == 2 and final.version == 3
