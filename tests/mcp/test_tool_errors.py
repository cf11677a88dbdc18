"""Tool errors carry an actionable message (retryable or not, what to do),
never a traceback, and vp-mcp stays up after each."""

from __future__ import annotations

import os

import pytest

from tests.mcp.support import free_address, stdio_client

pytestmark = pytest.mark.timeout(180)


def error_text(result) -> str:
    assert result.is_error, result
    text = result.content[0].text
    assert "Traceback" not in text and 'File "' not in text
    return text


async def test_unknown_mission_invalid_vp_and_bad_arguments(stack):
    async with stdio_client(stack) as client:
        text = error_text(await client.call_tool("vp_get_mission", {"mission_id": "m-does-not-exist"}))
        assert "NOT_FOUND" in text and "not retryable" in text and "What to do:" in text

        text = error_text(await client.call_tool("vp_dispatch_mission", {
            "vp_id": "vp.nobody.here", "mission_type": "task", "objective": "x", "idempotency_key": "bad-vp-1"}))
        assert "INVALID_ARGUMENT" in text and "vp.nobody.here" in text and "not retryable" in text
        assert "vp.coder.primary" in text  # says which lanes exist

        text = error_text(await client.call_tool("vp_wait_mission", {"mission_id": "m-x", "timeout_seconds": 9999}))
        assert "timeout_seconds" in text and "INVALID_ARGUMENT" in text

        text = error_text(await client.call_tool("vp_dispatch_mission", {"vp_id": "vp.coder.primary"}))
        assert "objective" in text and "mission_type" in text

        # Still serving after all of that.
        sessions = (await client.call_tool("vp_list_sessions", {})).structured_content
        assert {s["vp_id"] for s in sessions["sessions"]} >= {"vp.coder.primary", "vp.general.primary"}


async def test_dispatcher_down_is_a_retryable_tool_error(stack):
    nowhere = free_address()  # nothing listens there
    async with stdio_client(stack, dispatcher=nowhere) as client:
        text = error_text(await client.call_tool("vp_get_mission", {"mission_id": "m-1"}))
        assert "[UNAVAILABLE, retryable]" in text and nowhere in text
        text = error_text(await client.call_tool("vp_dispatch_mission", {
            "vp_id": "vp.coder.primary", "mission_type": "code", "objective": "x", "idempotency_key": "down-1"}))
        assert "UNAVAILABLE" in text and "handle the work yourself" in text
        # The registry is up: the same vp-mcp still answers other tools.
        result = await client.call_tool("vp_list_sessions", {"vp_id_prefix": "vp.coder"})
        assert not result.is_error and result.structured_content["count"] == 1


async def test_credentials_from_the_data_dir_like_vpctl(stack, tmp_path):
    """No VP_TLS_* variables: --data-dir finds the credentials `vpctl up` would have written."""
    from mcp import Client, StdioServerParameters

    from tests.support.processes import console_script
    from tests.support.security import shared_pki

    env = {k: v for k, v in os.environ.items() if not k.startswith("VP_")}
    base = ["--dispatcher", stack.dispatcher, "--registry", stack.registry]
    with_dir = StdioServerParameters(command=console_script("vp-mcp"), env=env,
                                     args=[*base, "--data-dir", str(shared_pki().credentials.root)])
    async with Client(with_dir) as client:
        result = await client.call_tool("vp_list_sessions", {})
        assert not result.is_error, result.content[0].text
    without = StdioServerParameters(command=console_script("vp-mcp"), env=env,
                                    args=[*base, "--data-dir", str(tmp_path / "nothing-here")])
    async with Client(without) as client:
        text = error_text(await client.call_tool("vp_get_mission", {"mission_id": "m-1"}))
        assert "UNAVAILABLE" in text or "UNAUTHENTICATED" in text
        assert "Traceback" not in text
