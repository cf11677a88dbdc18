"""Agent protocol v1 in the transition module, over the store on both backends
with a FakeClock: usage totals, BLOCKED with a reason and a question, the
deadline while BLOCKED, and ResumeMission's checks and effects."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.common.errors import InvalidArgument, MissionNotBlocked
from services.common.states import MissionState
from services.dispatcher import transitions
from services.dispatcher.agent_results import AgentReport, BudgetRaise
from services.dispatcher.routing import CODER, Reason, to_caller
from tests.dispatcher.test_transitions import assign, clock, dispatched, events, get, store  # noqa: F401 (fixtures)

M = MissionState
QUESTION = AgentReport(input_tokens=100, output_tokens=20, cost_usd=0.5, model="m", blocked_reason="input_required",
                       question="Which one?", choices=["a", "b"], conversation_agent="claude-code",
                       conversation_id="c-1")


def report(store, clock, record, outcome, agent: AgentReport, *, error_code=None, routes=transitions.NO_ROUTES):
    return store.run(lambda tx: transitions.result(
        tx, record.mission_id, owner="w-1", lease_epoch=1, attempt=record.attempt, reported=outcome,
        result_ref="", error_code=error_code, error_message="", summary="sum", now=clock.now(), routes=routes,
        report=agent))


def blocked_mission(store, clock, agent=QUESTION, **kwargs):
    dispatched(store, clock, **kwargs)
    [running], _ = assign(store, clock)
    record, effects = report(store, clock, running, M.BLOCKED, agent)
    return record, effects


def resume(store, clock, answer="", raise_=BudgetRaise(), mission_id="m-1"):
    return store.run(lambda tx: transitions.resume(tx, mission_id, answer, raise_, clock.now()))


def test_a_blocked_result_keeps_usage_reason_question_and_conversation(store, clock):
    record, effects = blocked_mission(store, clock)
    assert record.state == M.BLOCKED and record.blocked_reason == "input_required"
    assert (record.question, record.question_choices) == ("Which one?", ["a", "b"])
    assert (record.usage_input_tokens, record.usage_output_tokens, record.usage_cost_usd) == (100, 20, 0.5)
    assert (record.conversation_agent, record.conversation_id) == ("claude-code", "c-1")
    assert events(store)[-2:] == ["vp.mission.blocked", "vp.mission.input_required"]
    assert [lane for lane, _ in effects.usage] == [CODER]
    stored = get(store)
    assert stored.question == "Which one?" and stored.usage_model == "m"


def test_usage_adds_up_over_retries_and_resumes(store, clock):
    dispatched(store, clock, max_attempts=3)
    [running], _ = assign(store, clock)
    retried, _ = report(store, clock, running, M.FAILED, AgentReport(input_tokens=10, output_tokens=1, cost_usd=0.1),
                        error_code="X")
    assert retried.state == M.QUEUED
    [running], _ = assign(store, clock)
    done, _ = report(store, clock, running, M.COMPLETED, AgentReport(input_tokens=5, output_tokens=2, cost_usd=0.2,
                                                                   model="m2"))
    assert (done.usage_input_tokens, done.usage_output_tokens, done.usage_model) == (15, 3, "m2")
    assert done.usage_cost_usd == pytest.approx(0.3)


def test_a_blocked_mission_still_times_out_at_its_deadline_but_not_at_max_duration(store, clock):
    deadline = clock.now() + timedelta(hours=3)
    record, _ = blocked_mission(store, clock, mission_deadline=deadline, deadline=deadline)
    assert record.deadline == deadline  # the attempt's max_duration (1 h) no longer applies
    clock.advance(2 * 3600)
    assert store.run(lambda tx: transitions.time_out(tx, "m-1", clock.now())).terminal == []
    clock.advance(3600)
    routes = {"m-1": to_caller(lane=CODER, requested_vp_id=CODER, reason=Reason.TIMED_OUT)}
    effects = store.run(lambda tx: transitions.time_out(tx, "m-1", clock.now(), routes))
    assert get(store).state == M.TIMED_OUT and get(store).error_code == "DEADLINE_EXCEEDED"
    assert effects.cancels == []  # nobody runs a blocked mission


def test_resume_queues_again_with_the_answer_and_a_fresh_attempt_budget(store, clock):
    blocked, _ = blocked_mission(store, clock)
    resumed, effects = resume(store, clock, answer="b")
    assert resumed.state == M.QUEUED and resumed.answer == "b" and resumed.resume_count == 1
    assert resumed.attempt == blocked.attempt + 1 and transitions.attempts_left(resumed)
    assert resumed.run_id == "" and resumed.worker_owner == "" and resumed.conversation_id == "c-1"
    assert CODER in effects.queued_lanes
    assert events(store)[-1] == "vp.mission.resumed"
    [again], _ = assign(store, clock)
    assert again.answer == "b"


def test_resume_refuses_what_it_cannot_do_and_changes_nothing(store, clock):
    with pytest.raises(Exception) as missing:
        resume(store, clock, answer="x", mission_id="m-nope")
    assert type(missing.value).__name__ == "MissionNotFound"
    dispatched(store, clock)
    with pytest.raises(MissionNotBlocked):
        resume(store, clock, answer="x")
    [running], _ = assign(store, clock)
    report(store, clock, running, M.BLOCKED, QUESTION)
    with pytest.raises(InvalidArgument):
        resume(store, clock, answer="   ")
    with pytest.raises(InvalidArgument):
        resume(store, clock, answer="x" * (32 * 1024 + 1))
    with pytest.raises(InvalidArgument):
        resume(store, clock, answer="ok", raise_=BudgetRaise(max_tokens=100))  # not above the 120 used
    assert get(store).state == M.BLOCKED and events(store)[-1] == "vp.mission.input_required"


def test_a_budget_block_resumes_only_with_a_raise_above_the_usage(store, clock):
    budget = AgentReport(input_tokens=900, output_tokens=200, blocked_reason="budget_exceeded")
    blocked_mission(store, clock, agent=budget, budget_max_tokens=1000)
    stored = get(store)
    assert stored.blocked_reason == "budget_exceeded" and stored.question == ""
    with pytest.raises(InvalidArgument):
        resume(store, clock)  # no raise at all
    with pytest.raises(InvalidArgument):
        resume(store, clock, raise_=BudgetRaise(max_cost_usd=5.0))  # tokens still crossed
    resumed, _ = resume(store, clock, raise_=BudgetRaise(max_tokens=5000))
    assert resumed.state == M.QUEUED and resumed.budget_max_tokens == 5000 and resumed.answer == ""
