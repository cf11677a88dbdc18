"""In-process wake-ups: WaitMission and followed event streams sleep on these
instead of polling the store. A mission's waiters are woken with the record as
it was committed, so they answer without reading it again. Wake-ups only speed
things up: waiters still re-read the store on a slow timer, so a change made
by another replica is seen too."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from services.common.store.records import MissionRecord


class Notifier:
    def __init__(self) -> None:
        self._missions: dict[str, list[asyncio.Future]] = defaultdict(list)
        self._events: list[asyncio.Future] = []
        self._event_version = 0

    def mission_changed(self, mission_id: str, record: MissionRecord | None = None) -> None:
        """Wake the mission's waiters with its committed record (None: they re-read it)."""
        for waiter in self._missions.pop(mission_id, []):
            if not waiter.done():
                waiter.set_result(record)

    async def wait_mission(self, mission_id: str, timeout: float) -> MissionRecord | None:
        """The record the mission was changed to, or None on timeout (or if the change came without one)."""
        waiter = asyncio.get_running_loop().create_future()
        self._missions[mission_id].append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            waiters = self._missions.get(mission_id)
            if waiters and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._missions[mission_id]

    def events_appended(self) -> None:
        self._event_version += 1
        waiters, self._events = self._events, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    @property
    def event_version(self) -> int:
        return self._event_version

    async def wait_events(self, seen_version: int, timeout: float) -> None:
        if self._event_version > seen_version:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._events.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            if waiter in self._events:
                self._events.remove(waiter)
