"""Group commit over the store on both backends: one transaction per turn, each
caller its own answer after commit, one failing member costs no one else."""

from __future__ import annotations

import asyncio

import pytest

from services.common.errors import IdempotencyConflict
from services.common.store import NewEvent, SqlStore
from services.dispatcher.group_commit import GroupCommit
from tests.store.store_factories import at, mission


@pytest.fixture
def store(db_url):
    with SqlStore(db_url) as s:
        yield s


def event(name):
    return lambda tx: tx.append_event(NewEvent(name, "vp-1", at(0))).event_id


async def test_writes_of_one_turn_share_one_commit_in_order(store):
    commits = GroupCommit(store)
    ids = await asyncio.gather(*(commits.run(event(f"vp.test.{i}")) for i in range(50)))
    assert ids == sorted(ids) and len(set(ids)) == 50
    assert commits.commits == 1 and commits.applied == 50
    names = [e.event_type for e in store.read(lambda tx: tx.events_after(0))]
    assert names == [f"vp.test.{i}" for i in range(50)]


async def test_a_failing_member_gets_its_error_and_the_others_commit(store):
    commits = GroupCommit(store)
    store.run(lambda tx: tx.insert_mission(mission("m-taken")))

    def duplicate(tx):
        tx.append_event(NewEvent("vp.test.never", "vp-1", at(0)))  # rolled back with the member
        tx.insert_mission(mission("m-taken"))

    results = await asyncio.gather(commits.run(event("vp.test.a")), commits.run(duplicate),
                                   commits.run(event("vp.test.b")), return_exceptions=True)
    assert isinstance(results[1], IdempotencyConflict)
    names = [e.event_type for e in store.read(lambda tx: tx.events_after(0))]
    assert names == ["vp.test.a", "vp.test.b"]


async def test_writes_submitted_while_a_commit_runs_go_in_the_next_one(store):
    commits = GroupCommit(store)
    first = commits.submit(event("vp.test.first"))
    await asyncio.sleep(0)  # the drain has started the first transaction
    later = [commits.submit(event(f"vp.test.later{i}")) for i in range(5)]
    await asyncio.gather(first, *later)
    assert commits.commits == 2 and commits.applied == 6
