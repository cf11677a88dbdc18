"""Missions run by real workers on the claude-code and codex presets, with a
fake CLI replaying recorded transcripts in each CLI's own format: usage and
cost on the mission, failures, budgets, questions answered and resumed, and a
VP that remembers its conversation across missions and restarts. Both store
backends."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest
from prometheus_client import REGISTRY

from services.common.contracts.vp.v1 import enums_pb2 as S
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import mission_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from tests.support.agent_missions import CODER, calls, dispatch, events, start_worker, stop_worker, wait
from tests.support.grpc_errors import reason_of
from tests.support.stack import running_stack
from tests.support.waiting import wait_until


@pytest.fixture
async def stack(db_url):
    async with running_stack(db_url) as running:
        yield running


@pytest.fixture
async def claude(stack, tmp_path):
    worker = await start_worker(stack, tmp_path, "claude-code", "--agent-model", "claude-sonnet-4-5")
    yield worker
    await stop_worker(worker)


def _sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_success_records_usage_and_cost_everywhere(stack, claude):
    tokens_before = _sample("vp_agent_tokens_total", lane=CODER, model="claude-sonnet-4-5-20250929", kind="output")
    cost_before = _sample("vp_agent_cost_usd_total", lane=CODER, model="claude-sonnet-4-5-20250929")
    mission = await dispatch(stack, "scenario:success fix the test")
    done = await wait(stack, mission.envelope.mission_id)
    assert done.state == S.MISSION_STATE_COMPLETED, done
    assert done.summary == "Fixed the off-by-one in app.py; the test passes now."
    assert (done.usage.input_tokens, done.usage.output_tokens, done.usage.total_tokens) == (27210, 120, 27330)
    assert done.usage.cost_usd == pytest.approx(0.0421) and done.usage.model == "claude-sonnet-4-5-20250929"
    assert done.conversation.agent == "claude-code"
    assert done.conversation.conversation_id == "5b1e6c1a-3f7d-4b8e-9a51-0c2d7e4f8a10"
    listed = (await stack.missions.ListMissions(mc_pb.ListMissionsRequest(vp_id=CODER))).missions
    assert [m.usage.total_tokens for m in listed if m.envelope.mission_id == mission.envelope.mission_id] == [27330]
    evs = await events(stack, mission.envelope.mission_id)
    completed = [e for e in evs if e.event_type == "vp.mission.completed"][0]
    assert completed.payload["usage"]["total_tokens"] == 27330
    assert any(e.event_type == "vp.mission.progress" and e.payload["message"].startswith("tool: Bash") for e in evs)
    assert _sample("vp_agent_tokens_total", lane=CODER, model="claude-sonnet-4-5-20250929",
                   kind="output") == tokens_before + 120
    assert _sample("vp_agent_cost_usd_total", lane=CODER,
                   model="claude-sonnet-4-5-20250929") == pytest.approx(cost_before + 0.0421)


async def test_error_max_turns_fails_with_the_error(stack, claude):
    mission = await dispatch(stack, "scenario:max_turns")
    done = await wait(stack, mission.envelope.mission_id)
    assert done.state == S.MISSION_STATE_FAILED
    assert done.error.code == "CLAUDE_ERROR_MAX_TURNS"
    assert done.usage.cost_usd == pytest.approx(0.0102)
    failed = [e for e in await events(stack, mission.envelope.mission_id) if e.event_type == "vp.mission.failed"]
    assert failed[0].payload["usage"]["cost_usd"] == pytest.approx(0.0102)


async def test_a_budget_crossed_mid_run_blocks_stops_the_agent_and_resumes_with_a_raise(stack, claude, tmp_path):
    mission = await dispatch(stack, "scenario:budget refactor everything", budget=mission_pb2.Budget(max_tokens=1000))
    mission_id = mission.envelope.mission_id
    blocked = await wait(stack, mission_id)
    assert blocked.state == S.MISSION_STATE_BLOCKED
    assert blocked.blocked_reason == S.BLOCKED_REASON_BUDGET_EXCEEDED
    assert blocked.error.code == "BUDGET_EXCEEDED" and "max_tokens 1000 exceeded: 30408" in blocked.error.message
    assert blocked.usage.total_tokens == 30408
    [call] = calls(tmp_path / "calls.jsonl")
    wait_until(lambda: not _alive(call["pid"]), what="the stopped agent to be gone")
    evs = await events(stack, mission_id)
    blocked_event = [e for e in evs if e.event_type == "vp.mission.blocked"][0]
    assert blocked_event.payload["blocked_reason"] == "budget_exceeded"
    assert blocked_event.payload["usage"]["total_tokens"] == 30408

    with pytest.raises(grpc.aio.AioRpcError) as too_low:
        await stack.missions.ResumeMission(mc_pb.ResumeMissionRequest(
            mission_id=mission_id, budget=mission_pb2.Budget(max_tokens=30000)))
    assert too_low.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    resumed = (await stack.missions.ResumeMission(mc_pb.ResumeMissionRequest(
        mission_id=mission_id, budget=mission_pb2.Budget(max_tokens=100000)))).mission
    assert resumed.state == S.MISSION_STATE_QUEUED and resumed.budget.max_tokens == 100000
    done = await wait(stack, mission_id)
    assert done.state == S.MISSION_STATE_COMPLETED, done
    assert done.resume_count == 1 and done.usage.total_tokens > 30408
    assert calls(tmp_path / "calls.jsonl")[-1]["resume"] == "0c3a9e7d-1b2f-4d6e-a8c9-7f1e2d3c4b55"


async def test_a_question_blocks_and_the_answer_resumes_the_same_conversation(stack, claude, tmp_path):
    mission = await dispatch(stack, "scenario:question add the migration")
    mission_id = mission.envelope.mission_id
    blocked = await wait(stack, mission_id)
    assert blocked.state == S.MISSION_STATE_BLOCKED
    assert blocked.blocked_reason == S.BLOCKED_REASON_INPUT_REQUIRED
    assert blocked.input_request.question == "Should the migration target PostgreSQL or SQLite?"
    evs = await events(stack, mission_id)
    asked = [e for e in evs if e.event_type == "vp.mission.input_required"]
    assert len(asked) == 1 and asked[0].payload["question"] == blocked.input_request.question

    with pytest.raises(grpc.aio.AioRpcError) as no_answer:
        await stack.missions.ResumeMission(mc_pb.ResumeMissionRequest(mission_id=mission_id))
    assert no_answer.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    resumed = (await stack.missions.ResumeMission(mc_pb.ResumeMissionRequest(
        mission_id=mission_id, answer="PostgreSQL, please"))).mission
    assert resumed.state == S.MISSION_STATE_QUEUED and resumed.answer == "PostgreSQL, please"
    done = await wait(stack, mission_id)
    assert done.state == S.MISSION_STATE_COMPLETED, done
    assert done.summary == "Added the PostgreSQL migration."
    last = calls(tmp_path / "calls.jsonl")[-1]
    assert last["resume"] == "7e4d2c1b-0a9f-4e8d-b7c6-5a4b3c2d1e66" and "PostgreSQL, please" in last["prompt"]
    assert "vp.mission.resumed" in [e.event_type for e in await events(stack, mission_id)]

    with pytest.raises(grpc.aio.AioRpcError) as not_blocked:
        await stack.missions.ResumeMission(mc_pb.ResumeMissionRequest(mission_id=mission_id, answer="again"))
    assert not_blocked.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(not_blocked.value) == "MISSION_NOT_BLOCKED"


async def test_a_vp_remembers_its_conversation_across_missions_and_restarts(stack, tmp_path):
    worker = await start_worker(stack, tmp_path, "claude-code")
    first = await wait(stack, (await dispatch(stack, "scenario:resume_only first")).envelope.mission_id)
    conversation = "2f3e4d5c-6b7a-4c8d-9e0f-1a2b3c4d5e88"
    assert first.state == S.MISSION_STATE_COMPLETED and first.conversation.conversation_id == conversation
    session = (await stack.sessions.GetSession(reg_pb.GetSessionRequest(vp_id=CODER))).session
    assert (session.conversation.agent, session.conversation.conversation_id) == ("claude-code", conversation)

    await stop_worker(worker)  # a new worker process, a new lease term
    worker = await start_worker(stack, tmp_path, "claude-code")
    try:
        second = await wait(stack, (await dispatch(stack, "scenario:resume_only second")).envelope.mission_id)
        assert second.state == S.MISSION_STATE_COMPLETED, second
        assert second.summary == "Continued in the same conversation."
        assert calls(tmp_path / "calls.jsonl")[-1]["resume"] == conversation

        fresh = await wait(stack, (await dispatch(stack, "scenario:success alone", fresh_context=True))
                           .envelope.mission_id)
        assert fresh.state == S.MISSION_STATE_COMPLETED
        assert calls(tmp_path / "calls.jsonl")[-1]["resume"] == ""
        assert fresh.conversation.conversation_id != conversation

        reset = (await stack.sessions.ResetConversation(reg_pb.ResetConversationRequest(vp_id=CODER))).session
        assert not reset.HasField("conversation")
        again = await wait(stack, (await dispatch(stack, "scenario:resume_only after reset")).envelope.mission_id)
        assert again.state == S.MISSION_STATE_COMPLETED and calls(tmp_path / "calls.jsonl")[-1]["resume"] == ""
    finally:
        await stop_worker(worker)


async def test_codex_question_then_exec_resume(stack, tmp_path):
    worker = await start_worker(stack, tmp_path, "codex", "--agent-model", "gpt-5-codex")
    try:
        mission = await dispatch(stack, "scenario:question wire the worker")
        blocked = await wait(stack, mission.envelope.mission_id)
        assert blocked.state == S.MISSION_STATE_BLOCKED
        assert blocked.input_request.question == "Which queue should the worker consume, jobs or events?"
        assert blocked.usage.input_tokens == 5000 and blocked.usage.model == "gpt-5-codex"
        await stack.missions.ResumeMission(mc_pb.ResumeMissionRequest(mission_id=mission.envelope.mission_id,
                                                                      answer="use jobs"))
        done = await wait(stack, mission.envelope.mission_id)
        assert done.state == S.MISSION_STATE_COMPLETED, done
        assert done.usage.input_tokens == 10600
        argv = calls(tmp_path / "calls.jsonl")[-1]["argv"]
        assert argv[:4] == ["exec", "--json", "--model", "gpt-5-codex"]
        assert argv[-3:-1] == ["resume", "0199a215-1111-7111-8111-111111111111"] and "use jobs" in argv[-1]
    finally:
        await stop_worker(worker)


async def test_broken_output_never_crashes_the_worker(stack, claude):
    broken = await wait(stack, (await dispatch(stack, "scenario:garbage")).envelope.mission_id)
    assert broken.state == S.MISSION_STATE_FAILED and broken.error.code == "AGENT_NO_RESULT"
    evs = await events(stack, broken.envelope.mission_id)
    assert any("malformed" in e.payload["data"] for e in evs if e.event_type == "vp.mission.progress")
    after = await wait(stack, (await dispatch(stack, "scenario:success still alive", fresh_context=True))
                       .envelope.mission_id)
    assert after.state == S.MISSION_STATE_COMPLETED


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False
