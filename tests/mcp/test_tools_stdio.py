"""vp-mcp as a stdio subprocess, driven by the SDK's real MCP client against a
real stack: schemas, dispatch -> wait (progress) -> artifacts, cancel, errors."""

from __future__ import annotations

import uuid

import pytest
from jsonschema import Draft202012Validator

from services.mcp.tools import TOOL_NAMES
from tests.mcp.support import stdio_client
from tests.support.waiting import async_wait_until

pytestmark = pytest.mark.timeout(180)


async def _true(value: bool) -> bool:
    return value


def structured(result):
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def test_lists_every_tool_with_valid_schemas(stack):
    async with stdio_client(stack) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == set(TOOL_NAMES)
    for tool in tools.values():
        Draft202012Validator.check_schema(tool.input_schema)
        Draft202012Validator.check_schema(tool.output_schema)
        assert tool.input_schema["type"] == "object" and tool.output_schema["type"] == "object"
        assert len(tool.description) > 80, tool.name
        for name, prop in tool.input_schema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"


@pytest.mark.parametrize("mode", ["auto", "legacy"], ids=["2026-07-28", "2025-11-25"])
async def test_dispatch_wait_with_progress_then_artifacts(stack, mode):
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value, total, message):
        progress.append((value, total, message))

    key = f"test-{uuid.uuid4().hex}"
    async with stdio_client(stack, mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        dispatched = structured(await client.call_tool("vp_dispatch_mission", {
            "vp_id": "vp.coder.primary", "mission_type": "code", "objective": "write the answer",
            "idempotency_key": key, "source": {"session_id": "s-1", "turn_id": "t-1", "reply_mode": "sync"}}))
        mission_id = dispatched["mission"]["mission_id"]
        assert dispatched["deduplicated"] is False and dispatched["idempotency_key"] == key

        waited = structured(await client.call_tool("vp_wait_mission", {"mission_id": mission_id,
                                                                        "timeout_seconds": 60},
                                                   progress_callback=on_progress))
        assert waited["mission"]["state"] == "COMPLETED", waited
        assert waited["timed_out"] is False
        # The client hands notifications to the callback on its own schedule: the last ones may land
        # just after the result.
        await async_wait_until(lambda: _true(len(progress) >= waited["progress_events"]), timeout=10,
                               what="every progress notification")
        messages = [m for _, _, m in progress]
        assert any("step 3/3" in (m or "") for m in messages), messages
        assert [v for v, _, _ in progress] == sorted({v for v, _, _ in progress})  # strictly increasing
        assert waited["progress_events"] == len(progress)

        artifacts = structured(await client.call_tool("vp_read_result_artifacts", {"mission_id": mission_id}))
        files = {f["path"]: f for f in artifacts["files"]}
        assert files["result.md"]["inline"] and "write the answer" in files["result.md"]["content"]
        assert files["data.bin"] == {"path": "data.bin", "size": 256, "inline": False, "content": None,
                                     "omitted_reason": "binary"}

        again = structured(await client.call_tool("vp_dispatch_mission", {
            "vp_id": "vp.coder.primary", "mission_type": "code", "objective": "write the answer",
            "idempotency_key": key, "source": {"session_id": "s-1", "turn_id": "t-1", "reply_mode": "sync"}}))
        assert again["deduplicated"] is True and again["mission"]["mission_id"] == mission_id
