"""ListMissions newest first (what `vpctl list --limit 3` shows: the three newest,
not the three oldest), paged without gaps, and a page token is bound to its order."""

from __future__ import annotations

import asyncio
import os

import grpc
import pytest

from services.common.contracts.vp.v1 import enums_pb2 as S
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from tests.dispatcher.conftest import GENERAL, dispatch
from tests.support.processes import console_script


async def test_newest_first_pages_and_vpctl_list_shows_the_newest(stack):
    ids = [(await dispatch(stack, vp_id=GENERAL, mission_type="task", objective=f"m{i}")).mission.envelope.mission_id
           for i in range(5)]

    async def walk(order) -> list[str]:
        seen, token = [], ""
        while True:
            reply = await stack.missions.ListMissions(mc_pb.ListMissionsRequest(page_size=2, page_token=token,
                                                                                order=order))
            seen += [m.envelope.mission_id for m in reply.missions]
            token = reply.next_page_token
            if not token:
                return seen

    assert await walk(S.LIST_ORDER_NEWEST_FIRST) == ids[::-1]
    assert await walk(S.LIST_ORDER_OLDEST_FIRST) == await walk(S.LIST_ORDER_UNSPECIFIED) == ids

    newest = await stack.missions.ListMissions(mc_pb.ListMissionsRequest(page_size=2,
                                                                         order=S.LIST_ORDER_NEWEST_FIRST))
    with pytest.raises(grpc.aio.AioRpcError) as mixed:
        await stack.missions.ListMissions(mc_pb.ListMissionsRequest(page_size=2, page_token=newest.next_page_token))
    assert mixed.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "order" in mixed.value.details()

    process = await asyncio.create_subprocess_exec(
        console_script("vpctl"), "--dispatcher", stack.dispatcher_address, "list", "--limit", "3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, **stack.client_env()})
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert [line.split()[0] for line in out.decode().splitlines()[1:]] == ids[:1:-1]
