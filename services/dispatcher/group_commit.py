"""Group commit: every write the dispatcher makes while a transaction is in
flight is applied together in the next one.

Callers hand in transaction functions (fn(tx) -> result) and await their own
result. One loop drains the queue: all functions waiting when it comes round
run in order inside one store transaction, so a burst of dispatches, results
and progress lines costs one BEGIN/COMMIT instead of one each. Each caller
still gets its own answer only after that transaction committed, so nothing is
acknowledged before it is durable. Functions run in the order they were
submitted; a later write of the same stream (a result after its progress
lines) never commits before an earlier one.

A function that raises a non-transient error (a domain error such as
IdempotencyConflict, an IllegalTransition, transitions.NeedsRoute) must not
cost the others their writes: the transaction is rolled back, that function's
caller gets the error, and the rest run again without it. Transient conflicts
(busy, serialization) are the store's to retry, for the whole group.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc

from services.common.errors import StoreBusy
from services.common.store.interface import Store, Tx

log = logging.getLogger(__name__)
T = TypeVar("T")
# Enough to amortise a commit; small enough that one transaction stays short
# (PostgreSQL: event appends hold a lock until commit).
MAX_GROUP = 256


class _Failed(Exception):
    """One function of the group failed: roll back and run the others again."""

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(f"group member {index} failed")
        self.index = index
        self.error = error


def _is_store_failure(error: BaseException) -> bool:
    # Database errors end the whole attempt: the store retries it or reports it.
    return isinstance(error, sa_exc.DBAPIError | StoreBusy | sa_exc.TimeoutError)


class GroupCommit:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: list[tuple[Callable[[Tx], Any], asyncio.Future]] = []
        self._runner: asyncio.Task | None = None
        # Transactions committed and functions applied, for the benchmark and tests.
        self.commits = 0
        self.applied = 0

    def submit(self, fn: Callable[[Tx], T]) -> asyncio.Future[T]:
        """Queue fn for the next group; the future resolves after its commit."""
        return self.submit_later(lambda: fn)

    def submit_later(self, make: Callable[[], Callable[[Tx], T]]) -> asyncio.Future[T]:
        """Like submit, but the function is made (make(), on the event loop)
        only when its group starts, so it can take everything that piled up
        until then (the progress lines of a stream)."""
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.append((make, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._drain())
        return future

    async def run(self, fn: Callable[[Tx], T]) -> T:
        return await self.submit(fn)

    async def _drain(self) -> None:
        while self._queue:
            taken, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            group = [(make(), future) for make, future in taken if not future.cancelled()]
            while group:
                functions = [fn for fn, _ in group]
                try:
                    results = await self.store.arun(lambda tx, functions=functions: _apply_all(tx, functions))
                except _Failed as failed:
                    _, future = group.pop(failed.index)
                    _settle(future, error=failed.error)
                    continue
                except BaseException as error:  # the store gave up: every member gets the error
                    for _, future in group:
                        _settle(future, error=error)
                    if isinstance(error, asyncio.CancelledError):
                        raise
                    break
                self.commits += 1
                self.applied += len(group)
                for (_, future), result in zip(group, results):
                    _settle(future, result=result)
                break

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)


def _apply_all(tx: Tx, functions: list[Callable[[Tx], Any]]) -> list[Any]:
    results = []
    for index, fn in enumerate(functions):
        try:
            results.append(fn(tx))
        except Exception as error:
            if _is_store_failure(error):
                raise
            raise _Failed(index, error) from error
    return results


def _settle(future: asyncio.Future, *, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
