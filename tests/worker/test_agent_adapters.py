"""The claude-code and codex presets against a fake CLI that replays recorded
transcripts in each CLI's own format and checks the argv it was given."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from services.common.contracts.vp.v1 import mission_pb2
from services.worker.agents.presets import build_agent_executor
from services.worker.executors.base import BLOCKED, COMPLETED, FAILED

FAKE = Path(__file__).resolve().parents[1] / "support" / "fake_agent_cli.py"


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """An executable wrapper around the fake CLI, and the log of its calls."""
    wrapper = tmp_path / "bin" / "agent"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    wrapper.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_AGENT_LOG", str(log))
    return wrapper, log


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def executor(kind: str, wrapper: Path, **kw):
    return build_agent_executor(kind, agent_bin=str(wrapper), kill_grace=kw.pop("kill_grace", 2.0), **kw)


def with_mission(run, *, max_tokens=None, answer="", question="", conversation=None, usage=None):
    mission = mission_pb2.Mission(envelope=run.envelope, attempt=run.attempt)
    if max_tokens is not None:
        mission.budget.max_tokens = max_tokens
    if answer:
        mission.answer = answer
    if question:
        mission.input_request.question = question
    if usage is not None:
        mission.usage.CopyFrom(usage)
    run.mission = mission
    if conversation:
        run.conversation_id = conversation
    return run


async def test_claude_success_records_usage_cost_and_session(fake_cli, make_run, progress):
    wrapper, log = fake_cli
    ex = executor("claude-code", wrapper, agent_model="claude-sonnet-4-5", agent_args=["--max-turns", "7"])
    run = with_mission(make_run("scenario:success fix the test"))
    result = await ex.run(run, progress)
    assert result.outcome == COMPLETED, result
    assert result.summary == "Fixed the off-by-one in app.py; the test passes now."
    assert result.usage.input_tokens == 10 + 1700 + 25500
    assert result.usage.cached_input_tokens == 25500
    assert result.usage.output_tokens == 120
    assert result.usage.total_tokens == 27210 + 120
    assert result.usage.cost_usd == pytest.approx(0.0421)
    assert result.usage.model == "claude-sonnet-4-5-20250929"
    assert result.conversation_id == "5b1e6c1a-3f7d-4b8e-9a51-0c2d7e4f8a10" and result.agent == "claude-code"
    [call] = calls(log)
    assert call["argv"][:7] == ["-p", "--output-format", "stream-json", "--verbose", "--model", "claude-sonnet-4-5",
                                "--max-turns"]
    assert "--resume" not in call["argv"] and call["prompt"].startswith("scenario:success fix the test")
    assert any(m.startswith("tool: Bash") for m in progress.messages)
    assert any("I'll start by looking" in m for m in progress.messages)


async def test_claude_error_max_turns_fails_with_the_subtype(fake_cli, make_run, progress):
    wrapper, _ = fake_cli
    result = await executor("claude-code", wrapper).run(with_mission(make_run("scenario:max_turns")), progress)
    assert result.outcome == FAILED
    assert result.error_code == "CLAUDE_ERROR_MAX_TURNS"
    assert result.usage.cost_usd == pytest.approx(0.0102)


async def test_claude_budget_crossed_mid_run_blocks_and_stops_the_agent(fake_cli, make_run, progress):
    wrapper, _ = fake_cli
    run = with_mission(make_run("scenario:budget"), max_tokens=1000)
    result = await executor("claude-code", wrapper, kill_grace=1.0).run(run, progress)
    assert result.outcome == BLOCKED and result.blocked_reason == "budget_exceeded"
    assert result.error_code == "BUDGET_EXCEEDED"
    assert "max_tokens 1000 exceeded: 30408 tokens used" in result.error_message
    assert result.usage.total_tokens == 30408


async def test_claude_budget_counts_usage_of_earlier_runs(fake_cli, make_run, progress):
    wrapper, _ = fake_cli
    before = mission_pb2.Usage(input_tokens=900, output_tokens=50, total_tokens=950)
    run = with_mission(make_run("scenario:resume_only"), max_tokens=960, usage=before)
    result = await executor("claude-code", wrapper).run(run, progress)
    # The run ended with its result before anything could be stopped: it stands (spec §5).
    assert result.outcome == COMPLETED
    assert result.usage.total_tokens == 13


async def test_claude_question_then_resume_with_the_answer(fake_cli, make_run, progress):
    wrapper, log = fake_cli
    ex = executor("claude-code", wrapper)
    run = with_mission(make_run("scenario:question"))
    first = await ex.run(run, progress)
    assert first.outcome == BLOCKED and first.blocked_reason == "input_required"
    assert first.question == "Should the migration target PostgreSQL or SQLite?"
    resumed = with_mission(make_run("scenario:question", mission_id=run.mission_id, attempt=2),
                           answer="PostgreSQL, please", question=first.question,
                           conversation=first.conversation_id)
    second = await ex.run(resumed, progress)
    assert second.outcome == COMPLETED, second
    assert second.summary == "Added the PostgreSQL migration."
    last = calls(log)[-1]
    assert last["resume"] == "7e4d2c1b-0a9f-4e8d-b7c6-5a4b3c2d1e66"
    assert "PostgreSQL, please" in last["prompt"] and first.question in last["prompt"]


async def test_claude_garbage_lines_are_progress_and_a_missing_result_fails(fake_cli, make_run, progress):
    wrapper, _ = fake_cli
    result = await executor("claude-code", wrapper).run(with_mission(make_run("scenario:garbage")), progress)
    assert result.outcome == FAILED and result.error_code == "AGENT_NO_RESULT"
    malformed = [m for m, p in progress.calls if p.get("malformed")]
    assert any("not a JSON line at all" in m for m in malformed)
    assert any('"subtype":"succ' in m for m in malformed)  # the truncated last line
    assert len(malformed) >= 4


async def test_codex_success_maps_items_and_usage(fake_cli, make_run, progress):
    wrapper, log = fake_cli
    result = await executor("codex", wrapper, agent_model="gpt-5-codex").run(
        with_mission(make_run("scenario:success")), progress)
    assert result.outcome == COMPLETED and result.summary == "Fixed the off-by-one in app.py."
    assert (result.usage.input_tokens, result.usage.cached_input_tokens, result.usage.output_tokens) == \
        (24763, 24448, 122)
    assert result.usage.cost_usd == 0 and result.usage.model == "gpt-5-codex"
    assert result.conversation_id == "0199a213-81c0-7800-8aa1-bbab2a035a53" and result.agent == "codex"
    [call] = calls(log)
    assert call["argv"][:4] == ["exec", "--json", "--model", "gpt-5-codex"]
    assert "resume" not in call["argv"]
    assert any(m.startswith("$ bash -lc") for m in progress.messages)
    assert any(m.startswith("files: update app.py") for m in progress.messages)


async def test_codex_turn_failed_fails(fake_cli, make_run, progress):
    wrapper, _ = fake_cli
    result = await executor("codex", wrapper).run(with_mission(make_run("scenario:failed")), progress)
    assert result.outcome == FAILED and result.error_code in ("CODEX_ERROR", "CODEX_TURN_FAILED")
    assert "rate limit" in result.error_message


async def test_codex_question_then_exec_resume(fake_cli, make_run, progress):
    wrapper, log = fake_cli
    ex = executor("codex", wrapper)
    run = with_mission(make_run("scenario:question"))
    first = await ex.run(run, progress)
    assert first.outcome == BLOCKED and first.question == "Which queue should the worker consume, jobs or events?"
    resumed = with_mission(make_run("scenario:question", mission_id=run.mission_id, attempt=2), answer="use jobs",
                           question=first.question, conversation=first.conversation_id)
    second = await ex.run(resumed, progress)
    assert second.outcome == COMPLETED, second
    argv = calls(log)[-1]["argv"]
    assert argv[:2] == ["exec", "--json"] and argv[-3:-1] == ["resume", "0199a215-1111-7111-8111-111111111111"]
    assert "use jobs" in argv[-1]


async def test_codex_truncated_output_without_a_turn_end_fails_clearly(fake_cli, make_run, progress):
    wrapper, _ = fake_cli
    result = await executor("codex", wrapper).run(with_mission(make_run("scenario:no_result")), progress)
    assert result.outcome == FAILED and result.error_code == "AGENT_NO_RESULT"


async def test_a_prompt_starting_with_a_dash_is_never_an_option(fake_cli, make_run, progress):
    wrapper, log = fake_cli
    result = await executor("codex", wrapper).run(with_mission(make_run("--help scenario:success")), progress)
    assert result.outcome == COMPLETED
    assert calls(log)[-1]["prompt"].startswith(" --help")


async def test_a_missing_binary_fails_to_start(make_run, progress, tmp_path):
    ex = build_agent_executor("claude-code", agent_bin=str(tmp_path / "nope"))
    result = await ex.run(with_mission(make_run("scenario:success")), progress)
    assert result.outcome == FAILED and result.error_code == "EXECUTOR_START_FAILED"


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="does not take"):
        build_agent_executor("codex", command=["x"])
    with pytest.raises(ValueError, match="unknown agent preset"):
        build_agent_executor("gemini")
