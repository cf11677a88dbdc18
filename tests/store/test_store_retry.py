"""Which errors the store retries, and that retrying is bounded."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
import sqlalchemy as sa

from services.common.errors import StoreBusy
from services.common.store.retry import Transient, call_with_retry, classify


@pytest.fixture
def sqlite_busy(tmp_path) -> sa.exc.OperationalError:
    """A real SQLITE_BUSY, as SQLAlchemy wraps it."""
    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as raised:
            other.execute("BEGIN IMMEDIATE")
    finally:
        holder.close()
        other.close()
    return sa.exc.OperationalError("BEGIN IMMEDIATE", None, raised.value)


def failing(times: int, error: BaseException, result: str = "ok"):
    calls = []

    def attempt():
        calls.append(1)
        if len(calls) <= times:
            raise error
        return result

    return attempt, calls


def test_sqlite_busy_is_retried_until_it_clears(sqlite_busy):
    assert classify(sqlite_busy) is Transient.BUSY
    attempt, calls = failing(3, sqlite_busy)
    assert call_with_retry(attempt) == "ok"
    assert len(calls) == 4


def test_postgres_serialization_and_deadlock_are_retried():
    for error in (psycopg.errors.SerializationFailure("x"), psycopg.errors.DeadlockDetected("x")):
        wrapped = sa.exc.OperationalError("UPDATE", None, error)
        assert classify(wrapped) is Transient.BUSY
        attempt, calls = failing(2, wrapped)
        assert call_with_retry(attempt) == "ok" and len(calls) == 3


def test_persistent_conflict_becomes_store_busy_within_budget(sqlite_busy):
    attempt, calls = failing(10**6, sqlite_busy)
    with pytest.raises(StoreBusy) as raised:
        call_with_retry(attempt, budget_s=0.05)
    assert raised.value.__cause__ is sqlite_busy
    assert raised.value.retryable
    assert 1 < len(calls) < 10**6


@pytest.mark.parametrize("error", [
    sa.exc.IntegrityError("INSERT", None, sqlite3.IntegrityError("UNIQUE constraint failed: vp_sessions.vp_id")),
    sa.exc.ProgrammingError("SELECT", None, psycopg.errors.UndefinedTable("no such table")),
    ValueError("not a storage error"),
], ids=["integrity", "undefined-table", "value-error"])
def test_other_errors_propagate_unchanged_without_retry(error):
    attempt, calls = failing(1, error)
    with pytest.raises(type(error)) as raised:
        call_with_retry(attempt)
    assert raised.value is error
    assert len(calls) == 1
    assert classify(error) is None
