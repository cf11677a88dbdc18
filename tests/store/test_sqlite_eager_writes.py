"""An eager writer (the registry's store) waits for a busy SQLite database like
any writer, takes the lock as soon as it is free, and leaves the connection's
busy_timeout as it was."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import text

from services.common.store.engine import BUSY_TIMEOUT_MS, create_engine_for


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'eager.db'}"


def test_eager_write_waits_for_the_lock_and_then_commits(db, tmp_path):
    engine = create_engine_for(db, eager_writes=True)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
    blocker = sqlite3.connect(str(tmp_path / "eager.db"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    started, done = threading.Event(), threading.Event()

    def write():
        started.set()
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert started.wait(10)
    assert not done.wait(0.2)  # still waiting for the lock, not failed at once
    blocker.execute("COMMIT")
    assert done.wait(10)
    writer.join(10)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS
    blocker.close()
    engine.dispose()
