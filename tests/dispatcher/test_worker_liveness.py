"""The dispatcher's side of issue 8: renewals confirmed to the worker, a silent
stream treated as a lost worker, an expired epoch never renewed, heartbeats
never waiting for result writes, and a hand-back that re-queues at once
without using an attempt."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest
import sqlalchemy as sa

from services.common.contracts.vp.v1 import enums_pb2 as S
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from tests.dispatcher.conftest import CODER, dispatch, events_of
from tests.support.grpc_errors import reason_of
from tests.support.scripted_worker import ScriptedWorker
from tests.support.stack import fake_clock_stack, running_stack


async def get(stack, mission_id):
    return (await stack.missions.GetMission(mc_pb.GetMissionRequest(mission_id=mission_id))).mission


async def session(stack):
    return (await stack.sessions.GetSession(reg_pb.GetSessionRequest(vp_id=CODER))).session


async def test_each_renewal_is_confirmed_with_the_heartbeat_seq_and_granted_ttl(stack, worker_factory):
    worker = await worker_factory(CODER, ttl_s=30)
    await worker.connect()
    worker.heartbeat(seq=7)
    renewed = (await worker.next("lease_renewed")).lease_renewed
    assert (renewed.lease_epoch, renewed.heartbeat_seq) == (worker.epoch, 7)
    assert renewed.granted_ttl.ToTimedelta() == timedelta(seconds=30)
    assert renewed.lease_expires_at == (await session(stack)).lease_expires_at


async def test_hand_back_requeues_at_once_without_using_an_attempt_and_refuses_late_output(stack, worker_factory):
    first = await worker_factory(CODER, capacity=1, ttl_s=2)
    await first.connect()
    reply = await dispatch(stack, max_attempts=1)
    mission_id = reply.mission.envelope.mission_id
    assignment = await first.assignment()
    first.send(draining={"lease_epoch": first.epoch})
    first.hand_back(assignment)
    accepted = (await first.next("result_accepted")).result_accepted
    assert (accepted.mission_id, accepted.state) == (mission_id, S.MISSION_STATE_QUEUED)
    mission = await get(stack, mission_id)
    assert mission.state == S.MISSION_STATE_QUEUED and mission.attempt == 1  # max_attempts=1, and still runnable

    first.result(assignment)  # the stopped run's late output
    late = (await first.next("result_accepted")).result_accepted
    assert late.state == S.MISSION_STATE_QUEUED
    assert (await get(stack, mission_id)).state == S.MISSION_STATE_QUEUED
    kinds = await events_of(stack, mission_id)
    assert kinds.count("vp.mission.requeued") == 1 and "vp.mission.completed" not in kinds

    await first.drop()
    second = await worker_factory(CODER, capacity=1)
    await second.acquire_when_free(timeout=20)
    await second.connect()
    again = await second.assignment()
    assert again.mission.attempt == 1 and again.run_id != assignment.run_id
    second.result(again)
    assert (await second.next("result_accepted")).result_accepted.state == S.MISSION_STATE_COMPLETED


async def test_silent_stream_is_ended_and_its_runs_recovered_while_tcp_stays_up(db_url):
    async with fake_clock_stack(db_url) as stack:
        worker = ScriptedWorker(stack, CODER, ttl_s=6)
        await worker.connect()
        reply = await dispatch(stack)
        mission_id = reply.mission.envelope.mission_id
        await worker.assignment()
        # The worker says nothing more; its stream stays open.
        stack.clock.advance(timedelta(seconds=5.9))
        await stack.supervisor.tick()
        assert (await get(stack, mission_id)).state == S.MISSION_STATE_RUNNING  # lease still live
        assert stack.core.hub.current(CODER) is not None
        stack.clock.advance(timedelta(seconds=0.1))  # one TTL without a heartbeat
        await stack.supervisor.tick()  # one pass ends the stream and recovers its run
        assert (await get(stack, mission_id)).state == S.MISSION_STATE_QUEUED
        assert stack.core.hub.current(CODER) is None
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await worker.next("welcome")  # drains to the end of the stream
        assert ended.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason_of(ended.value) == "LEASE_SUPERSEDED"
        assert "vp.mission.requeued" in await events_of(stack, mission_id)
        await worker.close()


async def test_a_heartbeat_after_the_lease_expired_is_not_renewed(db_url):
    async with fake_clock_stack(db_url) as stack:
        worker = ScriptedWorker(stack, CODER, ttl_s=6)
        await worker.connect()
        worker.heartbeat(seq=1)
        await worker.next("lease_renewed")
        stack.clock.advance(timedelta(seconds=6))  # expired, and no supervision pass ran
        before = await stack.memory_registry.session(CODER)
        worker.heartbeat(seq=2)
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await worker.next("lease_renewed")
        assert reason_of(ended.value) == "LEASE_SUPERSEDED"
        assert (await stack.memory_registry.session(CODER)).lease_expires_at == before.lease_expires_at
        await worker.close()


async def test_heartbeats_are_renewed_while_a_result_waits_for_the_store(db_url, tmp_path):
    """A result whose transaction cannot start (another connection holds the
    mission row / the database) must not hold back the renewal behind it."""
    registry_db = f"sqlite:///{tmp_path / 'registry.db'}"
    async with running_stack(db_url, registry_db_url=registry_db) as stack:
        worker = ScriptedWorker(stack, CODER)
        await worker.connect()
        reply = await dispatch(stack)
        mission_id = reply.mission.envelope.mission_id
        assignment = await worker.assignment()

        engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool)
        blocker = engine.connect()
        try:
            if engine.dialect.name == "sqlite":
                blocker.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                blocker.begin()
                blocker.execute(sa.text("SELECT 1 FROM vp_missions WHERE mission_id = :m FOR UPDATE"), {"m": mission_id})
            worker.result(assignment)
            worker.heartbeat(seq=1)
            first = await worker.next(timeout=15)
            assert first.WhichOneof("message") == "lease_renewed", first
        finally:
            blocker.rollback()
            blocker.close()
            engine.dispose()
        accepted = (await worker.next("result_accepted", timeout=15)).result_accepted
        assert accepted.state == S.MISSION_STATE_COMPLETED
        await worker.close()
