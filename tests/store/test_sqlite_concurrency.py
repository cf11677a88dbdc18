"""Many writers on one SQLite file: nobody sees "database is locked", no update
is lost, and event ids come out gap-free in commit order."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from store_workload import check, seed, write_once

from services.common.store import SqlStore, create_engine_for
from services.common.store.engine import READ_ONLY_OPTION

HERE = Path(__file__).resolve().parent
THREADS = 50
PER_THREAD = 4


def run_threads(stores: list[SqlStore]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def writer(n: int) -> None:
        store = stores[n % len(stores)]
        try:
            start.wait()
            for i in range(PER_THREAD):
                store.run(lambda tx: write_once(tx, f"t{n}-{i}"))
                store.read(lambda tx: tx.last_event_id())
        except BaseException as error:  # reported through the returned list
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_fifty_threads_sharing_one_store(sqlite_url):
    with SqlStore(sqlite_url) as store:
        seed(store)
        assert run_threads([store]) == []
        check(store, THREADS * PER_THREAD)


def test_fifty_threads_over_five_stores(sqlite_url):
    """Separate stores share no in-process lock, so here SQLite's own locking
    (BEGIN IMMEDIATE under busy_timeout) is what keeps writers apart."""
    stores = [SqlStore(sqlite_url) for _ in range(5)]
    try:
        seed(stores[0])
        assert run_threads(stores) == []
        check(stores[0], THREADS * PER_THREAD)
    finally:
        for s in stores:
            s.close()


def test_four_processes_each_with_its_own_store(sqlite_url):
    processes, per_process = 4, 40
    # A fresh file: the children's SqlStore(url) migrate it concurrently.
    children = [
        subprocess.Popen([sys.executable, str(HERE / "sqlite_writer.py"), sqlite_url, f"p{n}", str(per_process)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in range(processes)
    ]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
        with SqlStore(sqlite_url, migrate=False) as store:
            seed(store)
        for child in children:  # release all writers at once
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    for child, (out, err) in zip(children, results):
        assert child.returncode == 0, err
        assert "locked" not in err and out.strip() == "done"
    with SqlStore(sqlite_url) as store:
        check(store, processes * per_process)


def _raw(url: str) -> sqlite3.Connection:
    """A plain sqlite3 connection that fails at once instead of waiting for a lock."""
    return sqlite3.connect(make_url(url).database, timeout=0, isolation_level=None)


def test_write_transactions_take_the_write_lock_at_begin(sqlite_url):
    SqlStore(sqlite_url).close()
    engine = create_engine_for(sqlite_url)
    probe = _raw(sqlite_url)
    try:
        with engine.connect() as conn:
            with conn.begin():  # nothing executed yet: the lock must come from BEGIN itself
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    probe.execute("BEGIN IMMEDIATE")
            probe.execute("BEGIN IMMEDIATE")  # released at commit
            probe.execute("ROLLBACK")
            conn.execution_options(**{READ_ONLY_OPTION: True})
            with conn.begin():  # a read transaction leaves writers alone
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
    finally:
        probe.close()
        engine.dispose()


def test_sqlite_connection_settings(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'store.db'}"  # parent created on demand
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert pragma("journal_mode") == "wal"
            assert pragma("busy_timeout") == 5000
            assert pragma("synchronous") == 1  # NORMAL
            assert pragma("foreign_keys") == 1
    finally:
        engine.dispose()
