"""vp-mcp over streamable HTTP (bound to 127.0.0.1 on port 0), with the SDK's client."""

from __future__ import annotations

import uuid

import pytest
from mcp import Client

from services.mcp.main import build_parser
from tests.mcp.support import free_address
from tests.support.waiting import async_wait_until

pytestmark = pytest.mark.timeout(180)


def test_http_listens_on_loopback_by_default():
    args = build_parser().parse_args(["--transport", "http"])
    assert args.listen.startswith("127.0.0.1:")


async def test_dispatch_wait_artifacts_and_errors_over_http(stack):
    process, url = stack.start_http()
    progress: list[str] = []

    async def on_progress(value, total, message):
        progress.append(message or "")

    try:
        async with Client(url) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert "vp_wait_mission" in names
            dispatched = await client.call_tool("vp_dispatch_mission", {
                "vp_id": "vp.general.primary", "mission_type": "research", "objective": f"look up {uuid.uuid4()}",
                "idempotency_key": f"http-{uuid.uuid4().hex}", "source": {"session_id": "http-s"}})
            assert not dispatched.is_error, dispatched.content[0].text
            mission_id = dispatched.structured_content["mission"]["mission_id"]
            waited = await client.call_tool("vp_wait_mission", {"mission_id": mission_id, "timeout_seconds": 120},
                                            progress_callback=on_progress)
            assert waited.structured_content["mission"]["state"] == "COMPLETED", waited.content[0].text
            expected = waited.structured_content["progress_events"]

            async def all_progress_seen() -> bool:
                return len(progress) >= expected

            await async_wait_until(all_progress_seen, timeout=10, what="every progress notification")
            assert any("vp.mission.progress" in m for m in progress), progress
            artifacts = await client.call_tool("vp_read_result_artifacts", {"mission_id": mission_id})
            [result_md] = [f for f in artifacts.structured_content["files"] if f["path"] == "result.md"]
            assert result_md["inline"] and mission_id in result_md["content"]

            failed = await client.call_tool("vp_get_mission", {"mission_id": "m-unknown"})
            assert failed.is_error and "NOT_FOUND" in failed.content[0].text
            assert not (await client.call_tool("vp_list_sessions", {})).is_error
    finally:
        process.terminate()


async def test_http_with_dispatcher_down_stays_up(stack):
    process, url = stack.start_http(dispatcher=free_address())
    try:
        async with Client(url) as client:
            down = await client.call_tool("vp_list_missions", {})
            assert down.is_error and "[UNAVAILABLE, retryable]" in down.content[0].text
            up = await client.call_tool("vp_list_sessions", {})
            assert not up.is_error
        assert process.proc.poll() is None
    finally:
        process.terminate()
