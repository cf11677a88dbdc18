"""The transition module, called directly over the store on both backends:
no gRPC, no registry, a FakeClock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from services.common.clock import FakeClock
from services.common.errors import IllegalTransition, MissionNotFound
from services.common.states import MissionState
from services.common.store import SqlStore
from services.common.store.records import MissionRecord
from services.dispatcher import transitions
from services.dispatcher.effects import Effects
from services.dispatcher.routing import (
    CODER,
    GENERAL,
    LaneState,
    Reason,
    RoutingFlags,
    decide,
    default_lanes,
    route_after_failure,
    to_caller,
)

M = MissionState
LANES = default_lanes(coder_falls_back_to_general=True)
HEALTHY = {lane: LaneState(healthy=True, in_flight=0, queued=0) for lane in LANES}


@pytest.fixture
def store(db_url):
    with SqlStore(db_url) as s:
        yield s


@pytest.fixture
def clock():
    return FakeClock()


def new_mission(clock, mission_id="m-1", *, vp_id=CODER, states=None, max_attempts=2, **fields):
    decision = decide(requested_vp_id=vp_id, mission_type="code", lanes=LANES, states=states or HEALTHY,
                      flags=RoutingFlags())
    now = clock.now()
    record = MissionRecord(mission_id=mission_id, vp_id=vp_id, mission_type="code", objective="o", state=M.QUEUED,
                           envelope={"mission_id": mission_id}, lane=decision.lane, attempt=1,
                           max_attempts=max_attempts, route={}, created_at=now, updated_at=now, **fields)
    return record, decision


def dispatched(store, clock, mission_id="m-1", **kwargs):
    record, decision = new_mission(clock, mission_id, **kwargs)
    return store.run(lambda tx: transitions.dispatch(tx, [record], [decision], clock.now()))


def assign(store, clock, lane=CODER, limit=4, owner="w-1", epoch=1):
    return store.run(lambda tx: transitions.assign(tx, lane, limit, owner=owner, session_id="s-1", lease_epoch=epoch,
                                                   now=clock.now(), default_max_duration=timedelta(hours=1)))


def result(store, clock, record, outcome, *, routes=transitions.NO_ROUTES, owner="w-1", epoch=1, error_code=None):
    return store.run(lambda tx: transitions.result(
        tx, record.mission_id, owner=owner, lease_epoch=epoch, attempt=record.attempt, reported=outcome,
        result_ref="", error_code=error_code, error_message="", summary="s", now=clock.now(), routes=routes))


def get(store, mission_id="m-1"):
    return store.read(lambda tx: tx.get_mission(mission_id))


def events(store, mission_id="m-1"):
    return [e.event_type for e in store.read(lambda tx: tx.events_after(0, mission_id=mission_id))]


def test_dispatch_queues_on_the_lane_and_counts_it(store, clock):
    record, effects = dispatched(store, clock)
    assert record.state == M.QUEUED and get(store).lane == CODER
    assert effects.queued_lanes == {CODER} and effects.dispatched == [(CODER, "delegated")] and effects.events
    assert events(store) == ["vp.mission.dispatched"]


def test_dispatch_with_no_lane_hands_back_to_the_caller(store, clock):
    unhealthy = {lane: LaneState(healthy=False, in_flight=0, queued=0) for lane in LANES}
    record, effects = dispatched(store, clock, states=unhealthy)
    assert record.state == M.FAILED and record.error_code == "FALLBACK_TO_CALLER"
    assert effects.fallbacks == [(CODER, "unhealthy")] and [r.mission_id for r in effects.terminal] == ["m-1"]
    assert events(store) == ["vp.mission.dispatched", "vp.mission.fallback", "vp.mission.failed"]


def test_assign_claims_in_priority_order_with_the_attempt_deadline(store, clock):
    deadline = clock.now() + timedelta(minutes=30)
    dispatched(store, clock, "m-low")
    clock.advance(1)
    dispatched(store, clock, "m-high", priority=5, mission_deadline=deadline, deadline=deadline)
    dispatched(store, clock, "m-budget", max_duration_seconds=60.0)
    clock.advance(2)
    claimed, effects = assign(store, clock, limit=2)
    assert [r.mission_id for r in claimed] == ["m-high", "m-low"]
    high = get(store, "m-high")
    assert high.state == M.RUNNING and high.deadline == deadline and high.queue_wait_seconds == 2.0 and get(store, "m-low").queue_wait_seconds == 3.0
    assert get(store, "m-low").deadline == clock.now() + timedelta(hours=1)
    assert effects.events and not effects.terminal
    (budget,), _ = assign(store, clock)
    assert budget.mission_id == "m-budget" and budget.deadline == clock.now() + timedelta(seconds=60)
    assert assign(store, clock)[0] == []


def test_result_completes_once_and_stale_results_change_nothing(store, clock):
    dispatched(store, clock)
    (running,), _ = assign(store, clock)
    stale, effects = result(store, clock, running, M.COMPLETED, epoch=2)
    assert stale.state == M.RUNNING and not effects.events
    done, effects = result(store, clock, running, M.COMPLETED)
    assert done.state == M.COMPLETED and [r.mission_id for r in effects.freed] == ["m-1"]
    again, effects = result(store, clock, running, M.COMPLETED)
    assert again.state == M.COMPLETED and not effects.events
    assert events(store).count("vp.mission.completed") == 1


def test_failure_with_attempts_left_is_retried(store, clock):
    dispatched(store, clock)
    (running,), _ = assign(store, clock)
    retried, effects = result(store, clock, running, M.FAILED, error_code="E")
    assert retried.state == M.QUEUED and retried.attempt == 2 and retried.run_id == ""
    assert retried.queue_wait_seconds is None and effects.requeues == [(CODER, "failed")]


def test_last_failure_needs_a_route_then_reroutes_with_a_fresh_attempt_budget(store, clock):
    dispatched(store, clock, max_attempts=1)
    (running,), _ = assign(store, clock)
    with pytest.raises(transitions.NeedsRoute) as need:
        result(store, clock, running, M.FAILED)
    assert need.value.reason == Reason.FAILED and get(store).state == M.RUNNING  # rolled back
    route = route_after_failure(lane=CODER, reason=Reason.FAILED, lanes=LANES, states=HEALTHY, flags=RoutingFlags(),
                                requested_vp_id=CODER)
    rerouted, effects = result(store, clock, running, M.FAILED, routes={"m-1": route})
    assert rerouted.state == M.QUEUED and rerouted.lane == GENERAL and rerouted.attempt == 2
    # One attempt (max_attempts) on the new lane: attempt 2 is its last.
    assert rerouted.attempt_base == 1 and not transitions.attempts_left(rerouted)
    assert rerouted.route["lane"] == GENERAL and effects.fallbacks == [(CODER, "failed")]
    assert events(store)[-2:] == ["vp.mission.fallback", "vp.mission.requeued"]


def test_last_failure_to_the_caller_ends_the_mission(store, clock):
    dispatched(store, clock, max_attempts=1)
    (running,), _ = assign(store, clock)
    caller = to_caller(lane=CODER, requested_vp_id=CODER, reason=Reason.FAILED)
    failed, _ = result(store, clock, running, M.FAILED, routes={"m-1": caller}, error_code="BROKEN")
    assert failed.state == M.FAILED and failed.error_code == "BROKEN"
    assert failed.route["fallback_target"]["kind"] == "FALLBACK_TARGET_KIND_CALLER"


def test_cancel_queued_running_terminal_and_missing(store, clock):
    dispatched(store, clock, "m-q")
    cancelled, effects = store.run(lambda tx: transitions.cancel(tx, "m-q", "stop", clock.now()))
    assert cancelled.state == M.CANCELLED and effects.terminal
    dispatched(store, clock, "m-r")
    (running,), _ = assign(store, clock)
    requested, effects = store.run(lambda tx: transitions.cancel(tx, "m-r", "stop", clock.now()))
    assert requested.state == M.RUNNING and requested.cancel_requested and effects.cancels and not effects.freed
    again, effects = store.run(lambda tx: transitions.cancel(tx, "m-r", "stop", clock.now()))
    assert again.cancel_requested and not effects.events
    # Any outcome but COMPLETED now ends it CANCELLED.
    acknowledged, _ = result(store, clock, running, M.FAILED)
    assert acknowledged.state == M.CANCELLED and acknowledged.attempt == 1
    terminal, effects = store.run(lambda tx: transitions.cancel(tx, "m-r", "late", clock.now()))
    assert terminal.state == M.CANCELLED and not effects.events
    with pytest.raises(MissionNotFound):
        store.run(lambda tx: transitions.cancel(tx, "m-none", "x", clock.now()))
    assert events(store, "m-r").count("vp.mission.cancel_requested") == 1


def test_lost_worker_requeues_cancels_or_gives_up(store, clock):
    for mission_id, attempts in (("m-retry", 2), ("m-cancel", 2), ("m-last", 1)):
        dispatched(store, clock, mission_id, max_attempts=attempts)
    claimed, _ = assign(store, clock)
    store.run(lambda tx: transitions.cancel(tx, "m-cancel", "stop", clock.now()))
    clock.advance(1)
    for record in claimed:
        if record.mission_id != "m-last":
            store.run(lambda tx, r=record: transitions.recover(tx, r.mission_id, r.run_id, clock.now(),
                                                               reconciling=False))
    assert get(store, "m-retry").state == M.QUEUED and get(store, "m-retry").attempt == 2
    assert get(store, "m-cancel").state == M.CANCELLED
    last = next(r for r in claimed if r.mission_id == "m-last")
    with pytest.raises(transitions.NeedsRoute):
        store.run(lambda tx: transitions.recover(tx, "m-last", last.run_id, clock.now(), reconciling=True))
    caller = to_caller(lane=CODER, requested_vp_id=CODER, reason=Reason.WORKER_LOST)
    store.run(lambda tx: transitions.recover(tx, "m-last", last.run_id, clock.now(), {"m-last": caller},
                                             reconciling=True))
    gave_up = get(store, "m-last")
    assert gave_up.state == M.FAILED and gave_up.error_code == "WORKER_LOST"
    assert events(store, "m-last")[-2:] == ["vp.mission.failed", "vp.mission.reconciled"]
    # Another run id (the mission moved on): nothing happens.
    assert not store.run(lambda tx: transitions.recover(tx, "m-retry", "r-old", clock.now(),
                                                        reconciling=False)).events


def test_time_out_only_after_the_deadline(store, clock):
    deadline = clock.now() + timedelta(seconds=10)
    dispatched(store, clock, deadline=deadline, mission_deadline=deadline)
    (running,), _ = assign(store, clock)
    caller = to_caller(lane=CODER, requested_vp_id=CODER, reason=Reason.TIMED_OUT)
    assert not store.run(lambda tx: transitions.time_out(tx, "m-1", clock.now(), {"m-1": caller})).events
    clock.advance(10)
    effects = store.run(lambda tx: transitions.time_out(tx, "m-1", clock.now(), {"m-1": caller}))
    assert get(store).state == M.TIMED_OUT and get(store).error_code == "DEADLINE_EXCEEDED"
    assert [(r.mission_id, state) for r, state in effects.cancels] == [("m-1", M.TIMED_OUT)]


def test_reconcile_worker_adopts_its_runs_and_loses_older_terms(store, clock):
    dispatched(store, clock, "m-old")
    assign(store, clock, owner="w-old", epoch=1)
    dispatched(store, clock, "m-mine")
    (mine,), _ = assign(store, clock, owner="w-new", epoch=2)
    store.run(lambda tx: transitions.cancel(tx, "m-mine", "stop", clock.now()))
    owned, effects = store.run(lambda tx: transitions.reconcile_worker(tx, CODER, owner="w-new", lease_epoch=2,
                                                                       now=clock.now()))
    assert [r.mission_id for r in owned] == ["m-mine"]
    assert [r.mission_id for r, _ in effects.cancels] == ["m-mine"]
    assert get(store, "m-old").state == M.QUEUED and get(store, "m-old").attempt == 2


def test_progress_lines_of_the_owner_only_in_order(store, clock):
    dispatched(store, clock, "m-1")
    dispatched(store, clock, "m-2")
    assign(store, clock)
    lines = [transitions.ProgressLine(mission_id, 1, seq, f"{mission_id} {seq}", {"n": seq}, clock.now())
             for seq, mission_id in enumerate(["m-1", "m-2", "m-1", "m-gone"], start=1)]
    assert not store.run(lambda tx: transitions.progress(tx, lines, owner="w-other", lease_epoch=1)).events
    effects = store.run(lambda tx: transitions.progress(tx, lines, owner="w-1", lease_epoch=1))
    assert effects.events
    progress = [e for e in store.read(lambda tx: tx.events_after(0)) if e.event_type == "vp.mission.progress"]
    assert [(e.mission_id, e.payload["seq"], e.payload["data"]) for e in progress] == [
        ("m-1", 1, {"n": 1}), ("m-2", 2, {"n": 2}), ("m-1", 3, {"n": 3})]


def test_an_illegal_step_raises_and_the_transaction_leaves_nothing(store, clock):
    record, _ = dispatched(store, clock)

    def complete_queued(tx):
        transitions.step(tx, record, "complete", M.COMPLETED, clock.now(), Effects())

    with pytest.raises(IllegalTransition):
        store.run(complete_queued)
    assert get(store).state == M.QUEUED and events(store) == ["vp.mission.dispatched"]


def test_shadow_copy_outcome_is_recorded_on_its_mission(store, clock):
    record, decision = new_mission(clock)
    shadow = replace(record, mission_id="m-1.shadow", lane=GENERAL, shadow_of_mission_id="m-1", max_attempts=1)
    store.run(lambda tx: transitions.dispatch(tx, [record, shadow], [decision, replace(decision, lane=GENERAL)],
                                              clock.now()))
    (running,), _ = assign(store, clock, lane=GENERAL)
    ended, _ = result(store, clock, running, M.FAILED)  # a shadow copy never needs a route
    assert ended.state == M.FAILED
    assert get(store).shadow["state"] == "failed"
    assert events(store)[-1] == "vp.mission.shadow_compared"
