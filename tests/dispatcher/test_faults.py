"""Fencing, cancellation, lost workers, deadlines and startup reconciliation."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.contracts.vp.v1 import enums_pb2 as S
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import mission_pb2
from tests.dispatcher.conftest import CODER, dispatch, events_of
from tests.support.grpc_errors import details_of, reason_of
from tests.support.scripted_worker import ScriptedWorker
from tests.support.stack import fake_clock_stack
from tests.support.waiting import async_wait_until


async def get(stack, mission_id):
    return (await stack.missions.GetMission(mc_pb.GetMissionRequest(mission_id=mission_id))).mission


async def test_result_with_stale_epoch_is_refused_and_changes_nothing(stack, worker_factory):
    worker = await worker_factory(CODER)
    await worker.connect()
    reply = await dispatch(stack)
    assignment = await worker.assignment()
    worker.result(assignment, epoch=worker.epoch - 1 if worker.epoch > 1 else worker.epoch + 7)
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await worker.next("result_accepted")
    assert ended.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(ended.value) == "LEASE_SUPERSEDED"
    mission = await get(stack, reply.mission.envelope.mission_id)
    assert mission.state == S.MISSION_STATE_RUNNING
    assert "vp.mission.completed" not in await events_of(stack, mission.envelope.mission_id)


async def test_zombie_hello_after_takeover_is_refused(db_url):
    async with fake_clock_stack(db_url) as stack:
        old = ScriptedWorker(stack, CODER, ttl_s=5)
        await old.connect()
        await old.drop()
        stack.clock.advance(timedelta(seconds=6))  # the old lease runs out
        new = ScriptedWorker(stack, CODER, ttl_s=30)
        await new.acquire()
        assert new.epoch == old.epoch + 1
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await old.connect()
        assert reason_of(refused.value) == "LEASE_SUPERSEDED"
        await new.close()


async def test_cancel_queued_running_and_terminal(stack, worker_factory):
    queued = await dispatch(stack, max_attempts=1)  # no worker yet: falls back (terminal)
    again = await stack.missions.CancelMission(mc_pb.CancelMissionRequest(
        mission_id=queued.mission.envelope.mission_id))
    assert again.mission.state == S.MISSION_STATE_FAILED  # terminal: no-op
    worker = await worker_factory(CODER, capacity=1)
    await worker.connect()
    running = await dispatch(stack)
    waiting = await dispatch(stack)
    assignment = await worker.assignment()
    cancelled = await stack.missions.CancelMission(mc_pb.CancelMissionRequest(
        mission_id=waiting.mission.envelope.mission_id, reason="not needed"))
    assert cancelled.mission.state == S.MISSION_STATE_CANCELLED
    requested = await stack.missions.CancelMission(mc_pb.CancelMissionRequest(
        mission_id=running.mission.envelope.mission_id, reason="stop"))
    assert requested.mission.state == S.MISSION_STATE_RUNNING and requested.mission.cancel_requested
    cancel = (await worker.next("cancel")).cancel
    assert cancel.mission_id == running.mission.envelope.mission_id
    assert cancel.final_state == S.MISSION_STATE_CANCELLED
    worker.result(assignment, S.MISSION_STATE_CANCELLED)
    await worker.next("result_accepted")
    assert (await get(stack, cancel.mission_id)).state == S.MISSION_STATE_CANCELLED


async def test_cancel_is_persisted_and_resent_after_reconnect(stack, worker_factory):
    worker = await worker_factory(CODER)
    await worker.connect()
    reply = await dispatch(stack)
    mission_id = reply.mission.envelope.mission_id
    await worker.assignment()
    await worker.drop()
    await stack.missions.CancelMission(mc_pb.CancelMissionRequest(mission_id=mission_id))
    await worker.connect(running=[mission_id])
    cancel = (await worker.next("cancel")).cancel
    assert cancel.mission_id == mission_id


async def test_quick_reconnect_keeps_missions_and_revokes_unknown(stack, worker_factory):
    worker = await worker_factory(CODER)
    await worker.connect()
    reply = await dispatch(stack)
    mission_id = reply.mission.envelope.mission_id
    assignment = await worker.assignment()
    await worker.drop()
    await stack.supervisor.tick()  # lease still live: nothing is re-queued
    assert (await get(stack, mission_id)).state == S.MISSION_STATE_RUNNING
    welcome = await worker.connect(running=[mission_id, "m-not-mine"])
    assert list(welcome.revoked_mission_ids) == ["m-not-mine"]
    worker.result(assignment)
    await worker.next("result_accepted")
    assert (await get(stack, mission_id)).state == S.MISSION_STATE_COMPLETED


async def test_lost_worker_mission_requeued_to_new_term_and_late_result_refused(db_url):
    async with fake_clock_stack(db_url) as stack:
        old = ScriptedWorker(stack, CODER, ttl_s=5)
        await old.connect()
        reply = await dispatch(stack)
        mission_id = reply.mission.envelope.mission_id
        await old.assignment()
        await old.drop()
        stack.clock.advance(timedelta(seconds=6))
        new = ScriptedWorker(stack, CODER, ttl_s=30)
        await new.connect()  # its hello ends the old term's run: re-queued, then assigned here
        second = await new.assignment()
        assert second.mission.envelope.mission_id == mission_id and second.mission.attempt == 2
        new.result(second)
        await new.next("result_accepted")
        # The old worker comes back with its old term: refused, nothing changes.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await old.connect()
        assert reason_of(refused.value) == "LEASE_SUPERSEDED"
        final = await get(stack, mission_id)
        assert final.state == S.MISSION_STATE_COMPLETED and final.attempt == 2
        events = await events_of(stack, mission_id)
        assert events.count("vp.mission.completed") == 1 and "vp.mission.requeued" in events
        await new.close()


async def test_worker_lost_without_attempts_left_falls_back(db_url):
    async with fake_clock_stack(db_url) as stack:
        worker = ScriptedWorker(stack, CODER, ttl_s=5)
        await worker.connect()
        reply = await dispatch(stack, max_attempts=1)
        mission_id = reply.mission.envelope.mission_id
        await worker.assignment()
        await worker.drop()
        await stack.supervisor.tick()  # the lease still holds: the run is left alone
        assert (await get(stack, mission_id)).state == S.MISSION_STATE_RUNNING
        stack.clock.advance(timedelta(seconds=6))
        await stack.supervisor.tick()
        final = await get(stack, mission_id)
        assert final.state == S.MISSION_STATE_FAILED
        assert final.route.fallback_reason == S.FALLBACK_REASON_WORKER_LOST
        assert final.error.code == "WORKER_LOST"


async def test_unreported_run_is_requeued_after_the_grace_period(db_url):
    async with fake_clock_stack(db_url) as stack:
        worker = ScriptedWorker(stack, CODER, ttl_s=30)
        await worker.connect()
        reply = await dispatch(stack)
        mission_id = reply.mission.envelope.mission_id
        await worker.assignment()
        worker.heartbeat(running=[mission_id])
        stack.clock.advance(timedelta(seconds=5))  # beyond 2 heartbeat intervals, but reported
        worker.heartbeat(running=[mission_id])
        await async_wait_until(lambda: _reported(stack, CODER, stack.clock.now()), what="heartbeat seen")
        await stack.supervisor.tick()
        assert (await get(stack, mission_id)).state == S.MISSION_STATE_RUNNING
        worker.heartbeat(running=[])  # the worker no longer has it
        stack.clock.advance(timedelta(seconds=1))
        worker.heartbeat(running=[])
        await async_wait_until(lambda: _reported(stack, CODER, stack.clock.now()), what="heartbeat seen")
        await stack.supervisor.tick()
        mission = await get(stack, mission_id)
        assert mission.state in (S.MISSION_STATE_QUEUED, S.MISSION_STATE_RUNNING) and mission.attempt == 2
        assert "vp.mission.requeued" in await events_of(stack, mission_id)


async def _reported(stack, vp_id, at):
    connection = stack.core.hub.current(vp_id)
    return connection is not None and connection.reported_at == at


async def test_deadline_times_out_running_mission_and_cancels_worker(db_url):
    async with fake_clock_stack(db_url) as stack:
        worker = ScriptedWorker(stack, CODER, ttl_s=3600)
        await worker.connect()
        deadline = Timestamp()
        deadline.FromDatetime(stack.clock.now() + timedelta(minutes=10))
        reply = await dispatch(stack, deadline=deadline)
        mission_id = reply.mission.envelope.mission_id
        await worker.assignment()
        stack.clock.advance(timedelta(minutes=9))
        await stack.supervisor.tick()
        assert (await get(stack, mission_id)).state == S.MISSION_STATE_RUNNING
        stack.clock.advance(timedelta(minutes=1))
        await stack.supervisor.tick()
        cancel = (await worker.next("cancel")).cancel
        assert cancel.mission_id == mission_id and cancel.final_state == S.MISSION_STATE_TIMED_OUT
        final = await get(stack, mission_id)
        assert final.state == S.MISSION_STATE_TIMED_OUT
        assert final.route.fallback_reason == S.FALLBACK_REASON_TIMED_OUT
        assert final.route.fallback_target.kind == S.FALLBACK_TARGET_KIND_CALLER
        assert "vp.mission.fallback" in await events_of(stack, mission_id)
        await worker.close()


async def test_max_duration_times_out_the_attempt(db_url):
    async with fake_clock_stack(db_url) as stack:
        worker = ScriptedWorker(stack, CODER, ttl_s=3600)
        await worker.connect()
        reply = await dispatch(stack, budget=mission_pb2.Budget(max_duration=Duration(seconds=60)))
        mission_id = reply.mission.envelope.mission_id
        await worker.assignment()
        stack.clock.advance(timedelta(seconds=61))
        await stack.supervisor.tick()
        assert (await get(stack, mission_id)).state == S.MISSION_STATE_TIMED_OUT
        await worker.close()


async def test_startup_reconciliation_requeues_runs_of_dead_leases(db_url):
    async with fake_clock_stack(db_url) as stack:
        clock, registry = stack.clock, stack.memory_registry
        worker = ScriptedWorker(stack, CODER, ttl_s=5)
        await worker.connect()
        reply = await dispatch(stack)
        await worker.assignment()
        await worker.drop()
    clock.advance(timedelta(seconds=6))  # the lease runs out while no dispatcher is up
    async with fake_clock_stack(db_url, clock=clock, registry=registry) as restarted:
        assert await restarted.supervisor.recover_lost_runs(reconciling=True) == 1
        mission = await get(restarted, reply.mission.envelope.mission_id)
        assert mission.state == S.MISSION_STATE_QUEUED and mission.attempt == 2
        assert (await events_of(restarted, mission.envelope.mission_id))[-2:] == [
            "vp.mission.requeued", "vp.mission.reconciled"]


async def test_startup_reconciliation_leaves_runs_of_live_leases(db_url):
    async with fake_clock_stack(db_url) as stack:
        clock, registry = stack.clock, stack.memory_registry
        worker = ScriptedWorker(stack, CODER, ttl_s=30)
        await worker.connect()
        reply = await dispatch(stack)
        await worker.assignment()
        await worker.drop()
    clock.advance(timedelta(seconds=5))
    async with fake_clock_stack(db_url, clock=clock, registry=registry) as restarted:
        assert await restarted.supervisor.recover_lost_runs(reconciling=True) == 0
        assert (await get(restarted, reply.mission.envelope.mission_id)).state == S.MISSION_STATE_RUNNING


async def test_wait_returns_when_mission_completes(stack, worker_factory):
    worker = await worker_factory(CODER)
    await worker.connect()
    reply = await dispatch(stack)
    waiter = asyncio.ensure_future(stack.missions.WaitMission(mc_pb.WaitMissionRequest(
        mission_id=reply.mission.envelope.mission_id, timeout=Duration(seconds=30))))
    worker.result(await worker.assignment())
    waited = await asyncio.wait_for(waiter, 10)
    assert waited.mission.state == S.MISSION_STATE_COMPLETED and not waited.timed_out


async def test_failure_reported_after_cancel_ends_cancelled_not_retried(stack, worker_factory):
    worker = await worker_factory(CODER)
    await worker.connect()
    reply = await dispatch(stack, max_attempts=3)
    mission_id = reply.mission.envelope.mission_id
    assignment = await worker.assignment()
    await stack.missions.CancelMission(mc_pb.CancelMissionRequest(mission_id=mission_id))
    await worker.next("cancel")
    worker.result(assignment, S.MISSION_STATE_FAILED, error_code="KILLED")
    accepted = await worker.next("result_accepted")
    assert accepted.result_accepted.state == S.MISSION_STATE_CANCELLED
    with pytest.raises(asyncio.TimeoutError):
        await worker.assignment(timeout=0.5)
    assert (await get(stack, mission_id)).attempt == 1


async def test_hello_without_session_or_registry_is_a_proper_status_never_unknown(stack):
    stranger = ScriptedWorker(stack, "vp.unknown.lane")
    stranger.epoch, stranger.session_id = 1, "s-none"  # skip AcquireLease: no session exists
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stranger.connect()
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND and reason_of(missing.value) == "SESSION_NOT_FOUND"

    from services.dispatcher.registry_client import RegistryClient
    from tests.support.e2e import free_port

    live_registry = stack.core.registry
    stack.core.registry = RegistryClient(f"127.0.0.1:{free_port()}", 0)  # nothing listens there
    try:
        worker = ScriptedWorker(stack, CODER)
        worker.epoch, worker.session_id = 1, "s-any"
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await worker.connect()
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE
        details = details_of(down.value)
        assert details["ErrorInfo"].reason == "DEPENDENCY_UNAVAILABLE" and "RetryInfo" in details
    finally:
        await stack.core.registry.close()
        stack.core.registry = live_registry
