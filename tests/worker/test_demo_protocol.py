"""The embedded demo executor speaks agent protocol v1: usage, a question, a resume."""

from __future__ import annotations

from services.common.contracts.vp.v1 import mission_pb2
from services.worker.executors.base import BLOCKED, COMPLETED
from services.worker.executors.demo_executor import DemoExecutor


def _mission(run, **fields):
    run.mission = mission_pb2.Mission(envelope=run.envelope, attempt=run.attempt, **fields)
    return run


async def test_demo_reports_usage_cost_and_a_conversation(make_run, progress):
    result = await DemoExecutor(delay=0, steps=3).run(_mission(make_run("write a haiku")), progress)
    assert result.outcome == COMPLETED and result.summary.startswith("demo: wrote result.md")
    # two working steps of (120 + 8 * 3) input and 40 output tokens
    assert (result.usage.input_tokens, result.usage.output_tokens) == (288, 80)
    assert result.usage.cost_usd > 0 and result.usage.model == "demo-1"
    assert result.conversation_id.startswith("demo-") and result.agent == "demo"


async def test_demo_asks_when_the_objective_is_a_question_and_uses_the_answer(make_run, progress):
    run = _mission(make_run("should I rename the module?"))
    first = await DemoExecutor(delay=0, steps=3).run(run, progress)
    assert first.outcome == BLOCKED and first.blocked_reason == "input_required"
    assert first.question == "Before I go on: should I rename the module?" and first.choices == ("yes", "no")
    again = _mission(make_run("should I rename the module?", mission_id=run.mission_id, attempt=2), answer="yes")
    again.conversation_id = first.conversation_id
    second = await DemoExecutor(delay=0, steps=3).run(again, progress)
    assert second.outcome == COMPLETED and second.conversation_id == first.conversation_id
    assert "## Answer given\n\nyes" in (again.mission_dir / "result.md").read_text()


async def test_demo_stops_at_its_token_budget(make_run, progress):
    run = _mission(make_run("write a haiku"))
    run.mission.budget.max_tokens = 100
    result = await DemoExecutor(delay=0, steps=5).run(run, progress)
    assert result.outcome == BLOCKED and result.blocked_reason == "budget_exceeded"
    assert not (run.mission_dir / "result.md").exists()
