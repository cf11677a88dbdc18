"""Durable MCP tasks (2025-11-25): the task id is the mission id, tasks/* map to
the ledger, and a vp-mcp restart between create and result loses nothing."""

from __future__ import annotations

import uuid

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.mcp.support import legacy_session, stdio_client

pytestmark = pytest.mark.timeout(180)


async def create_task(dispatcher, arguments: dict) -> dict:
    raw = await dispatcher.send_raw_request("tools/call", {"name": "vp_dispatch_mission", "arguments": arguments,
                                                           "task": {"ttl": 600_000}})
    return raw["task"]


async def get_task(session, task_id: str) -> types.GetTaskResult:
    return await session.send_request(types.GetTaskRequest(params=types.GetTaskRequestParams(task_id=task_id)),
                                      types.GetTaskResult)


async def test_task_survives_a_vp_mcp_restart(stack):
    params = stack.stdio_params()
    objective = f"task work {uuid.uuid4().hex}"
    async with legacy_session(params) as (session, dispatcher):
        assert session.protocol_version == "2025-11-25"
        capabilities = session.server_capabilities
        assert capabilities.tasks is not None and capabilities.tasks.requests.tools.call is not None
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert tools["vp_dispatch_mission"].execution.task_support == "optional"
        assert tools["vp_get_mission"].execution.task_support == "forbidden"

        task = await create_task(dispatcher, {"vp_id": "vp.coder.primary", "mission_type": "code",
                                              "objective": objective, "idempotency_key": f"task-{uuid.uuid4().hex}"})
        assert task["status"] == "working" and task["ttl"] is None and task["pollInterval"] > 0
        task_id = task["taskId"]
    # That vp-mcp process is gone; a new one knows the task (it is the mission).
    async with legacy_session(params) as (session, dispatcher):
        got = await get_task(session, task_id)
        assert got.task_id == task_id and got.status in ("working", "completed")
        listed = await session.send_request(types.ListTasksRequest(), types.ListTasksResult)
        assert task_id in [t.task_id for t in listed.tasks]
        raw = await dispatcher.send_raw_request("tasks/result", {"taskId": task_id})
        result = types.CallToolResult.model_validate(raw, by_name=False)
        assert not result.is_error, result.content[0].text
        assert result.structured_content["mission"]["mission_id"] == task_id
        assert result.structured_content["mission"]["state"] == "COMPLETED"
        assert raw["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task_id}
        assert (await get_task(session, task_id)).status == "completed"
        with pytest.raises(MCPError) as refused:
            await session.send_request(types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=task_id)),
                                       types.CancelTaskResult)
        assert refused.value.code == types.INVALID_PARAMS and "terminal" in refused.value.message
    # The task is the mission: the plain tools see it too.
    async with stdio_client(stack) as client:
        mission = (await client.call_tool("vp_get_mission", {"mission_id": task_id})).structured_content["mission"]
        assert mission["objective"] == objective and mission["labels"]["mcp.task"] == "true"


async def test_cancel_a_task_and_unknown_task(stack):
    async with legacy_session(stack.stdio_params()) as (session, dispatcher):
        task = await create_task(dispatcher, {"vp_id": "vp.coder.primary", "mission_type": "code",
                                              "objective": f"hold {uuid.uuid4().hex}"})
        cancelled = await session.send_request(
            types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=task["taskId"])),
            types.CancelTaskResult)
        assert cancelled.task_id == task["taskId"] and cancelled.status == "cancelled"
        with pytest.raises(MCPError) as missing:
            await get_task(session, "m-no-such-task")
        assert missing.value.code == types.INVALID_PARAMS
        with pytest.raises(MCPError) as not_a_task_tool:
            await dispatcher.send_raw_request("tools/call", {"name": "vp_get_mission",
                                                             "arguments": {"mission_id": task["taskId"]},
                                                             "task": {}})
        assert not_a_task_tool.value.code == types.METHOD_NOT_FOUND


async def test_blocked_mission_is_an_input_required_task(stack):
    async with legacy_session(stack.stdio_params()) as (session, dispatcher):
        task = await create_task(dispatcher, {"vp_id": "vp.coder.primary", "mission_type": "code",
                                              "objective": f"block {uuid.uuid4().hex}"})
        waited = await session.call_tool("vp_wait_mission", {"mission_id": task["taskId"], "timeout_seconds": 60})
        assert waited.structured_content["mission"]["state"] == "BLOCKED" and not waited.structured_content["timed_out"]
        got = await get_task(session, task["taskId"])
        assert got.status == "input_required" and got.status_message
        cancelled = await session.send_request(
            types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=task["taskId"])),
            types.CancelTaskResult)
        assert cancelled.status == "cancelled"
