from __future__ import annotations

import pytest

from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import mission_pb2
from tests.support.scripted_worker import ScriptedWorker
from tests.support.stack import running_stack

CODER = "vp.coder.primary"
GENERAL = "vp.general.primary"


@pytest.fixture
async def stack(db_url):
    async with running_stack(db_url) as running:
        yield running


@pytest.fixture
async def worker_factory(stack):
    workers = []

    async def make(vp_id=CODER, **kwargs) -> ScriptedWorker:
        worker = ScriptedWorker(stack, vp_id, **kwargs)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        await worker.close()


def envelope(vp_id=CODER, objective="write a poem", mission_type="code", **fields) -> mission_pb2.MissionEnvelope:
    return mission_pb2.MissionEnvelope(vp_id=vp_id, mission_type=mission_type, objective=objective, **fields)


async def dispatch(stack, env=None, **fields) -> mc_pb.DispatchMissionResponse:
    return await stack.missions.DispatchMission(mc_pb.DispatchMissionRequest(envelope=env or envelope(**fields)))


async def events_of(stack, mission_id: str) -> list[str]:
    events = stack.missions.StreamMissionEvents(mc_pb.StreamMissionEventsRequest(mission_id=mission_id))
    return [reply.event.event_type async for reply in events]
