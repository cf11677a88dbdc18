"""PostgreSQL interleavings the store must survive, forced step by step: each
test holds one transaction open and waits until the other is provably blocked
on a lock inside the server before letting the first commit."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from store_factories import at, session

from services.common.store import NewEvent, SqlStore, create_engine_for

# Only the PostgreSQL variant of the shared db_url fixture.
pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("db_url", ["postgres"], indirect=True)]


@pytest.fixture
def pair(db_url):
    """Two stores on one database; the second tags its connections so the test
    can find them in pg_stat_activity."""
    name = f"store-b-{uuid.uuid4().hex[:12]}"
    url_b = make_url(db_url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)
    a, b = SqlStore(db_url), SqlStore(url_b, migrate=False)
    observer = create_engine_for(db_url)
    pool = ThreadPoolExecutor(2)
    yield a, b, lambda done: wait_until_blocked_or_done(observer, name, done), pool
    pool.shutdown(wait=True)
    a.close()
    b.close()
    observer.dispose()


def wait_until_blocked_or_done(observer: sa.Engine, application_name: str, done: Future) -> bool:
    """True once a connection of application_name waits on a lock; False if
    the future finished first (it was never blocked)."""
    query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name AND wait_event_type = 'Lock'")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if done.done():
            return False
        with observer.connect() as conn:
            if conn.execute(query, {"name": application_name}).scalar():
                return True
        time.sleep(0.01)
    raise AssertionError("the second transaction neither blocked nor finished")


def test_racing_session_inserts_retry_into_the_update_path(pair):
    a, b, wait_until_blocked, pool = pair
    a_inserted, release_a = threading.Event(), threading.Event()

    def create_and_hold(tx):
        assert tx.get_session("vp-1") is None
        tx.insert_session(session("vp-1", lease_epoch=1))
        a_inserted.set()
        assert release_a.wait(30)

    attempts = []

    def acquire(tx):
        current = tx.get_session("vp-1", for_update=True)
        attempts.append("insert" if current is None else "update")
        if current is None:
            tx.insert_session(session("vp-1", lease_epoch=1))
        else:
            tx.update_session(replace(current, lease_epoch=current.lease_epoch + 1, updated_at=at(5)))

    first = pool.submit(a.run, create_and_hold)
    assert a_inserted.wait(30)
    second = pool.submit(b.run, acquire)
    try:
        # b found no row (a's is uncommitted) and now waits on a's key.
        assert wait_until_blocked(second)
    finally:
        release_a.set()
    first.result(30)
    second.result(30)
    assert attempts == ["insert", "update"]
    assert a.read(lambda tx: tx.get_session("vp-1")).lease_epoch == 2


def test_event_transactions_commit_in_event_id_order(pair):
    a, b, wait_until_blocked, pool = pair
    a_appended, release_a = threading.Event(), threading.Event()

    def append_and_hold(tx):
        event = tx.append_event(NewEvent("vp.test.first", "vp-1", at(0)))
        a_appended.set()
        assert release_a.wait(30)
        return event.event_id

    def append(tx):
        return tx.append_event(NewEvent("vp.test.second", "vp-1", at(1))).event_id

    first = pool.submit(a.run, append_and_hold)
    assert a_appended.wait(30)
    second = pool.submit(b.run, append)
    try:
        # Were b free to commit now, a poller would see b's id and then skip a's.
        assert wait_until_blocked(second), "an event commit overtook an earlier, uncommitted event"
        assert a.read(lambda tx: tx.events_after(0)) == []
    finally:
        release_a.set()
    first_id, second_id = first.result(30), second.result(30)
    assert first_id < second_id
    assert [e.event_id for e in a.read(lambda tx: tx.events_after(0))] == [first_id, second_id]
