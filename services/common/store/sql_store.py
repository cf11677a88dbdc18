"""SqlStore: the Store protocol on SQLite (one host) or PostgreSQL (many)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any, TypeVar

from services.common.store.engine import READ_ONLY_OPTION, create_engine_for
from services.common.store.event_queries import EventQueries
from services.common.store.flag_queries import FlagQueries
from services.common.store.interface import Tx
from services.common.store.migrate import upgrade_engine
from services.common.store.mission_queries import MissionQueries
from services.common.store.retry import call_with_retry
from services.common.store.session_queries import SessionQueries

T = TypeVar("T")


class SqlTx(SessionQueries, MissionQueries, EventQueries, FlagQueries):
    """One open transaction. Only valid inside the fn given to run/read."""


class SqlStore:
    """The durable store. fn passed to run/read may be attempted more than
    once (after a transient conflict), so it must do nothing but store work."""

    def __init__(self, url: str, *, migrate: bool = True, eager_writes: bool = False) -> None:
        """``eager_writes``: see engine.create_engine_for (SQLite only)."""
        self.url = url
        self._engine = create_engine_for(url, eager_writes=eager_writes)
        sqlite = self._engine.dialect.name == "sqlite"
        try:
            if migrate:
                upgrade_engine(self._engine)
        except BaseException:
            self._engine.dispose()
            raise
        # SQLite admits one writer at a time anyway. Queuing this process's
        # writers on a lock hands the database over the moment it is free,
        # where busy_timeout would poll with growing sleeps; other processes
        # still wait on busy_timeout.
        self._write_lock: threading.Lock | None = threading.Lock() if sqlite else None
        # SQLite: one writer plus a few WAL readers; PostgreSQL: one thread per pooled connection.
        workers = 4 if sqlite else self._engine.pool.size()  # type: ignore[attr-defined]
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vp-store")
        self._in_transaction = threading.local()
        self._closed = False

    def __repr__(self) -> str:
        return f"SqlStore({self._engine.url.render_as_string(hide_password=True)!r})"

    def run(self, fn: Callable[[Tx], T]) -> T:
        """fn(tx) in one write transaction, committed; retried on transient
        conflicts, errors.StoreBusy if they persist."""
        return call_with_retry(lambda: self._attempt(fn, read_only=False))

    def read(self, fn: Callable[[Tx], T]) -> T:
        """fn(tx) in one read-only transaction over a consistent snapshot."""
        return call_with_retry(lambda: self._attempt(fn, read_only=True))

    async def arun(self, fn: Callable[[Tx], T]) -> T:
        """run() on the store's thread pool. Cancelling the awaiting task does
        not stop the transaction: it may still commit."""
        return await self._in_executor(self.run, fn)

    async def aread(self, fn: Callable[[Tx], T]) -> T:
        return await self._in_executor(self.read, fn)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        self._engine.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    def _attempt(self, fn: Callable[[Tx], T], *, read_only: bool) -> T:
        if getattr(self._in_transaction, "active", False):
            # A second transaction from inside fn would wait forever for the
            # write lock this thread holds (SQLite) or silently not see, and
            # not roll back with, the outer one (PostgreSQL).
            raise RuntimeError("store.run()/read() called inside another transaction of the same store; use its tx")
        lock = self._write_lock if self._write_lock is not None and not read_only else nullcontext()
        with lock, self._engine.connect() as conn:
            if read_only:
                conn.execution_options(**{READ_ONLY_OPTION: True})
                if conn.dialect.name == "postgresql":
                    # READ COMMITTED takes a new snapshot per statement; a read
                    # made of several queries should see one state of the world.
                    conn.execution_options(isolation_level="REPEATABLE READ")
            self._in_transaction.active = True
            try:
                with conn.begin():
                    tx = SqlTx(conn, read_only=read_only)
                    result = fn(tx)
                    tx.flush_events()
                    return result
            finally:
                self._in_transaction.active = False

    async def _in_executor(self, call: Callable[[Callable[[Tx], T]], T], fn: Callable[[Tx], T]) -> T:
        # Carry contextvars (trace context, deadlines) into the store thread.
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, context.run, call, fn)
