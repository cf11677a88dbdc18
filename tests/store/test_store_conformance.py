"""One behavioural suite for the Store, run on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import contextvars
import os
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

from services.common.errors import IdempotencyConflict, MissionNotFound, SessionNotFound
from services.common.states import MissionState, SessionStatus
from services.common.store import NewEvent, SqlStore, create_engine_for, current_revision, upgrade
from services.common.store.migrate import heads
from services.common.store.schema import metadata
from services.common.timeutil import NaiveDatetimeError
from store_factories import at, mission, session

REPO = Path(__file__).resolve().parents[2]
TOKYO = timezone(timedelta(hours=9))
NEW_YORK = timezone(timedelta(hours=-5))
Q, R, B, C = MissionState.QUEUED, MissionState.RUNNING, MissionState.BLOCKED, MissionState.COMPLETED


@pytest.fixture
def store(db_url):
    s = SqlStore(db_url)
    yield s
    s.close()


def everything(tx):
    """The full store contents, to prove a failed write changed nothing."""
    return (
        tx.list_sessions(limit=1000),
        tx.list_missions(limit=1000),
        tx.events_after(0, limit=1000),
    )


# --- sessions ---------------------------------------------------------------


def test_session_insert_get_update(store):
    original = session("vp-1")
    store.run(lambda tx: tx.insert_session(original))
    assert store.read(lambda tx: tx.get_session("vp-1")) == original
    assert store.read(lambda tx: tx.get_session("nobody")) is None

    changed = replace(original, status=SessionStatus.DEGRADED, lease_epoch=4, lease_expires_at=None,
                      last_error="lost", runtime_id="rt-2", updated_at=at(9))
    store.run(lambda tx: tx.update_session(changed))
    assert store.read(lambda tx: tx.get_session("vp-1", for_update=False)) == changed
    assert store.run(lambda tx: tx.get_session("vp-1", for_update=True)) == changed

    with pytest.raises(SessionNotFound):
        store.run(lambda tx: tx.update_session(session("ghost")))


def test_duplicate_session_insert_is_an_error_not_swallowed(store):
    store.run(lambda tx: tx.insert_session(session("vp-1")))
    with pytest.raises(sa.exc.IntegrityError):
        store.run(lambda tx: tx.insert_session(session("vp-1", session_id="other")))
    assert store.read(lambda tx: tx.get_session("vp-1")).session_id == "sess-vp-1"


def test_list_sessions_pages_by_vp_id_with_filters(store):
    ids = ["alpha-2", "alpha-1", "alpha_x", "ALPHA-3", "beta-1", "alpha-10", "gamma"]
    statuses = {"beta-1": SessionStatus.IDLE, "gamma": SessionStatus.RETIRED, "alpha-10": SessionStatus.IDLE}

    def insert_all(tx):
        for vp_id in ids:
            tx.insert_session(session(vp_id, statuses.get(vp_id, SessionStatus.ACTIVE)))

    store.run(insert_all)

    def pages(**filters):
        seen, after = [], ""
        while True:
            page = store.read(lambda tx: tx.list_sessions(after_vp_id=after, limit=2, **filters))
            assert len(page) <= 2
            seen += [s.vp_id for s in page]
            if len(page) < 2:
                return seen
            after = page[-1].vp_id

    assert pages() == sorted(ids)
    # The prefix is literal: "_" is no wildcard and case matters, on both backends.
    assert pages(vp_id_prefix="alpha-") == ["alpha-1", "alpha-10", "alpha-2"]
    assert pages(vp_id_prefix="alpha_") == ["alpha_x"]
    assert pages(statuses=[SessionStatus.IDLE]) == ["alpha-10", "beta-1"]
    assert pages(statuses=[SessionStatus.IDLE], vp_id_prefix="alpha") == ["alpha-10"]
    assert store.read(lambda tx: tx.list_sessions(after_vp_id="alpha_x", limit=100))[0].vp_id == "beta-1"

    with_status = store.read(lambda tx: tx.sessions_with_status([SessionStatus.IDLE, SessionStatus.RETIRED]))
    assert [s.vp_id for s in with_status] == ["alpha-10", "beta-1", "gamma"]
    assert with_status[2].status is SessionStatus.RETIRED


# --- missions ---------------------------------------------------------------


def test_mission_insert_get_update(store):
    original = mission("m-1", idempotency_key="key-1", deadline=at(60), priority=5,
                       shadow={"of": "m-0", "diff": [1, 2]}, cancel_requested=True)
    store.run(lambda tx: tx.insert_mission(original))
    assert store.read(lambda tx: tx.get_mission("m-1")) == original
    assert store.read(lambda tx: tx.get_mission_by_idempotency_key("key-1")) == original
    assert store.read(lambda tx: tx.get_mission_by_idempotency_key("key-2")) is None
    assert store.read(lambda tx: tx.get_mission("m-2")) is None

    done = replace(original, state=C, attempt=1, result_ref="s3://r/1", summary="ok", run_id="run-1",
                   started_at=at(2), completed_at=at(3), updated_at=at(3), envelope={"replaced": True})
    store.run(lambda tx: tx.update_mission(done))
    got = store.run(lambda tx: tx.get_mission("m-1", for_update=True))
    assert got == done
    assert got.state is MissionState.COMPLETED

    with pytest.raises(MissionNotFound):
        store.run(lambda tx: tx.update_mission(mission("ghost")))


def test_idempotency_conflict_raises_and_leaves_store_unchanged(store):
    first = mission("m-1", idempotency_key="dup-key")
    store.run(lambda tx: tx.insert_mission(first))
    before = store.read(everything)

    def conflicting(tx):
        tx.append_event(NewEvent("vp.mission.dispatched", "vp-1", at(1), mission_id="m-2"))
        tx.insert_mission(mission("m-2", idempotency_key="dup-key"))

    with pytest.raises(IdempotencyConflict, match="dup-key"):
        store.run(conflicting)
    assert store.read(everything) == before

    # Missions without a key never conflict with each other.
    store.run(lambda tx: [tx.insert_mission(mission(f"free-{i}")) for i in range(2)])
    assert store.read(lambda tx: tx.count_missions("", [])) == 3


def test_transaction_stays_usable_after_idempotency_conflict(store):
    """The replay path: catch the conflict, load the mission holding the key, keep writing."""
    store.run(lambda tx: tx.insert_mission(mission("m-1", idempotency_key="k")))

    def replay(tx):
        try:
            tx.insert_mission(mission("m-2", idempotency_key="k"))
        except IdempotencyConflict:
            holder = tx.get_mission_by_idempotency_key("k")
            tx.append_event(NewEvent("vp.mission.replayed", "vp-1", at(1), mission_id=holder.mission_id))
            return holder.mission_id

    assert store.run(replay) == "m-1"
    assert [e.event_type for e in store.read(lambda tx: tx.events_after(0))] == ["vp.mission.replayed"]
    assert store.read(lambda tx: tx.get_mission("m-2")) is None


def test_list_missions_pages_by_created_at_then_id_with_filters(store):
    specs = [  # (mission_id, created second, vp_id, state, source_session_id)
        ("m-e", 5, "vp-1", Q, "src-1"),
        ("m-b", 1, "vp-2", R, "src-1"),
        ("m-d", 1, "vp-1", Q, "src-2"),  # same created_at as m-b and m-c: mission_id breaks the tie
        ("m-c", 1, "vp-1", C, "src-1"),
        ("m-a", 9, "vp-2", Q, "src-2"),
        ("m-f", 0, "vp-1", B, "src-1"),
    ]
    store.run(lambda tx: [tx.insert_mission(mission(m, created_at=at(s), vp_id=v, state=st, source_session_id=src))
                          for m, s, v, st, src in specs])

    def pages(**filters):
        seen, after = [], None
        while True:
            page = store.read(lambda tx: tx.list_missions(after=after, limit=2, **filters))
            seen += [m.mission_id for m in page]
            if len(page) < 2:
                return seen
            after = (page[-1].created_at, page[-1].mission_id)

    assert pages() == ["m-f", "m-b", "m-c", "m-d", "m-e", "m-a"]
    assert pages(vp_id="vp-1") == ["m-f", "m-c", "m-d", "m-e"]
    assert pages(states=[Q, B]) == ["m-f", "m-d", "m-e", "m-a"]
    assert pages(source_session_id="src-2") == ["m-d", "m-a"]
    assert pages(vp_id="vp-1", states=[Q], source_session_id="src-2") == ["m-d"]
    def newest(**filters):
        seen, after = [], None
        while True:
            page = store.read(lambda tx: tx.list_missions(after=after, limit=2, newest_first=True, **filters))
            seen += [m.mission_id for m in page]
            if len(page) < 2:
                return seen
            after = (page[-1].created_at, page[-1].mission_id)

    assert newest() == ["m-a", "m-e", "m-d", "m-c", "m-b", "m-f"]
    assert newest(vp_id="vp-1", states=[Q, B, C]) == ["m-e", "m-d", "m-c", "m-f"]
    # A page cursor given in another zone is the same instant.
    after = (at(1).astimezone(NEW_YORK), "m-c")
    assert [m.mission_id for m in store.read(lambda tx: tx.list_missions(after=after))] == ["m-d", "m-e", "m-a"]


def test_next_queued_highest_priority_then_oldest(store):
    store.run(lambda tx: [tx.insert_mission(m) for m in [
        mission("old-low", priority=0, created_at=at(0)),
        mission("new-high", priority=9, created_at=at(5)),
        mission("old-high", priority=9, created_at=at(1)),
        mission("tie-b", priority=3, created_at=at(2)),
        mission("tie-a", priority=3, created_at=at(2)),
        mission("running", priority=99, state=R),
        mission("other-lane", priority=99, lane="lane-b"),
    ]])
    queue = store.read(lambda tx: tx.next_queued("lane-a", 10))
    assert [m.mission_id for m in queue] == ["old-high", "new-high", "tie-a", "tie-b", "old-low"]
    assert [m.mission_id for m in store.read(lambda tx: tx.next_queued("lane-a", 2))] == ["old-high", "new-high"]
    assert [m.mission_id for m in store.read(lambda tx: tx.next_queued("lane-b", 10))] == ["other-lane"]
    assert store.read(lambda tx: tx.next_queued("lane-c", 10)) == []


def test_counts_states_and_deadlines(store):
    store.run(lambda tx: [tx.insert_mission(m) for m in [
        mission("q1", state=Q, created_at=at(3), deadline=at(100)),
        mission("q2", state=Q, created_at=at(1), deadline=at(50)),
        mission("r1", state=R, created_at=at(2), deadline=at(10)),
        mission("r2", state=R, lane="lane-b", deadline=at(100).astimezone(TOKYO)),
        mission("c1", state=C, deadline=at(1)),
        mission("b1", state=B),
    ]])
    assert store.read(lambda tx: tx.count_missions("lane-a", [Q, R])) == 3
    assert store.read(lambda tx: tx.count_missions("lane-b", [Q, R])) == 1
    assert store.read(lambda tx: tx.count_missions("", [R])) == 2
    assert store.read(lambda tx: tx.count_missions("lane-a", [MissionState.FAILED])) == 0

    in_states = store.read(lambda tx: tx.missions_in_states([Q, R]))
    assert [m.mission_id for m in in_states] == ["r2", "q2", "r1", "q1"]
    assert [m.mission_id for m in store.read(lambda tx: tx.missions_in_states([R], lane="lane-b"))] == ["r2"]

    def past(now, states=(Q, R, B)):
        return [m.mission_id for m in store.read(lambda tx: tx.missions_past_deadline(now, states))]

    assert past(at(5)) == []
    assert past(at(10)) == ["r1"]  # a deadline is past once reached
    assert past(at(60).astimezone(NEW_YORK)) == ["r1", "q2"]
    assert past(at(100)) == ["r1", "q2", "q1", "r2"]
    assert past(at(100), [R]) == ["r1", "r2"]


# --- events and cursors -------------------------------------------------------


def test_events_append_and_filter(store):
    assert store.read(lambda tx: tx.last_event_id()) == 0
    specs = [("vp.mission.dispatched", "vp-1", "m-1"), ("vp.session.created", "vp-2", ""),
             ("vp.mission.started", "vp-1", "m-1"), ("vp.mission.dispatched", "vp-2", "m-2")]
    appended = []
    for event_type, vp_id, mission_id in specs:
        new = NewEvent(event_type, vp_id, at(len(appended)), mission_id=mission_id,
                       payload={"n": len(appended), "nested": {"k": [1, "x"]}})
        appended.append(store.run(lambda tx: tx.append_event(new)))
    ids = [e.event_id for e in appended]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert store.read(lambda tx: tx.last_event_id()) == ids[-1]
    assert store.read(lambda tx: tx.events_after(0)) == appended

    def after(after_id, **filters):
        return [e.event_id for e in store.read(lambda tx: tx.events_after(after_id, **filters))]

    assert after(ids[1]) == ids[2:]
    assert after(0, mission_id="m-1") == [ids[0], ids[2]]
    assert after(0, vp_id="vp-2") == [ids[1], ids[3]]
    assert after(0, event_types=["vp.mission.dispatched"]) == [ids[0], ids[3]]
    assert after(ids[0], vp_id="vp-1", event_types=["vp.mission.started", "x"]) == [ids[2]]
    assert after(0, limit=2) == ids[:2]
    assert after(ids[-1]) == []


def test_events_of_a_rolled_back_transaction_never_appear(store):
    def append_then_fail(tx):
        tx.append_event(NewEvent("vp.mission.dispatched", "vp-1", at(0)))
        raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        store.run(append_then_fail)
    assert store.read(lambda tx: tx.events_after(0)) == []
    kept = store.run(lambda tx: tx.append_event(NewEvent("vp.mission.started", "vp-1", at(1))))
    assert store.read(lambda tx: tx.events_after(0)) == [kept]


def test_cursors_get_set_overwrite(store):
    assert store.read(lambda tx: tx.get_cursor("dispatcher")) is None
    store.run(lambda tx: tx.set_cursor("dispatcher", 7, at(0)))
    store.run(lambda tx: tx.set_cursor("audit", 2, at(0)))
    assert store.read(lambda tx: tx.get_cursor("dispatcher")) == 7
    store.run(lambda tx: tx.set_cursor("dispatcher", 12, at(1)))
    assert store.read(lambda tx: tx.get_cursor("dispatcher")) == 12
    store.run(lambda tx: tx.set_cursor("dispatcher", 3, at(2)))  # replays may move it back
    assert store.read(lambda tx: (tx.get_cursor("dispatcher"), tx.get_cursor("audit"))) == (3, 2)


# --- datetimes --------------------------------------------------------------


def _assert_utc(value: datetime, expected: datetime) -> None:
    assert value == expected
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    assert value.replace(tzinfo=None) == expected.astimezone(timezone.utc).replace(tzinfo=None)


def _in_pg_zone(db_url: str, zone: str) -> str:
    """The same database, with a session TimeZone that is not UTC."""
    url = make_url(db_url)
    if url.get_backend_name() != "postgresql":
        return db_url
    options = f"{url.query.get('options', '')} -ctimezone={zone}".strip()
    return url.update_query_dict({"options": options}).render_as_string(hide_password=False)


def test_aware_datetimes_come_back_as_the_same_instant_in_utc(db_url):
    with SqlStore(_in_pg_zone(db_url, "Asia/Kolkata")) as store:
        tokyo, new_york = at(0).astimezone(TOKYO), at(3600.5).astimezone(NEW_YORK)
        store.run(lambda tx: tx.insert_session(session("vp-1", created_at=tokyo, lease_expires_at=new_york)))
        store.run(lambda tx: tx.insert_mission(mission("m-1", deadline=new_york, started_at=tokyo)))
        event = store.run(lambda tx: tx.append_event(NewEvent("e", "vp-1", new_york)))
        store.run(lambda tx: tx.set_cursor("c", event.event_id, tokyo))

        got = store.read(lambda tx: tx.get_session("vp-1"))
        _assert_utc(got.created_at, tokyo)
        _assert_utc(got.lease_expires_at, new_york)
        _assert_utc(got.updated_at, at(1))
        m = store.read(lambda tx: tx.get_mission("m-1"))
        _assert_utc(m.deadline, new_york)
        _assert_utc(m.started_at, tokyo)
        _assert_utc(event.emitted_at, new_york)
        _assert_utc(store.read(lambda tx: tx.events_after(0))[0].emitted_at, new_york)


@pytest.mark.parametrize("write", [
    lambda tx: tx.insert_session(session("vp-1", created_at=datetime(2026, 1, 1))),
    lambda tx: tx.insert_mission(mission("m-1", deadline=datetime(2026, 1, 1))),
    lambda tx: tx.append_event(NewEvent("e", "vp-1", datetime(2026, 1, 1))),
    lambda tx: tx.set_cursor("c", 1, datetime(2026, 1, 1)),
], ids=["session", "mission", "event", "cursor"])
def test_naive_datetimes_are_refused_and_nothing_is_written(store, write):
    def write_after_valid_work(tx):
        tx.insert_session(session("vp-valid"))
        write(tx)

    with pytest.raises(NaiveDatetimeError):
        store.run(write_after_valid_work)
    assert store.read(everything) == ([], [], [])
    assert store.read(lambda tx: tx.get_cursor("c")) is None


def test_naive_datetimes_are_refused_in_queries(store):
    with pytest.raises(NaiveDatetimeError):
        store.read(lambda tx: tx.missions_past_deadline(datetime(2026, 1, 1), [Q]))
    with pytest.raises(NaiveDatetimeError):
        store.read(lambda tx: tx.list_missions(after=(datetime(2026, 1, 1), "m")))


# --- transactions -----------------------------------------------------------


def test_read_transactions_refuse_writes(store):
    with pytest.raises(RuntimeError, match="store.run"):
        store.read(lambda tx: tx.insert_session(session("vp-1")))
    with pytest.raises(RuntimeError, match="store.run"):
        store.read(lambda tx: tx.get_mission("m-1", for_update=True))
    assert store.read(everything) == ([], [], [])


def test_nested_transactions_on_one_store_are_refused(store):
    def nested(tx):
        tx.insert_session(session("vp-1"))
        store.run(lambda inner: inner.insert_session(session("vp-2")))

    with pytest.raises(RuntimeError, match="inside another transaction"):
        store.run(nested)
    with pytest.raises(RuntimeError, match="inside another transaction"):
        store.read(lambda tx: store.read(lambda inner: inner.last_event_id()))
    assert store.read(everything) == ([], [], [])
    store.run(lambda tx: tx.insert_session(session("vp-3")))  # the guard was reset


def test_a_read_sees_one_snapshot_across_its_queries(store):
    store.run(lambda tx: tx.insert_mission(mission("m-1")))
    first_query_done, other_write_done = threading.Event(), threading.Event()

    def two_queries(tx):
        before = tx.count_missions("", [])
        first_query_done.set()
        assert other_write_done.wait(30)
        return before, tx.count_missions("", []), tx.get_mission("m-2")

    results = []
    reader = threading.Thread(target=lambda: results.append(store.read(two_queries)))
    reader.start()
    assert first_query_done.wait(30)
    store.run(lambda tx: tx.insert_mission(mission("m-2")))
    other_write_done.set()
    reader.join(30)
    assert results == [(1, 1, None)]
    assert store.read(lambda tx: tx.count_missions("", [])) == 2


async def test_async_calls_run_on_the_store_pool_with_context(store):
    request_id = contextvars.ContextVar("request_id")
    request_id.set("req-7")

    def work(tx):
        tx.insert_session(session("vp-1"))
        return threading.current_thread().name, request_id.get()

    thread_name, seen = await store.arun(work)
    assert thread_name.startswith("vp-store") and seen == "req-7"
    results = await asyncio.gather(*(store.aread(lambda tx: tx.get_session("vp-1")) for _ in range(8)))
    assert all(r.vp_id == "vp-1" for r in results)


def test_close_is_idempotent(db_url):
    s = SqlStore(db_url)
    s.close()
    s.close()


# --- migrations -------------------------------------------------------------


def test_exactly_one_alembic_head():
    # Two migrations written in parallel on the same parent would make two heads.
    assert len(heads()) == 1, heads()


def test_upgrade_is_idempotent_and_concurrency_safe(db_url):
    assert current_revision(db_url) is None
    errors = []

    def migrate():
        try:
            upgrade(db_url)
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    upgrade(db_url)
    assert [current_revision(db_url)] == heads()
    with SqlStore(db_url) as s:  # migrate-on-open over an up-to-date database
        s.run(lambda tx: tx.insert_session(session("vp-1")))
    upgrade(db_url)
    assert [current_revision(db_url)] == heads()


def test_migrated_schema_matches_schema_py(db_url):
    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_migrate_command_line_reads_vp_db_url(db_url):
    env = {**os.environ, "VP_DB_URL": db_url, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "services.common.store.migrate"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"revision {heads()[0]}" in done.stdout
    assert [current_revision(db_url)] == heads()


def test_in_memory_sqlite_is_refused():
    with pytest.raises(ValueError, match="in-memory"):
        SqlStore("sqlite://")


def test_postgres_urls_select_psycopg():
    engine = create_engine_for("postgresql://u@127.0.0.1:1/x")
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()
