"""Blocking wrappers over the async clients, for scripts and REPLs.

Each wrapper runs a private event loop in a daemon thread; calls block until
the coroutine there finishes. Iterators are pulled one item at a time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from typing import Any

from services.client.mission_control import MissionControlClient
from services.client.sessions import SessionsClient


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="vp-client-loop", daemon=True)
        self.thread.start()

    def run(self, coro) -> Any:
        future: Future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result()

    def iterate(self, agen: AsyncIterator) -> Iterator:
        try:
            while True:
                try:
                    yield self.run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            if self.thread.is_alive() and not self.loop.is_closed():
                self.run(agen.aclose())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class _SyncWrapper:
    _async_type: type
    _iterators: frozenset[str] = frozenset()

    def __init__(self, address: str, **kwargs: Any) -> None:
        self._loop = _LoopThread()
        self._client = self._async_type(address, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        target = getattr(self._client, name)
        if not callable(target):
            return target
        if name in self._iterators:
            return lambda *a, **kw: self._loop.iterate(target(*a, **kw))
        return lambda *a, **kw: self._loop.run(target(*a, **kw))

    def close(self) -> None:
        try:
            self._loop.run(self._client.close())
        finally:
            self._loop.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SyncMissionControlClient(_SyncWrapper):
    """Same methods as MissionControlClient, blocking; ``list`` and ``events``
    return plain iterators (close them, or exhaust them, when done)."""

    _async_type = MissionControlClient
    _iterators = frozenset({"list", "events", "artifact_chunks"})


class SyncSessionsClient(_SyncWrapper):
    _async_type = SessionsClient
    _iterators = frozenset({"list_sessions"})
