"""Helpers shared by the worker tests (imported by conftest and test modules)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


class ProgressRecorder:
    """A progress sink that records calls and can signal when a message shows up."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self._waiters: list[tuple[str, asyncio.Event]] = []

    async def __call__(self, message: str, payload: dict) -> None:
        self.calls.append((message, dict(payload)))
        for text, event in self._waiters:
            if text in message:
                event.set()

    def saw(self, text: str) -> asyncio.Event:
        event = asyncio.Event()
        if any(text in m for m, _ in self.calls):
            event.set()
        self._waiters.append((text, event))
        return event

    @property
    def messages(self) -> list[str]:
        return [m for m, _ in self.calls]


def pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] not in ("Z", "X")


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return predicate()
