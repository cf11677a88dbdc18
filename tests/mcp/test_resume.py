"""Input required, answered and resumed: through vp_resume_mission (stdio and
HTTP), and as an MCP task whose tasks/result elicits the answer from the client."""

from __future__ import annotations

import asyncio
import uuid

import mcp_types as types
import pytest
from mcp import Client

from tests.mcp.support import legacy_session, stdio_client
from tests.support.waiting import async_wait_until

pytestmark = pytest.mark.timeout(180)


def ok(result):
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def ask_and_resume(client) -> None:
    question = f"Which colour should the report use, {uuid.uuid4().hex[:8]}?"
    mission = ok(await client.call_tool("vp_dispatch_mission", {
        "vp_id": "vp.general.primary", "mission_type": "task", "objective": question,
        "idempotency_key": f"ask-{uuid.uuid4().hex}", "source": {"session_id": "s-ask"}}))["mission"]
    mission_id = mission["mission_id"]
    blocked = ok(await client.call_tool("vp_wait_mission", {"mission_id": mission_id, "timeout_seconds": 120}))
    assert blocked["timed_out"] is False
    assert blocked["mission"]["state"] == "BLOCKED" and blocked["mission"]["blocked_reason"] == "INPUT_REQUIRED"
    assert question in blocked["mission"]["input_required"]["question"]
    assert "vp_resume_mission" in blocked["mission"]["next_step"]

    resumed = ok(await client.call_tool("vp_resume_mission", {"mission_id": mission_id, "answer": "teal, please"}))
    assert resumed["mission"]["state"] in ("QUEUED", "RUNNING", "COMPLETED")
    again = await client.call_tool("vp_resume_mission", {"mission_id": mission_id, "answer": "teal, please"})
    assert again.is_error and "MISSION_NOT_BLOCKED" in again.content[0].text
    assert "vp_wait_mission" in again.content[0].text  # the first call worked: wait

    final = ok(await client.call_tool("vp_wait_mission", {"mission_id": mission_id, "timeout_seconds": 120}))
    assert final["mission"]["state"] == "COMPLETED", final
    files = ok(await client.call_tool("vp_read_result_artifacts", {"mission_id": mission_id, "path": "result.md"}))
    assert "teal, please" in files["files"][0]["content"]


async def test_resume_after_input_required_over_stdio(stack):
    async with stdio_client(stack) as client:
        await ask_and_resume(client)


async def test_resume_after_input_required_over_http(stack):
    process, url = stack.start_http()
    try:
        async with Client(url) as client:
            await ask_and_resume(client)
    finally:
        process.terminate()


async def test_task_result_elicits_the_answer_and_resumes(stack):
    asked: list[str] = []

    async def answer(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"answer": "use the blue one"})

    async with legacy_session(stack.stdio_params(), elicitation_callback=answer) as (session, dispatcher):
        raw = await dispatcher.send_raw_request("tools/call", {
            "name": "vp_dispatch_mission", "task": {},
            "arguments": {"vp_id": "vp.general.primary", "mission_type": "task",
                          "objective": f"Which one, {uuid.uuid4().hex[:6]}?"}})
        task_id = raw["task"]["taskId"]
        result = await dispatcher.send_raw_request("tasks/result", {"taskId": task_id})
        assert result["structuredContent"]["mission"]["state"] == "COMPLETED"
        assert len(asked) == 1 and "Which one" in asked[0] and task_id in asked[0]
        files = (await session.call_tool("vp_read_result_artifacts", {"mission_id": task_id, "path": "result.md"}))
        assert "use the blue one" in files.structured_content["files"][0]["content"]


async def test_input_required_task_answered_by_another_client(stack):
    async with legacy_session(stack.stdio_params()) as (session, dispatcher):  # cannot take elicitations
        raw = await dispatcher.send_raw_request("tools/call", {
            "name": "vp_dispatch_mission", "task": {},
            "arguments": {"vp_id": "vp.general.primary", "mission_type": "task",
                          "objective": f"Proceed, {uuid.uuid4().hex[:6]}?"}})
        task_id = raw["task"]["taskId"]
        pending = asyncio.create_task(dispatcher.send_raw_request("tasks/result", {"taskId": task_id}))

        async def input_required() -> bool:
            got = await session.send_request(
                types.GetTaskRequest(params=types.GetTaskRequestParams(task_id=task_id)), types.GetTaskResult)
            return got.status == "input_required" and "Proceed" in (got.status_message or "")

        await async_wait_until(input_required, timeout=60, interval=0.2, what="task input_required")
        assert not pending.done()
        async with stdio_client(stack) as other:
            ok(await other.call_tool("vp_resume_mission", {"mission_id": task_id, "answer": "yes, go"}))
        result = await asyncio.wait_for(pending, 120)
        assert result["structuredContent"]["mission"]["state"] == "COMPLETED"


async def test_budget_exceeded_then_resumed_with_a_raised_budget(stack):
    async with stdio_client(stack) as client:
        mission = ok(await client.call_tool("vp_dispatch_mission", {
            "vp_id": "vp.general.primary", "mission_type": "task", "objective": f"count words {uuid.uuid4().hex}",
            "max_tokens": 1}))["mission"]
        blocked = ok(await client.call_tool("vp_wait_mission", {"mission_id": mission["mission_id"],
                                                                 "timeout_seconds": 120}))["mission"]
        assert blocked["state"] == "BLOCKED" and blocked["blocked_reason"] == "BUDGET_EXCEEDED"
        assert blocked["input_required"] is None and "max_tokens" in blocked["next_step"]
        ok(await client.call_tool("vp_resume_mission", {"mission_id": mission["mission_id"],
                                                         "max_tokens": 1_000_000}))
        final = ok(await client.call_tool("vp_wait_mission", {"mission_id": mission["mission_id"],
                                                               "timeout_seconds": 120}))["mission"]
        assert final["state"] == "COMPLETED", final
