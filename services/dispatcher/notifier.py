"""In-process wake-ups: WaitMission and followed event streams sleep on these
instead of polling the store. They only speed things up; waiters still re-read
the store on a slow timer, so a change made by another replica is seen too."""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Notifier:
    def __init__(self) -> None:
        self._mission_events: dict[str, list[asyncio.Event]] = defaultdict(list)
        self._event_log = asyncio.Condition()
        self._event_version = 0

    def mission_changed(self, mission_id: str) -> None:
        for event in self._mission_events.pop(mission_id, []):
            event.set()

    async def wait_mission(self, mission_id: str, timeout: float) -> None:
        event = asyncio.Event()
        self._mission_events[mission_id].append(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            waiters = self._mission_events.get(mission_id)
            if waiters and event in waiters:
                waiters.remove(event)
                if not waiters:
                    del self._mission_events[mission_id]

    async def events_appended(self) -> None:
        async with self._event_log:
            self._event_version += 1
            self._event_log.notify_all()

    @property
    def event_version(self) -> int:
        return self._event_version

    async def wait_events(self, seen_version: int, timeout: float) -> None:
        async with self._event_log:
            try:
                await asyncio.wait_for(self._event_log.wait_for(lambda: self._event_version > seen_version), timeout)
            except asyncio.TimeoutError:
                pass
