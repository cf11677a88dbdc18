"""Every change of a mission, with its events and effects, in one place.

Each function here is one step of the mission state machine over an open
store transaction: it re-reads what it changes under lock, checks that the
mission is still where the caller saw it, applies a row of
states.MISSION_TRANSITIONS (looked up by the transition's name, so the row's
actor and event are the right ones), appends the row's event and records in
an Effects what must happen after commit. Nothing here does I/O besides the
store, so a transaction the store retries simply runs again.

Routing decisions after a failure need lane health, which is I/O: a function
that finds it needs one it was not given raises NeedsRoute, the caller looks
the route up (DispatcherCore.transact) and runs the transaction again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from services.common.errors import MissionNotBlocked, MissionNotFound
from services.common.states import MissionState, mission_transition
from services.common.store.interface import Tx
from services.common.store.records import MissionRecord, NewEvent
from services.dispatcher import agent_results
from services.dispatcher.agent_results import NO_REPORT, AgentReport, BudgetRaise
from services.dispatcher.effects import Effects
from services.dispatcher.metrics_hooks import lane_of
from services.dispatcher.routing import Decision, Reason, RoutingDecision, route_dict, to_caller

M = MissionState
Routes = Mapping[str, RoutingDecision]
NO_ROUTES: Routes = {}

# What a worker's result becomes, by outcome, when it ends the mission there.
_RESULT_TRANSITIONS = {
    M.COMPLETED: "complete",
    M.FAILED: "fail",
    M.BLOCKED: "block",
    M.TIMED_OUT: "report_timeout",
    M.CANCELLED: "acknowledge_cancel",
}
WORKER_OUTCOMES = frozenset(_RESULT_TRANSITIONS)


class NeedsRoute(Exception):
    """The transaction needs a failure route for this mission: look it up and run it again."""

    def __init__(self, record: MissionRecord, reason: Reason) -> None:
        super().__init__(f"{record.mission_id} needs a route after {reason.value}")
        self.record = record
        self.reason = reason


# --- the primitive: one row of the table ---------------------------------------------


def emit(tx: Tx, record: MissionRecord, event_type: str, now: datetime, effects: Effects, **payload: Any) -> None:
    tx.queue_event(NewEvent(event_type=event_type, vp_id=lane_of(record), mission_id=record.mission_id,
                            emitted_at=now, payload={"attempt": record.attempt, **payload}))
    effects.events = True


def step(tx: Tx, record: MissionRecord, name: str, target: MissionState, now: datetime, effects: Effects, *,
         event_payload: dict | None = None, **changes: Any) -> MissionRecord:
    """Apply transition `name` (IllegalTransition if the table has no such row
    from the record's state), persist it and emit the row's event."""
    transition = mission_transition(name, record.state, target)
    updated = replace(record, state=target, updated_at=now, **changes)
    if target.terminal:
        updated = replace(updated, completed_at=now)
    if target.terminal or target == M.BLOCKED:
        effects.terminal.append(updated)
    if record.state == M.RUNNING and target != M.RUNNING:
        effects.freed.append(record)
    if target == M.QUEUED:
        effects.queued_lanes.add(updated.lane)
    tx.update_mission(updated)
    emit(tx, updated, transition.event, now, effects, **(event_payload or {}))
    if target.terminal and updated.shadow_of_mission_id:
        _shadow_finished(tx, updated, now, effects)
    return updated


def _locked(tx: Tx, mission_id: str) -> MissionRecord | None:
    return tx.get_mission(mission_id, for_update=True)


def attempts_left(record: MissionRecord) -> bool:
    """Attempts are counted per lane: a re-route starts the budget afresh."""
    return record.attempt - record.attempt_base < record.max_attempts


def owns(record: MissionRecord | None, *, owner: str, lease_epoch: int, attempt: int) -> bool:
    """Whether a worker message about this attempt may change the mission."""
    return (record is not None and record.state == M.RUNNING and record.attempt == attempt
            and record.worker_owner == owner and record.lease_epoch == lease_epoch)


def effective_outcome(record: MissionRecord | None, reported: MissionState) -> MissionState:
    """Once a cancel was requested, any unfinished outcome ends the mission CANCELLED:
    a failed or blocked run must not be retried or parked after the caller said stop."""
    if record is not None and record.cancel_requested and reported != M.COMPLETED:
        return M.CANCELLED
    return reported


def _route_for(record: MissionRecord, reason: Reason, routes: Routes) -> RoutingDecision:
    decision = routes.get(record.mission_id)
    if decision is None:
        raise NeedsRoute(record, reason)
    return decision


# --- dispatch ---------------------------------------------------------------------------


def dispatch(tx: Tx, records: list[MissionRecord], decisions: list[RoutingDecision],
             now: datetime) -> tuple[MissionRecord, Effects]:
    """Store a new mission (and its shadow copy, if any) with the dispatched event;
    a mission whose route names no lane is handed back to the caller at once."""
    effects = Effects()
    stored = [_insert(tx, record, decision, now, effects) for record, decision in zip(records, decisions)]
    return stored[0], effects


def _insert(tx: Tx, record: MissionRecord, decision: RoutingDecision, now: datetime,
            effects: Effects) -> MissionRecord:
    transition = mission_transition("dispatch", None, M.QUEUED)
    tx.insert_mission(record)
    emit(tx, record, transition.event, now, effects, route=decision.decision.value, lane=record.lane,
         provenance=decision.provenance, requested_vp_id=record.vp_id)
    if not record.shadow_of_mission_id:
        effects.dispatched.append((record.vp_id, decision.decision.value))
    if decision.decision == Decision.DELEGATED:
        effects.queued_lanes.add(record.lane)
        return record
    emit(tx, record, "vp.mission.fallback", now, effects, reason=decision.reason.value if decision.reason else "",
         target=record.lane or "caller", provenance=decision.provenance)
    effects.fallbacks.append((record.vp_id, _fallback_reason(decision)))
    if record.lane:
        effects.queued_lanes.add(record.lane)
        return record
    # Handed back to the caller: the mission will never run here.
    return step(tx, record, "hand_back", M.FAILED, now, effects, error_code="FALLBACK_TO_CALLER",
                error_message=decision.provenance, event_payload={"reason": "fallback_to_caller"})


# --- assignment -------------------------------------------------------------------------


def assign(tx: Tx, lane: str, limit: int, *, owner: str, session_id: str, lease_epoch: int, now: datetime,
           default_max_duration: timedelta) -> tuple[list[MissionRecord], Effects]:
    """Claim up to limit queued missions of a lane for one worker (QUEUED -> RUNNING):
    one claiming statement, then the attempts' run ids and deadlines."""
    effects = Effects()
    transition = mission_transition("assign", M.QUEUED, M.RUNNING)
    assigned, runs = [], []
    for claimed in tx.claim_queued(lane, limit, owner=owner, session_id=session_id, lease_epoch=lease_epoch,
                                   now=now):
        budget = timedelta(seconds=claimed.max_duration_seconds) if claimed.max_duration_seconds \
            else default_max_duration
        deadline = min(filter(None, [claimed.mission_deadline, now + budget]))
        # Milliseconds: SQLite computes the wait from julianday(), good to ~10 us.
        wait = round(max(0.0, claimed.queue_wait_seconds or 0.0), 3)
        record = replace(claimed, run_id=f"r-{uuid.uuid4().hex[:16]}", deadline=deadline, queue_wait_seconds=wait)
        runs.append((record.mission_id, record.run_id, deadline, wait))
        emit(tx, record, transition.event, now, effects, run_id=record.run_id, worker_owner=owner,
             lease_epoch=lease_epoch, session_id=session_id, queue_wait_seconds=wait)
        assigned.append(record)
    tx.set_runs(runs)
    return assigned, effects


# --- worker messages --------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressLine:
    mission_id: str
    attempt: int
    seq: int
    message: str
    data: dict
    received_at: datetime


def progress(tx: Tx, lines: Sequence[ProgressLine], *, owner: str, lease_epoch: int) -> Effects:
    """Record progress lines of one worker stream, in order; lines of an attempt
    the worker no longer holds are dropped. Each mission is read once."""
    effects = Effects()
    records: dict[str, MissionRecord | None] = {}
    for line in lines:
        if line.mission_id not in records:
            records[line.mission_id] = tx.get_mission(line.mission_id)
        record = records[line.mission_id]
        if not owns(record, owner=owner, lease_epoch=lease_epoch, attempt=line.attempt):
            continue
        transition = mission_transition("progress", record.state, record.state)
        emit(tx, record, transition.event, line.received_at, effects, seq=line.seq, message=line.message[:4096],
             run_id=record.run_id, data=line.data)
    return effects


def result(tx: Tx, mission_id: str, *, owner: str, lease_epoch: int, attempt: int, reported: MissionState,
           result_ref: str, error_code: str | None, error_message: str, summary: str, now: datetime,
           routes: Routes = NO_ROUTES, report: AgentReport = NO_REPORT) -> tuple[MissionRecord | None, Effects]:
    """A worker's result for its attempt: end the mission, retry it, or give it up.
    A duplicate or stale result changes nothing (results are idempotent on
    (mission_id, attempt)). Whatever happens, the run's usage is added to the
    mission's totals and its agent conversation is kept (agent protocol v1)."""
    effects = Effects()
    record = _locked(tx, mission_id)
    if not owns(record, owner=owner, lease_epoch=lease_epoch, attempt=attempt):
        return record, effects
    outcome = effective_outcome(record, reported)
    record = agent_results.with_usage(record, report)
    if report.has_usage and not record.shadow_of_mission_id:
        effects.usage.append((lane_of(record), report))
    usage = {"usage": agent_results.usage_dict(record)} if agent_results.has_usage(record) else {}
    errors = {"error_code": error_code, "error_message": error_message} if error_code is not None else {}
    if outcome == M.FAILED and attempts_left(record) and not record.shadow_of_mission_id:
        return requeue(tx, record, "retry", now, effects, reason="failed"), effects
    if outcome in (M.FAILED, M.TIMED_OUT) and not record.shadow_of_mission_id:
        reason = Reason.FAILED if outcome == M.FAILED else Reason.TIMED_OUT
        decision = _route_for(record, reason, routes)
        return give_up(tx, record, decision, now, effects, name=_RESULT_TRANSITIONS[outcome], terminal=outcome,
                       error_code=error_code if error_code is not None else outcome.value.upper(),
                       error_message=error_message), effects
    payload = {"run_id": record.run_id, "result_ref": result_ref, "summary": summary[:500], **errors, **usage}
    blocked: dict[str, Any] = {}
    if outcome == M.BLOCKED:
        # While BLOCKED only the envelope's deadline applies (not the attempt's max_duration).
        blocked = {**agent_results.blocked_changes(report, summary), "deadline": record.mission_deadline}
        payload.update(blocked_reason=blocked["blocked_reason"], question=blocked["question"][:4096])
    updated = step(tx, record, _RESULT_TRANSITIONS[outcome], outcome, now, effects,
                   result_ref=result_ref or record.result_ref, summary=summary, event_payload=payload,
                   **errors, **blocked)
    if blocked.get("blocked_reason") == agent_results.INPUT_REQUIRED:
        emit(tx, updated, "vp.mission.input_required", now, effects, run_id=record.run_id,
             question=blocked["question"][:4096], choices=blocked["question_choices"])
    return updated, effects


# --- resume -----------------------------------------------------------------------------


def resume(tx: Tx, mission_id: str, answer: str, raise_: BudgetRaise, now: datetime) -> tuple[MissionRecord, Effects]:
    """ResumeMission: a BLOCKED mission gets its answer (and/or a raised budget)
    and is queued again for a fresh attempt on its lane (attempts counted afresh);
    its next run continues the same agent conversation."""
    effects = Effects()
    record = _locked(tx, mission_id)
    if record is None:
        raise MissionNotFound(mission_id)
    if record.state != M.BLOCKED:
        raise MissionNotBlocked(mission_id, record.state.value)
    agent_results.check_resume(record, answer, raise_)
    changes: dict[str, Any] = {}
    budget: dict[str, Any] = {}
    if raise_.max_tokens is not None:
        changes["budget_max_tokens"] = budget["max_tokens"] = raise_.max_tokens
    if raise_.max_cost_usd is not None:
        changes["budget_max_cost_usd"] = budget["max_cost_usd"] = raise_.max_cost_usd
    if raise_.max_duration_seconds is not None:
        changes["max_duration_seconds"] = budget["max_duration_seconds"] = raise_.max_duration_seconds
    resumed = record.resume_count + 1
    effects.requeues.append((lane_of(record), "resumed"))
    return step(tx, record, "resume", M.QUEUED, now, effects, answer=answer, resume_count=resumed,
                attempt=record.attempt + 1, attempt_base=record.attempt, queue_wait_seconds=None, run_id="",
                worker_owner="", lease_epoch=0, started_at=None, deadline=record.mission_deadline,
                event_payload={"blocked_reason": record.blocked_reason, "answer_chars": len(answer),
                               "budget": budget, "resume_count": resumed}, **changes), effects


def give_back(tx: Tx, mission_id: str, *, owner: str, lease_epoch: int, attempt: int, reason: str,
              now: datetime) -> tuple[MissionRecord | None, Effects]:
    """A worker hands its run back (MissionHandBack, sent by a draining worker
    once the run's processes are gone): the mission is queued again at once,
    with the same attempt number, so the hand-back uses no attempt. After a
    cancel request it ends CANCELLED instead. A stale or repeated hand-back
    changes nothing."""
    effects = Effects()
    record = _locked(tx, mission_id)
    if not owns(record, owner=owner, lease_epoch=lease_epoch, attempt=attempt):
        return record, effects
    why = f"handed_back:{reason or 'UNSPECIFIED'}"
    if record.cancel_requested:
        return step(tx, record, "give_back", M.CANCELLED, now, effects,
                    event_payload={"reason": f"{why}; cancel requested"}), effects
    effects.requeues.append((lane_of(record), "handed_back"))
    return step(tx, record, "give_back", M.QUEUED, now, effects, queue_wait_seconds=None, run_id="",
                worker_owner="", lease_epoch=0, started_at=None, deadline=record.mission_deadline,
                event_payload={"reason": why, "previous_run": record.run_id, "attempt_used": False}), effects


# --- cancel -----------------------------------------------------------------------------


def cancel(tx: Tx, mission_id: str, reason: str, now: datetime) -> tuple[MissionRecord, Effects]:
    """Cancel a queued or blocked mission; ask the worker of a running one to
    stop (durably: the request is re-sent when the worker reconnects). A
    terminal mission, or a repeated request, changes nothing."""
    effects = Effects()
    record = _locked(tx, mission_id)
    if record is None:
        raise MissionNotFound(mission_id)
    if record.state in (M.QUEUED, M.BLOCKED):
        record = step(tx, record, "cancel", M.CANCELLED, now, effects, cancel_reason=reason,
                      event_payload={"reason": reason})
    elif record.state == M.RUNNING and not record.cancel_requested:
        record = step(tx, record, "request_cancel", M.RUNNING, now, effects, cancel_requested=True,
                      cancel_reason=reason, event_payload={"reason": reason, "run_id": record.run_id})
        effects.cancels.append((record, M.CANCELLED))
    return record, effects


# --- re-queue and give up -------------------------------------------------------------------


def requeue(tx: Tx, record: MissionRecord, name: str, now: datetime, effects: Effects, *, reason: str,
            lane: str | None = None, route: dict | None = None, attempt_base: int | None = None) -> MissionRecord:
    """Put a running mission back in the queue for a fresh attempt (attempt + 1)."""
    effects.requeues.append((lane_of(record), reason))
    return step(tx, record, name, M.QUEUED, now, effects, attempt=record.attempt + 1, lane=lane or record.lane,
                route=route if route is not None else record.route,
                attempt_base=record.attempt_base if attempt_base is None else attempt_base,
                queue_wait_seconds=None, run_id="", worker_owner="", lease_epoch=0, started_at=None,
                deadline=record.mission_deadline, event_payload={"reason": reason, "previous_run": record.run_id})


def give_up(tx: Tx, record: MissionRecord, decision: RoutingDecision, now: datetime, effects: Effects, *,
            name: str, terminal: MissionState, error_code: str, error_message: str) -> MissionRecord:
    """No attempts left on this lane: re-route a running mission to the fallback
    lane (attempts counted afresh), or end it (transition `name`) with its route
    naming the caller as the one to handle it."""
    if record.shadow_of_mission_id:
        # A shadow copy is only a comparison: it ends here, nobody falls back for it.
        return step(tx, record, name, terminal, now, effects, error_code=error_code, error_message=error_message)
    reason = decision.reason.value if decision.reason else ""
    emit(tx, record, "vp.mission.fallback", now, effects, reason=reason, target=decision.lane or "caller",
         provenance=decision.provenance)
    effects.fallbacks.append((lane_of(record), _fallback_reason(decision)))
    route = route_dict(decision, now)
    if decision.lane and record.state == M.RUNNING:
        return requeue(tx, record, "reroute", now, effects, reason=f"fallback:{reason}", lane=decision.lane,
                       route=route, attempt_base=record.attempt)
    usage = {"usage": agent_results.usage_dict(record)} if agent_results.has_usage(record) else {}
    return step(tx, record, name, terminal, now, effects, route=route, attempt_base=record.attempt,
                error_code=error_code, error_message=error_message,
                event_payload={"reason": reason, "error_code": error_code, **usage})


def lose(tx: Tx, record: MissionRecord, now: datetime, effects: Effects, routes: Routes, *,
         why: str) -> MissionRecord:
    """A running mission whose worker is gone: cancel it if asked, else re-queue or give up."""
    if record.cancel_requested:
        return step(tx, record, "lose", M.CANCELLED, now, effects, event_payload={"reason": f"{why}; cancel requested"})
    if attempts_left(record) and not record.shadow_of_mission_id:
        return requeue(tx, record, "lose", now, effects, reason=why)
    decision = routes.get(record.mission_id)
    if decision is None and not record.shadow_of_mission_id:
        raise NeedsRoute(record, Reason.WORKER_LOST)
    decision = decision or to_caller(lane=lane_of(record), requested_vp_id=record.vp_id, reason=Reason.WORKER_LOST)
    return give_up(tx, record, decision, now, effects, name="give_up", terminal=M.FAILED, error_code="WORKER_LOST",
                   error_message=f"worker lost ({why}) and no attempts left")


# --- supervision --------------------------------------------------------------------------


def time_out(tx: Tx, mission_id: str, now: datetime, routes: Routes = NO_ROUTES) -> Effects:
    """End a mission whose deadline has passed; tell its worker to stop."""
    effects = Effects()
    record = _locked(tx, mission_id)
    if record is None or record.state.terminal or record.deadline is None or record.deadline > now:
        return effects
    decision = _route_for(record, Reason.TIMED_OUT, routes)
    give_up(tx, record, decision, now, effects, name="time_out", terminal=M.TIMED_OUT,
            error_code="DEADLINE_EXCEEDED", error_message=f"deadline {record.deadline.isoformat()} passed")
    if record.state == M.RUNNING:
        effects.cancels.append((record, M.TIMED_OUT))
    return effects


def recover(tx: Tx, mission_id: str, run_id: str, now: datetime, routes: Routes = NO_ROUTES, *,
            reconciling: bool) -> Effects:
    """The run `run_id` lost its worker's lease: re-queue, cancel or give up.
    At dispatcher start (reconciling) the change is marked vp.mission.reconciled."""
    effects = Effects()
    record = _locked(tx, mission_id)
    if record is None or record.state != M.RUNNING or record.run_id != run_id:
        return effects
    updated = lose(tx, record, now, effects, routes, why="worker_lease_ended")
    if reconciling:
        emit(tx, updated, "vp.mission.reconciled", now, effects, action=updated.state.value,
             previous_run=record.run_id, previous_owner=record.worker_owner, previous_epoch=record.lease_epoch)
    return effects


def drop_unreported(tx: Tx, mission_id: str, owner: str, now: datetime, routes: Routes = NO_ROUTES) -> Effects:
    """A run its worker no longer reports (lost assignment, vanished run)."""
    effects = Effects()
    record = _locked(tx, mission_id)
    if record is None or record.state != M.RUNNING or record.worker_owner != owner:
        return effects
    lose(tx, record, now, effects, routes, why="not_reported_by_worker")
    return effects


def reconcile_worker(tx: Tx, lane: str, *, owner: str, lease_epoch: int, now: datetime,
                     routes: Routes = NO_ROUTES) -> tuple[list[MissionRecord], Effects]:
    """A worker said hello with a current term: runs of older terms of its lane are
    lost; runs of this term are its own (returned), with pending cancels re-sent."""
    effects = Effects()
    owned = []
    for record in tx.missions_in_states([M.RUNNING], lane=lane):
        if record.lease_epoch < lease_epoch:
            current = _locked(tx, record.mission_id)
            if current is not None and current.state == M.RUNNING and current.lease_epoch < lease_epoch:
                lose(tx, current, now, effects, routes, why="lease_superseded")
        elif record.worker_owner == owner and record.lease_epoch == lease_epoch:
            owned.append(record)
            if record.cancel_requested:
                effects.cancels.append((record, M.CANCELLED))
    return owned, effects


# --- shadow copies ------------------------------------------------------------------------


def _shadow_finished(tx: Tx, shadow: MissionRecord, now: datetime, effects: Effects) -> None:
    """Record a shadow copy's outcome on the mission it shadows, for comparison."""
    parent = _locked(tx, shadow.shadow_of_mission_id)
    if parent is None:
        return
    latency = (shadow.completed_at - shadow.created_at).total_seconds() if shadow.created_at else 0.0
    outcome = {"shadow_mission_id": shadow.mission_id, "state": shadow.state.value,
               "latency_seconds": round(latency, 6)}
    tx.update_mission(replace(parent, shadow=outcome, updated_at=now))
    emit(tx, parent, "vp.mission.shadow_compared", now, effects, **outcome, record_state=parent.state.value)


def _fallback_reason(decision: RoutingDecision) -> str:
    """The metric label of a fallback: its reason; shadow mode has none of its own."""
    if decision.reason is not None:
        return decision.reason.value
    return "shadow" if decision.decision == Decision.SHADOW else "unknown"
