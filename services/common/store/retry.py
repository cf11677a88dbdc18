"""Which storage errors are worth retrying, and the bounded retry loop.

Only conflicts that a fresh attempt of the same transaction can resolve are
retried; everything else propagates unchanged, so real bugs stay visible.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from enum import Enum
from typing import TypeVar

from sqlalchemy import exc as sa_exc

from services.common.errors import StoreBusy

T = TypeVar("T")

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
# serialization_failure, deadlock_detected: PostgreSQL asks the client to retry.
_PG_RETRY_SQLSTATES = frozenset({"40001", "40P01"})
_PG_UNIQUE_VIOLATION = "23505"
# Under READ COMMITTED two transactions can both find no row and both insert
# it; the loser's retry then sees the winner's row and takes the update path.
RACE_CONSTRAINTS = frozenset({"pk_vp_sessions", "pk_vp_missions"})

RETRY_BUDGET_S = 2.0
_BASE_DELAY_S = 0.005
_MAX_DELAY_S = 0.25
# A duplicate key that survives this many fresh attempts is a caller bug, not a race.
_MAX_RACE_RETRIES = 2
# More dead connections in a row than this means the server is down, not a stale pool.
_MAX_DISCONNECT_RETRIES = 2


class Transient(Enum):
    BUSY = "busy"
    RACE = "race"
    # The pooled connection was dead (server restart, idle timeout): the pool
    # discards it, and the transaction runs again on a fresh connection.
    DISCONNECT = "disconnect"


def classify(error: BaseException) -> Transient | None:
    if not isinstance(error, sa_exc.DBAPIError):
        return None
    if error.connection_invalidated:
        return Transient.DISCONNECT
    orig = error.orig
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if sqlite_code is not None:
        # Extended codes (e.g. SQLITE_BUSY_SNAPSHOT) carry the primary code in the low byte.
        return Transient.BUSY if (sqlite_code & 0xFF) in (_SQLITE_BUSY, _SQLITE_LOCKED) else None
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _PG_RETRY_SQLSTATES:
        return Transient.BUSY
    if sqlstate == _PG_UNIQUE_VIOLATION:
        diag = getattr(orig, "diag", None)
        if getattr(diag, "constraint_name", None) in RACE_CONSTRAINTS:
            return Transient.RACE
    return None


def call_with_retry(attempt: Callable[[], T], *, budget_s: float = RETRY_BUDGET_S) -> T:
    """Run attempt() until it succeeds, a non-transient error escapes, or the
    budget is spent (then StoreBusy, chained to the last conflict)."""
    start = time.monotonic()
    failures = 0
    races = 0
    disconnects = 0
    while True:
        try:
            return attempt()
        except sa_exc.TimeoutError as error:
            # The connection pool stayed exhausted for pool_timeout: overload, not a bug.
            raise StoreBusy("database connection pool exhausted") from error
        except sa_exc.DBAPIError as error:
            kind = classify(error)
            if kind is None:
                raise
            if kind is Transient.RACE:
                races += 1
                if races > _MAX_RACE_RETRIES:
                    raise
            if kind is Transient.DISCONNECT:
                disconnects += 1
                if disconnects > _MAX_DISCONNECT_RETRIES:
                    raise
                continue  # at once: the pool has already replaced the connection
            # Full jitter keeps competing writers from retrying in lockstep.
            delay = random.uniform(0, min(_MAX_DELAY_S, _BASE_DELAY_S * 2**failures))
            failures += 1
            if time.monotonic() - start + delay > budget_s:
                raise StoreBusy(f"database busy after {failures} attempts: {error.orig}") from error
            time.sleep(delay)
