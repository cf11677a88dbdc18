from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.client import MissionControlClient, RetryPolicy, SessionsClient
from tests.support.fake_mission_control import FakeMissionControl, FakeServerThread, FakeSessionRegistry, start_fake

FAST_RETRY = RetryPolicy(max_attempts=5, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
async def fake_server():
    """The fake MissionControl (+ registry) in the test's loop, with clients on it."""
    fake, registry = FakeMissionControl(), FakeSessionRegistry()
    running = await start_fake(fake, registry)
    mc = MissionControlClient(running.address, timeout=5.0, retry=FAST_RETRY)
    sessions = SessionsClient(running.address, timeout=5.0, retry=FAST_RETRY)
    yield SimpleNamespace(fake=fake, registry=registry, address=running.address, mc=mc, sessions=sessions)
    await mc.close()
    await sessions.close()
    await running.stop(0)


@pytest.fixture
def fake_thread():
    """The fake served from a background thread, for blocking tests (subprocesses)."""
    with FakeServerThread(FakeMissionControl(), FakeSessionRegistry()) as server:
        yield server
