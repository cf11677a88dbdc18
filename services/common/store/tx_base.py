"""What every query module shares: the open connection and statement execution."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, CursorResult, Executable
from sqlalchemy import exc as sa_exc

from services.common.timeutil import NaiveDatetimeError


class TxBase:
    def __init__(self, conn: Connection, *, read_only: bool) -> None:
        self._conn = conn
        self._read_only = read_only
        self._postgres = conn.dialect.name == "postgresql"

    def _execute(self, statement: Executable, params: Any = None) -> CursorResult[Any]:
        try:
            return self._conn.execute(statement, params)
        except sa_exc.StatementError as error:
            # A naive datetime is caught while binding, before anything reaches
            # the database; callers should see the timeutil error, not a wrapper.
            if isinstance(error.orig, NaiveDatetimeError):
                raise error.orig from None
            raise

    def _require_write(self, operation: str) -> None:
        if self._read_only:
            raise RuntimeError(f"{operation} needs a write transaction: use store.run(), not store.read()")


def check_limit(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return limit


def require_set(record: object, *names: str) -> None:
    """Timestamps the store cannot invent: time comes from the caller's clock."""
    for name in names:
        if getattr(record, name) is None:
            raise ValueError(f"{type(record).__name__}.{name} is required")
