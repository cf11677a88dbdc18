"""Cancel a running mission, read its events with a cursor, derived idempotency keys."""

from __future__ import annotations

import uuid

import pytest

from tests.mcp.support import stdio_client
from tests.support.waiting import async_wait_until

pytestmark = pytest.mark.timeout(180)


def ok(result):
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def test_cancel_running_mission_then_events_after_cursor(stack):
    async with stdio_client(stack) as client:
        mission = ok(await client.call_tool("vp_dispatch_mission", {
            "vp_id": "vp.coder.primary", "mission_type": "code", "objective": f"hold {uuid.uuid4().hex}",
            "idempotency_key": f"hold-{uuid.uuid4().hex}"}))["mission"]
        mission_id = mission["mission_id"]

        async def running():
            return ok(await client.call_tool("vp_get_mission", {"mission_id": mission_id}))["mission"]["state"] \
                == "RUNNING"

        await async_wait_until(running, timeout=60, interval=0.1, what="mission RUNNING")
        bounded = ok(await client.call_tool("vp_wait_mission", {"mission_id": mission_id, "timeout_seconds": 0.5}))
        assert bounded["timed_out"] is True and bounded["mission"]["state"] == "RUNNING"
        assert "vp_wait_mission" in bounded["mission"]["next_step"]
        cancelled = ok(await client.call_tool("vp_cancel_mission", {"mission_id": mission_id,
                                                                      "reason": "user changed their mind"}))
        assert cancelled["mission"]["cancel_requested"] or cancelled["mission"]["state"] == "CANCELLED"
        final = ok(await client.call_tool("vp_wait_mission", {"mission_id": mission_id, "timeout_seconds": 60}))
        assert final["mission"]["state"] == "CANCELLED" and final["mission"]["terminal"]
        assert "Cancelled" in final["mission"]["next_step"]

        first = ok(await client.call_tool("vp_get_events", {"mission_id": mission_id, "limit": 2}))
        assert len(first["events"]) == 2 and first["more"] is True
        rest = ok(await client.call_tool("vp_get_events", {"mission_id": mission_id,
                                                           "after_event_id": first["next_after_event_id"]}))
        ids = [e["event_id"] for e in first["events"] + rest["events"]]
        assert ids == sorted(set(ids))
        types = [e["event_type"] for e in first["events"] + rest["events"]]
        assert types[0] == "vp.mission.dispatched" and "vp.mission.cancelled" in types


async def test_dispatch_without_key_derives_one_so_a_retry_does_not_double(stack):
    arguments = {"vp_id": "vp.general.primary", "mission_type": "task",
                 "objective": f"summarise {uuid.uuid4().hex}", "source": {"session_id": "s-9", "turn_id": "t-3"}}
    async with stdio_client(stack) as client:
        first = ok(await client.call_tool("vp_dispatch_mission", arguments))
        retried = ok(await client.call_tool("vp_dispatch_mission", dict(arguments)))
        assert first["idempotency_key_derived"] and first["idempotency_key"] == retried["idempotency_key"]
        assert retried["deduplicated"] and retried["mission"]["mission_id"] == first["mission"]["mission_id"]
        listed = ok(await client.call_tool("vp_list_missions", {"source_session_id": "s-9"}))
        assert [m["mission_id"] for m in listed["missions"]] == [first["mission"]["mission_id"]]
        assert listed["missions"][0]["source"] == {"session_id": "s-9", "turn_id": "t-3"}


async def test_dispatch_without_vp_id_routes_by_mission_type(stack):
    async with stdio_client(stack) as client:
        mission = ok(await client.call_tool("vp_dispatch_mission", {
            "mission_type": "research", "objective": f"find out {uuid.uuid4().hex}"}))["mission"]
        assert mission["route"]["lane"] == "vp.general.primary"
        assert "research" in mission["route"]["provenance"]
