"""MissionControlClient against the fake server: retries, errors, waits, lists."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from services.client import ClientError, MissionControlClient, RetryPolicy, is_terminal
from services.common.contracts.vp.v1 import enums_pb2 as enums
from services.common.contracts.vp.v1 import mission_pb2
from services.common.errors import FieldViolation
from tests.support.fake_mission_control import unavailable


async def test_dispatch_retry_on_unavailable_keeps_the_idempotency_key(fake_server):
    fake = fake_server.fake
    fake.fail_next("DispatchMission", unavailable(retry_delay=0.1), times=2)
    started = time.monotonic()
    mission, route, deduplicated = await fake_server.mc.dispatch("vp.coder.primary", "code", "fix it")
    elapsed = time.monotonic() - started

    keys = [r.envelope.idempotency_key for r in fake.requests["DispatchMission"]]
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1
    assert len(fake.missions) == 1 and not deduplicated
    assert mission.envelope.idempotency_key == keys[0]
    assert route.decision == enums.ROUTE_DECISION_DELEGATED
    assert elapsed >= 0.2, "RetryInfo.retry_delay (0.1 s, twice) must be honoured"


async def test_dispatch_whose_response_was_lost_returns_the_same_mission(fake_server):
    fake = fake_server.fake
    fake.lose_dispatch_responses = 1
    mission, _, deduplicated = await fake_server.mc.dispatch("vp.coder.primary", "code", "once only",
                                                             idempotency_key="k-1")
    assert len(fake.missions) == 1 and deduplicated
    assert [r.envelope.idempotency_key for r in fake.requests["DispatchMission"]] == ["k-1", "k-1"]
    assert mission.envelope.mission_id in fake.missions


async def test_dispatch_without_a_key_is_never_retried(fake_server):
    fake = fake_server.fake
    fake.fail_next("DispatchMission", unavailable(retry_delay=0.01))
    envelope = mission_pb2.MissionEnvelope(vp_id="vp.coder.primary", mission_type="code", objective="x")
    with pytest.raises(ClientError) as caught:
        await fake_server.mc.dispatch_envelope(envelope)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE and caught.value.reason == "STORE_BUSY"
    assert len(fake.requests["DispatchMission"]) == 1


async def test_retries_are_bounded(fake_server):
    fake = fake_server.fake
    fake.fail_next("GetMission", unavailable(retry_delay=None), times=10)
    client = MissionControlClient(fake_server.address, retry=RetryPolicy(max_attempts=3, initial_backoff=0.01))
    try:
        with pytest.raises(ClientError) as caught:
            await client.get("m-1")
    finally:
        await client.close()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE and caught.value.transient
    assert len(fake.requests["GetMission"]) == 3


async def test_invalid_argument_is_a_client_error_with_reason_and_violations(fake_server):
    with pytest.raises(ClientError) as caught:
        await fake_server.mc.dispatch("vp.coder.primary", "", "  ")
    error = caught.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and error.reason == "INVALID_ARGUMENT"
    assert error.domain == "vp.v1"
    assert FieldViolation("envelope.objective", "required") in error.field_violations
    assert FieldViolation("envelope.mission_type", "required") in error.field_violations
    assert "envelope.objective: required" in str(error)
    assert len(fake_server.fake.requests["DispatchMission"]) == 1  # not retried

    with pytest.raises(ClientError) as caught:
        await fake_server.mc.dispatch("vp.nope", "code", "x")
    assert caught.value.reason == "UNKNOWN_VP"
    assert [v.field for v in caught.value.field_violations] == ["envelope.vp_id"]


async def test_idempotency_conflict_and_not_found(fake_server):
    mc = fake_server.mc
    await mc.dispatch("vp.coder.primary", "code", "a", idempotency_key="same")
    with pytest.raises(ClientError) as caught:
        await mc.dispatch("vp.coder.primary", "code", "b", idempotency_key="same")
    assert caught.value.code == grpc.StatusCode.ALREADY_EXISTS and caught.value.reason == "IDEMPOTENCY_CONFLICT"

    with pytest.raises(ClientError) as caught:
        await mc.get("m-missing")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND and caught.value.reason == "MISSION_NOT_FOUND"
    assert caught.value.metadata == {"mission_id": "m-missing"}


async def test_dispatch_envelope_fields(fake_server):
    deadline = datetime.now(timezone.utc) + timedelta(minutes=5)
    mission, _, _ = await fake_server.mc.dispatch(
        "vp.general.primary", "task", "summarise", constraints={"lang": "en", "max_words": 100},
        labels={"team": "ops"}, priority=5, max_attempts=2, deadline=deadline, budget_seconds=90,
        target_path="/tmp/out", source={"session_id": "s-1", "turn_id": "t-9", "reply_mode": "async"},
    )
    env = mission.envelope
    assert env.constraints["lang"] == "en" and env.constraints["max_words"] == 100
    assert dict(env.labels) == {"team": "ops"} and env.priority == 5 and env.max_attempts == 2
    assert env.deadline.ToDatetime(tzinfo=timezone.utc) == deadline
    assert env.budget.max_duration.seconds == 90 and env.target_path == "/tmp/out"
    assert env.source.session_id == "s-1" and env.source.reply_mode == enums.REPLY_MODE_ASYNC

    with pytest.raises(ClientError) as caught:
        await fake_server.mc.dispatch("vp.general.primary", "task", "x", deadline=datetime(2030, 1, 1))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.field_violations[0].field == "deadline"


async def test_list_walks_every_page(fake_server):
    mc = fake_server.mc
    for i in range(7):
        await mc.dispatch("vp.coder.primary" if i % 2 else "vp.general.primary", "code", f"m{i}")
    everything = [m async for m in mc.list(page_size=3)]
    assert len(everything) == 7
    assert len(fake_server.fake.requests["ListMissions"]) == 3
    assert len([m async for m in mc.list(page_size=3, limit=4)]) == 4
    coder = [m async for m in mc.list(vp_id="vp.coder.primary", states=["queued"])]
    assert len(coder) == 3 and all(m.state == enums.MISSION_STATE_QUEUED for m in coder)
    with pytest.raises(ClientError) as caught:
        [m async for m in mc.list(states=["sleeping"])]
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_wait_until_terminal(fake_server):
    mc = fake_server.mc
    mission, _, _ = await mc.dispatch("vp.coder.primary", "code", "go", labels={"fake.outcome": "completed"})
    final = await mc.wait(mission.envelope.mission_id, timeout=10)
    assert final.state == enums.MISSION_STATE_COMPLETED and is_terminal(final.state)


async def test_wait_slices_and_overall_timeout(fake_server):
    mc = fake_server.mc
    mission, _, _ = await mc.dispatch("vp.coder.primary", "code", "stays queued")
    fake_server.fake.fail_next("WaitMission", unavailable(retry_delay=0.01))
    started = time.monotonic()
    final = await mc.wait(mission.envelope.mission_id, timeout=0.35, slice_seconds=0.1)
    elapsed = time.monotonic() - started
    assert final.state == enums.MISSION_STATE_QUEUED and not is_terminal(final.state)
    assert 0.3 <= elapsed < 2.0
    slices = [r.timeout.ToTimedelta().total_seconds() for r in fake_server.fake.requests["WaitMission"]]
    assert len(slices) >= 4 and max(slices) <= 0.1


async def test_wait_returns_on_blocked(fake_server):
    mc = fake_server.mc
    mission, _, _ = await mc.dispatch("vp.coder.primary", "code", "needs input", labels={"fake.outcome": "blocked"})
    final = await mc.wait(mission.envelope.mission_id, timeout=5, slice_seconds=0.1)
    assert final.state == enums.MISSION_STATE_BLOCKED


async def test_cancel(fake_server):
    mc = fake_server.mc
    mission, _, _ = await mc.dispatch("vp.coder.primary", "code", "to cancel")
    fake_server.fake.fail_next("CancelMission", unavailable(retry_delay=0.01))
    cancelled = await mc.cancel(mission.envelope.mission_id, "changed my mind")
    assert cancelled.state == enums.MISSION_STATE_CANCELLED
    assert [r.reason for r in fake_server.fake.requests["CancelMission"]] == ["changed my mind"] * 2


async def test_sessions_client(fake_server):
    from services.common.contracts.vp.v1 import session_pb2

    fake_server.registry.sessions.update({
        "vp.coder.primary": session_pb2.VpSession(vp_id="vp.coder.primary", status=enums.SESSION_STATUS_ACTIVE,
                                                  effective_status=enums.SESSION_STATUS_DEGRADED, stale=True),
        "vp.general.primary": session_pb2.VpSession(vp_id="vp.general.primary", status=enums.SESSION_STATUS_IDLE,
                                                    effective_status=enums.SESSION_STATUS_IDLE),
    })
    sessions = fake_server.sessions
    assert [s.vp_id async for s in sessions.list_sessions(stale=True)] == ["vp.coder.primary"]
    assert [s.vp_id async for s in sessions.list_sessions(effective_statuses=["idle"])] == ["vp.general.primary"]
    assert (await sessions.get_session("vp.general.primary")).status == enums.SESSION_STATUS_IDLE
    with pytest.raises(ClientError) as caught:
        await sessions.get_session("vp.none")
    assert caught.value.reason == "SESSION_NOT_FOUND"


def test_sync_client(fake_thread):
    from services.client import SyncMissionControlClient

    with SyncMissionControlClient(fake_thread.address, timeout=5.0) as mc:
        mission, _, _ = mc.dispatch("vp.coder.primary", "code", "sync", labels={"fake.outcome": "completed"})
        final = mc.wait(mission.envelope.mission_id, 10)
        assert final.state == enums.MISSION_STATE_COMPLETED
        assert [m.envelope.mission_id for m in mc.list()] == [mission.envelope.mission_id]
        types = [e.event_type for e in mc.events(mission_id=mission.envelope.mission_id)]
        assert types[0] == "vp.mission.dispatched" and types[-1] == "vp.mission.completed"
        assert mc.read_artifacts(mission.envelope.mission_id) == {"result.md": b"# done\nsync"}
        with pytest.raises(ClientError):
            mc.get("m-nope")


async def test_client_closes_cleanly_without_use():
    client = MissionControlClient("127.0.0.1:1")
    await client.close()
    async with MissionControlClient("127.0.0.1:1", timeout=0.2, retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(ClientError) as caught:
            await client.get("m-1")
    assert caught.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    await asyncio.sleep(0)
