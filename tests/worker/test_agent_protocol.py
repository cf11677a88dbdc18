"""Agent protocol v1: the helper module round-trips, and a subprocess agent
speaking it over VP_AGENT_EVENTS_FD drives the run's result, usage and budget."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from services.common.contracts.vp.v1 import mission_pb2
from services.worker.agents import vp_agent
from services.worker.agents.presets import channel_hooks
from services.worker.executors.base import BLOCKED, COMPLETED, FAILED
from services.worker.executors.subprocess_executor import SubprocessExecutor

AGENT = Path(__file__).resolve().parents[1] / "support" / "protocol_agent.py"


# -- the helper module ----------------------------------------------------------


class _Capture:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines += [line for line in text.splitlines() if line]

    def flush(self) -> None:
        pass


def _agent() -> tuple[vp_agent.Agent, _Capture]:
    agent = vp_agent.Agent(None)
    capture = _Capture()
    agent._stream = capture  # the same writer, into memory
    return agent, capture


def test_every_helper_event_parses_back_to_itself():
    agent, out = _agent()
    agent.progress("step", percent=42)
    agent.usage(input_tokens=10, output_tokens=3, cached_input_tokens=4, cost_usd=0.5, model="m", cumulative=True)
    agent.artifact("a/b.md", "desc")
    agent.needs_input("Which?", choices=["x", "y"])
    agent.conversation("c-1")
    agent.result("failed", "sum", error_code="E_X", error_message="msg")
    parsed = [vp_agent.parse_line(line) for line in out.lines]
    assert [p.type for p in parsed] == ["progress", "usage", "artifact", "needs_input", "conversation", "result"]
    assert parsed[0].data == {"message": "step", "percent": 42.0}
    assert parsed[1].data == {"input_tokens": 10, "output_tokens": 3, "cached_input_tokens": 4, "cost_usd": 0.5,
                              "model": "m", "cumulative": True}
    assert parsed[2].data == {"path": "a/b.md", "description": "desc"}
    assert parsed[3].data == {"question": "Which?", "choices": ["x", "y"]}
    assert parsed[4].data == {"id": "c-1"}
    assert parsed[5].data == {"status": "failed", "summary": "sum", "error": {"code": "E_X", "message": "msg"},
                              "question": "", "choices": []}
    assert all(json.loads(line)["v"] == 1 for line in out.lines)


@pytest.mark.parametrize("line, kind", [
    ("", vp_agent.Ignored),
    ("not json", vp_agent.Malformed),
    ("[1, 2]", vp_agent.Malformed),
    ('{"type": "progress", "message": "x"', vp_agent.Malformed),
    ('{"message": "no type"}', vp_agent.Malformed),
    ('{"type": "future_thing", "x": 1}', vp_agent.Ignored),
    ('{"v": 2, "type": "progress"}', vp_agent.Ignored),
    ('{"type": "result", "status": "maybe"}', vp_agent.Malformed),
    ('{"type": "needs_input"}', vp_agent.Malformed),
    ('{"type": "progress", "message": "ok", "unknown": {"nested": true}}', vp_agent.Event),
    (b'\xff\xfe{"type": "progress"}', vp_agent.Malformed),
    ("[" * 100000, vp_agent.Malformed),
])
def test_parse_line_never_raises(line, kind):
    assert isinstance(vp_agent.parse_line(line), kind)


def test_bad_numbers_and_codes_are_normalized():
    usage = vp_agent.parse_line('{"type":"usage","input_tokens":-5,"output_tokens":"7","cost_usd":1e400}')
    assert usage.data["input_tokens"] == 0 and usage.data["output_tokens"] == 0 and usage.data["cost_usd"] == 0
    result = vp_agent.parse_line('{"type":"result","status":"failed","error":{"code":"bad code"}}')
    assert result.data["error"]["code"] == vp_agent.GENERIC_ERROR_CODE


def test_connect_without_a_channel_is_a_no_op(monkeypatch):
    monkeypatch.delenv(vp_agent.EVENTS_FD_ENV, raising=False)
    agent = vp_agent.connect()
    assert not agent.connected
    agent.result("completed")  # nothing to write to, nothing raised


# -- a subprocess agent on the channel --------------------------------------------


def _executor(**kw) -> SubprocessExecutor:
    grace = kw.pop("kill_grace", 2.0)
    return SubprocessExecutor([sys.executable, str(AGENT)], kill_grace=grace, hooks=channel_hooks(grace), **kw)


def _mission(run, **fields):
    mission = mission_pb2.Mission(envelope=run.envelope, attempt=run.attempt, **fields)
    run.mission = mission
    return run


async def test_a_protocol_agent_reports_progress_usage_artifacts_and_result(make_run, progress):
    run = _mission(make_run("proto:full"))
    result = await _executor().run(run, progress)
    assert result.outcome == COMPLETED and result.summary == "all done"
    assert (result.usage.input_tokens, result.usage.cached_input_tokens, result.usage.output_tokens) == (1010, 400, 205)
    assert result.usage.total_tokens == 1215 and result.usage.cost_usd == pytest.approx(0.011)
    assert result.usage.model == "m-2" and result.conversation_id == "conv-full-1" and result.agent == "subprocess"
    kinds = [p.get("kind") for _, p in progress.calls]
    assert kinds.count("usage") == 2
    assert ("artifact: report.md (the report)", {"stream": "agent", "kind": "artifact", "path": "report.md"}) \
        in progress.calls
    assert any(p.get("rejected") for _, p in progress.calls)
    context = json.loads((run.mission_dir / "agent_context.json").read_text())
    assert context["schema"] == "vp.agent_context.v1" and context["answer"] is None


async def test_needs_input_blocks_and_the_answer_resumes(make_run, progress):
    run = _mission(make_run("proto:ask"))
    first = await _executor().run(run, progress)
    assert first.outcome == BLOCKED and first.blocked_reason == "input_required"
    assert first.question == "Which color?" and first.choices == ("red", "blue")
    again = _mission(make_run("proto:ask", mission_id=run.mission_id, attempt=2), answer="blue")
    again.mission.input_request.question = "Which color?"
    again.conversation_id = first.conversation_id
    second = await _executor().run(again, progress)
    assert second.outcome == COMPLETED and second.summary == "painted it blue", second


async def test_an_agent_that_keeps_running_after_its_question_is_stopped(make_run, progress):
    result = await _executor(kill_grace=0.3).run(_mission(make_run("proto:linger")), progress)
    assert result.outcome == BLOCKED and result.question == "Still there?"


async def test_crossing_the_budget_stops_the_agent_and_blocks(make_run, progress):
    run = _mission(make_run("proto:spend"))
    run.mission.budget.max_tokens = 2000
    result = await _executor(kill_grace=0.5).run(run, progress)
    assert result.outcome == BLOCKED and result.blocked_reason == "budget_exceeded"
    assert result.error_code == "BUDGET_EXCEEDED" and "max_tokens 2000 exceeded" in result.error_message
    assert result.usage.total_tokens > 2000


async def test_the_cost_budget_counts_earlier_runs(make_run, progress):
    run = _mission(make_run("proto:full"), usage=mission_pb2.Usage(cost_usd=0.995))
    run.mission.budget.max_cost_usd = 1.0
    result = await _executor().run(run, progress)
    assert result.outcome == BLOCKED and "max_cost_usd 1 exceeded" in result.error_message


async def test_malformed_lines_are_progress_and_a_missing_result_fails(make_run, progress):
    result = await _executor().run(_mission(make_run("proto:garbage")), progress)
    assert result.outcome == FAILED and result.error_code == "AGENT_NO_RESULT"
    malformed = [m for m, p in progress.calls if p.get("malformed")]
    assert "this is not json" in malformed and any("compl" in m for m in malformed)


async def test_unknown_types_and_versions_are_ignored(make_run, progress):
    result = await _executor().run(_mission(make_run("proto:future")), progress)
    assert result.outcome == COMPLETED and result.summary == "future-proof"


async def test_a_blocked_result_carries_its_question(make_run, progress):
    result = await _executor().run(_mission(make_run("proto:blocked")), progress)
    assert result.outcome == BLOCKED and result.question == "Which API key should I use?"


async def test_a_failed_result_wins_over_the_exit_status(make_run, progress):
    result = await _executor().run(_mission(make_run("proto:fail")), progress)
    assert result.outcome == FAILED and result.error_code == vp_agent.GENERIC_ERROR_CODE
    assert result.error_message == "bad code"


async def test_a_plain_agent_is_judged_by_its_exit_status(make_run, progress):
    result = await _executor().run(_mission(make_run("plain")), progress)
    assert result.outcome == COMPLETED and result.summary == "plain agent: no protocol"
