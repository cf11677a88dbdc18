"""Engines tuned for the store's concurrency model.

SQLite: writers must never see "database is locked" mid-transaction. In WAL
mode a DEFERRED transaction that reads and then writes has to upgrade its
lock, and if another writer committed in between, SQLite fails the upgrade at
once (SQLITE_BUSY_SNAPSHOT) without consulting busy_timeout. Taking the write
lock up front with BEGIN IMMEDIATE moves all waiting to BEGIN, where
busy_timeout applies. pysqlite's own transaction handling is switched off so
that we, not the driver, decide what BEGIN says.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url

BUSY_TIMEOUT_MS = 5000
#: An eager writer (create_engine_for(..., eager_writes=True)) retries BEGIN
#: IMMEDIATE this often instead of SQLite's busy handler, whose sleeps grow to
#: 100 ms: between another process's back-to-back transactions it gets the
#: lock within a fraction of a millisecond.
EAGER_RETRY_S = 0.0005
# The registry and the dispatcher share one store by default (as in compose,
# where both use one PostgreSQL database): the registry's vp.session.* events
# then reach StreamMissionEvents, which reads the one event log.
SHARED_DEFAULT_DB = "sqlite:///.vp/vp.db"
# Execution option a read-only transaction sets on its Connection.
READ_ONLY_OPTION = "vp_read_only"


def normalize_url(url: str | URL) -> URL:
    """Parse url; plain postgresql:// (and postgres://) select psycopg 3."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_sqlite(url: str | URL) -> bool:
    return normalize_url(url).get_backend_name() == "sqlite"


def create_engine_for(url: str | URL, *, eager_writes: bool = False) -> Engine:
    """``eager_writes`` (SQLite): this process's write transactions take the
    database lock as soon as it is free, ahead of other processes' writers that
    wait in SQLite's busy handler. The registry uses it, so that lease renewals
    never queue behind a dispatcher's traffic on a shared database file."""
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, eager_writes)
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise ValueError(f"unsupported PostgreSQL driver {parsed.drivername!r}; use postgresql+psycopg://")
        # No pool_pre_ping: it costs a round trip before every transaction. A
        # connection the server dropped fails its first statement instead, and
        # the store retries the transaction on a fresh one (retry.classify).
        return create_engine(parsed, pool_size=10, max_overflow=10)
    raise ValueError(f"unsupported database URL {parsed.render_as_string()!r}: use sqlite:/// or postgresql://")


def _sqlite_engine(url: URL, eager_writes: bool = False) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        # Each pooled connection would see its own empty database, so
        # migrations would land in one connection and queries run in another.
        raise ValueError("in-memory SQLite is not supported by the store; use a file, e.g. sqlite:///tmp/x.db")
    if not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        pool_size=8,
        max_overflow=8,
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin_eagerly if eager_writes else _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Driver autocommit: pysqlite stops emitting BEGIN (and implicit COMMITs
    # before DDL); _sqlite_on_begin emits the BEGIN instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first, so the journal-mode switch below also waits for locks.
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable against application crashes in WAL mode; only an
        # OS crash/power loss can drop the last commits, never corrupt.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(READ_ONLY_OPTION):
        conn.exec_driver_sql("BEGIN DEFERRED")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_on_begin_eagerly(conn: Connection) -> None:
    if conn.get_execution_options().get(READ_ONLY_OPTION):
        conn.exec_driver_sql("BEGIN DEFERRED")
        return
    raw = conn.connection.dbapi_connection
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
                if time.monotonic() >= deadline:
                    raise
                time.sleep(EAGER_RETRY_S)
    finally:
        raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
