"""The contended write transaction of the concurrency tests, and its checks."""

from __future__ import annotations

from dataclasses import replace

from store_factories import at, mission, session

from services.common.store import NewEvent

COUNTER = "counter"


def write_once(tx, tag: str) -> None:
    """Read-modify-write the shared counter, then insert rows of our own and an
    event carrying the counter value we committed."""
    counter = tx.get_session(COUNTER, for_update=True)
    value = counter.lease_epoch + 1
    tx.update_session(replace(counter, lease_epoch=value, lease_owner=tag))
    tx.insert_session(session(f"vp-{tag}"))
    tx.insert_mission(mission(f"m-{tag}", idempotency_key=f"k-{tag}"))
    tx.append_event(NewEvent("vp.test.counted", f"vp-{tag}", at(value), payload={"value": value}))


def seed(store) -> None:
    store.run(lambda tx: tx.insert_session(session(COUNTER, lease_epoch=0)))


def check(store, transactions: int) -> None:
    """No lost update, every row present, event ids gap-free and in commit order."""
    counter, missions, events = store.read(lambda tx: (
        tx.get_session(COUNTER),
        tx.count_missions("", []),
        tx.events_after(0, limit=transactions + 1),
    ))
    assert counter.lease_epoch == transactions
    assert missions == transactions
    assert len(store.read(lambda tx: tx.list_sessions(limit=transactions + 10))) == transactions + 1
    # The counter value is the commit position of the transaction that wrote the
    # event, so id == value means ids are handed out in commit order without gaps.
    assert [e.event_id for e in events] == list(range(1, transactions + 1))
    assert [e.payload["value"] for e in events] == list(range(1, transactions + 1))
