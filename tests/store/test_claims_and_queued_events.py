"""The hot path's store operations: one-statement claims, queued events and
duplicate inserts, on both backends."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from store_factories import at, mission

from services.common.errors import IdempotencyConflict
from services.common.states import MissionState
from services.common.store import NewEvent, SqlStore

Q, R = MissionState.QUEUED, MissionState.RUNNING


@pytest.fixture
def store(db_url):
    with SqlStore(db_url) as s:
        yield s


def queued(mission_id, *, priority=0, created=0.0, lane="lane-a", **fields):
    return mission(mission_id, state=Q, lane=lane, priority=priority, created_at=at(created),
                   updated_at=at(created), run_id="", worker_owner="", lease_epoch=0, started_at=None,
                   queue_wait_seconds=None, **fields)


def test_claim_takes_the_queue_in_order_and_only_queued_missions_of_the_lane(store):
    store.run(lambda tx: [tx.insert_mission(m) for m in (
        queued("m-old", created=1), queued("m-new", created=2), queued("m-urgent", priority=5, created=3),
        queued("m-other-lane", lane="lane-b"), replace(queued("m-running"), state=R))])
    claimed = store.run(lambda tx: tx.claim_queued("lane-a", 2, owner="w", session_id="s", lease_epoch=7,
                                                   now=at(10)))
    assert [m.mission_id for m in claimed] == ["m-urgent", "m-old"]
    first = claimed[0]
    assert (first.state, first.worker_owner, first.session_id, first.lease_epoch) == (R, "w", "s", 7)
    assert first.started_at == first.updated_at == at(10)
    assert first.queue_wait_seconds == pytest.approx(7.0, abs=1e-3)
    store.run(lambda tx: tx.set_runs([("m-urgent", "r-1", at(100), 7.0)]))
    stored = store.read(lambda tx: tx.get_mission("m-urgent"))
    assert (stored.state, stored.run_id, stored.deadline, stored.queue_wait_seconds) == (R, "r-1", at(100), 7.0)
    again = store.run(lambda tx: tx.claim_queued("lane-a", 5, owner="w", session_id="s", lease_epoch=7, now=at(11)))
    assert [m.mission_id for m in again] == ["m-new"]
    assert store.run(lambda tx: tx.claim_queued("lane-a", 5, owner="w", session_id="s", lease_epoch=7,
                                                now=at(12))) == []


def test_concurrent_claims_never_take_the_same_mission(store, db_url):
    store.run(lambda tx: [tx.insert_mission(queued(f"m-{i:03}", created=i)) for i in range(60)])
    taken: list[list[str]] = []
    barrier = threading.Barrier(3)

    def claimer(owner):
        with SqlStore(db_url, migrate=False) as own:
            barrier.wait()
            mine = []
            while batch := own.run(lambda tx: tx.claim_queued("lane-a", 4, owner=owner, session_id="s",
                                                              lease_epoch=1, now=at(100))):
                mine += [m.mission_id for m in batch]
            taken.append(mine)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [mission_id for mine in taken for mission_id in mine]
    assert sorted(every) == [f"m-{i:03}" for i in range(60)]  # each exactly once


def test_queued_events_are_written_in_order_at_commit_and_before_reads(store):
    def work(tx):
        tx.queue_event(NewEvent("vp.test.a", "vp-1", at(1), mission_id="m-1"))
        tx.queue_event(NewEvent("vp.test.b", "vp-1", at(2), mission_id="m-1"))
        seen = [e.event_type for e in tx.events_after(0)]  # read-your-writes inside the transaction
        tx.append_event(NewEvent("vp.test.c", "vp-1", at(3)))
        tx.queue_event(NewEvent("vp.test.d", "vp-1", at(4), payload={"k": 1}))
        return seen

    assert store.run(work) == ["vp.test.a", "vp.test.b"]
    events = store.read(lambda tx: tx.events_after(0))
    assert [e.event_type for e in events] == ["vp.test.a", "vp.test.b", "vp.test.c", "vp.test.d"]
    assert [e.event_id for e in events] == sorted(e.event_id for e in events) and events[-1].payload == {"k": 1}


def test_queued_events_of_a_rolled_back_transaction_never_appear(store):
    def work(tx):
        tx.queue_event(NewEvent("vp.test.lost", "vp-1", at(1)))
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        store.run(work)
    assert store.read(lambda tx: tx.last_event_id()) == 0


def test_inserting_a_taken_mission_id_is_a_conflict_and_the_transaction_stays_usable(store):
    store.run(lambda tx: tx.insert_mission(queued("m-1")))

    def again(tx):
        with pytest.raises(IdempotencyConflict):
            tx.insert_mission(queued("m-1"))
        return tx.get_mission("m-1")

    assert store.run(again).mission_id == "m-1"


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_connection_the_server_dropped_is_replaced_without_a_ping(db_url):
    import uuid

    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from services.common.store import create_engine_for

    name = f"dropped-{uuid.uuid4().hex[:12]}"
    url = make_url(db_url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)
    admin = create_engine_for(db_url)
    with SqlStore(url) as s:
        s.run(lambda tx: tx.insert_mission(queued("m-1")))  # the pool now holds a live connection
        with admin.begin() as conn:
            killed = conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                          "WHERE application_name = :n"), {"n": name}).scalar_one()
        assert killed >= 1
        assert s.run(lambda tx: tx.get_mission("m-1", for_update=True)).mission_id == "m-1"
    admin.dispose()
