"""The mission ledger: every mission transition, with its event, as one function
over an open store transaction. Callers commit; nothing here does I/O besides
the store, so each function is one atomic step of the state machine."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from google.protobuf.json_format import MessageToDict

from services.common.contracts.vp.v1 import mission_pb2
from services.common.states import MissionState, mission_transition
from services.common.store.interface import Tx
from services.common.store.records import MissionRecord, NewEvent
from services.dispatcher.metrics_hooks import QUEUE_WAIT_KEY, lane_of
from services.dispatcher.routing import Decision, RoutingDecision, to_route_proto

M = MissionState


@dataclass
class Effects:
    """What the caller must do after commit: wake waiters, refill lanes, push
    cancels, and count what happened (metrics_hooks.after_commit)."""

    terminal: list[MissionRecord] = field(default_factory=list)
    queued_lanes: set[str] = field(default_factory=set)
    cancels: list[tuple[MissionRecord, MissionState]] = field(default_factory=list)
    freed: list[MissionRecord] = field(default_factory=list)
    # (requested lane, route decision) of each mission accepted.
    dispatched: list[tuple[str, str]] = field(default_factory=list)
    # (lane that fell back, reason) of each vp.mission.fallback emitted.
    fallbacks: list[tuple[str, str]] = field(default_factory=list)
    # (lane the mission left, reason) of each re-queue.
    requeues: list[tuple[str, str]] = field(default_factory=list)

    def merge(self, other: "Effects") -> None:
        self.terminal += other.terminal
        self.queued_lanes |= other.queued_lanes
        self.cancels += other.cancels
        self.freed += other.freed
        self.dispatched += other.dispatched
        self.fallbacks += other.fallbacks
        self.requeues += other.requeues


def emit(tx: Tx, record: MissionRecord, event_type: str, now: datetime, **payload) -> None:
    tx.append_event(NewEvent(event_type=event_type, vp_id=record.lane or record.vp_id, mission_id=record.mission_id,
                             emitted_at=now, payload={"attempt": record.attempt, **payload}))


def move(tx: Tx, record: MissionRecord, target: MissionState, now: datetime, effects: Effects,
         *, event_payload: dict | None = None, **changes) -> MissionRecord:
    """Apply one legal transition, persist it and emit its event."""
    transition = mission_transition(record.state, target)
    updated = replace(record, state=target, updated_at=now, **changes)
    if target.terminal:
        updated = replace(updated, completed_at=now)
    if target.terminal or target == M.BLOCKED:
        effects.terminal.append(updated)
    if record.state == M.RUNNING:
        effects.freed.append(record)
    if target == M.QUEUED:
        effects.queued_lanes.add(updated.lane)
    tx.update_mission(updated)
    emit(tx, updated, transition.event, now, **(event_payload or {}))
    if target.terminal and updated.shadow_of_mission_id:
        shadow_finished(tx, updated, now)
    return updated


def route_dict(decision: RoutingDecision, now: datetime, attempt_base: int = 0) -> dict:
    return {"proto": MessageToDict(to_route_proto(decision, now), preserving_proto_field_name=True),
            "attempt_base": attempt_base}


def attempts_left(record: MissionRecord) -> bool:
    base = int(record.route.get("attempt_base", 0))
    return record.attempt - base < record.max_attempts


def insert_dispatched(tx: Tx, record: MissionRecord, decision: RoutingDecision, now: datetime,
                      effects: Effects) -> MissionRecord:
    """Store a new mission and its dispatched event; apply a dispatch-time fallback."""
    transition = mission_transition(None, M.QUEUED)
    tx.insert_mission(record)
    emit(tx, record, transition.event, now, route=decision.decision.value, lane=record.lane,
         provenance=decision.provenance, requested_vp_id=record.vp_id)
    if not record.shadow_of_mission_id:
        effects.dispatched.append((record.vp_id, decision.decision.value))
    if decision.decision == Decision.DELEGATED:
        effects.queued_lanes.add(record.lane)
        return record
    if decision.decision == Decision.FALLBACK or decision.decision == Decision.SHADOW:
        emit(tx, record, "vp.mission.fallback", now, reason=decision.reason.value if decision.reason else "",
             target=record.lane or "caller", provenance=decision.provenance)
        effects.fallbacks.append((record.vp_id, _fallback_reason(decision)))
    if record.lane:
        effects.queued_lanes.add(record.lane)
        return record
    # Handed back to the caller: the mission will never run here.
    return move(tx, record, M.FAILED, now, effects, error_code="FALLBACK_TO_CALLER",
                error_message=decision.provenance, event_payload={"reason": "fallback_to_caller"})


def assign_next(tx: Tx, lane: str, limit: int, *, owner: str, session_id: str, lease_epoch: int,
                now: datetime, default_max_duration: timedelta) -> list[MissionRecord]:
    """Claim up to limit queued missions of a lane for one worker (QUEUED -> RUNNING)."""
    assigned = []
    effects = Effects()
    for queued in tx.next_queued(lane, limit):
        record = tx.get_mission(queued.mission_id, for_update=True)
        if record is None or record.state != M.QUEUED:
            continue
        budget = _budget(record) or default_max_duration
        deadline = min(filter(None, [_envelope_deadline(record), now + budget]))
        run_id = f"r-{uuid.uuid4().hex[:16]}"
        wait = (now - record.updated_at).total_seconds() if record.updated_at else 0.0
        assigned.append(move(
            tx, record, M.RUNNING, now, effects, run_id=run_id, session_id=session_id, lease_epoch=lease_epoch,
            worker_owner=owner, started_at=now, deadline=deadline,
            route={**record.route, QUEUE_WAIT_KEY: round(wait, 6)},  # observed when the mission ends
            event_payload={"run_id": run_id, "worker_owner": owner, "lease_epoch": lease_epoch,
                           "session_id": session_id, "queue_wait_seconds": round(wait, 6)},
        ))
    return assigned


def _envelope_deadline(record: MissionRecord) -> datetime | None:
    raw = record.envelope.get("deadline")
    if not raw:
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _budget(record: MissionRecord) -> timedelta | None:
    raw = (record.envelope.get("budget") or {}).get("max_duration")
    if not raw:
        return None
    return timedelta(seconds=float(raw.rstrip("s")))


def requeue(tx: Tx, record: MissionRecord, now: datetime, effects: Effects, *, reason: str,
            lane: str | None = None, route: dict | None = None) -> MissionRecord:
    """Put a running mission back in the queue for a fresh attempt."""
    effects.requeues.append((lane_of(record), reason))
    route = {key: value for key, value in (route or record.route).items() if key != QUEUE_WAIT_KEY}
    return move(tx, record, M.QUEUED, now, effects, attempt=record.attempt + 1, lane=lane or record.lane,
                route=route, run_id="", worker_owner="", lease_epoch=0, started_at=None,
                deadline=_envelope_deadline(record), event_payload={"reason": reason, "previous_run": record.run_id})


def cancel_queued(tx: Tx, record: MissionRecord, now: datetime, effects: Effects, reason: str) -> MissionRecord:
    return move(tx, record, M.CANCELLED, now, effects, cancel_reason=reason, event_payload={"reason": reason})


def shadow_finished(tx: Tx, shadow: MissionRecord, now: datetime) -> None:
    """Record a shadow copy's outcome on the mission it shadows, for comparison."""
    parent = tx.get_mission(shadow.shadow_of_mission_id, for_update=True)
    if parent is None:
        return
    latency = (shadow.completed_at - shadow.created_at).total_seconds() if shadow.created_at else 0.0
    outcome = {"shadow_mission_id": shadow.mission_id, "state": shadow.state.value,
               "latency_seconds": round(latency, 6)}
    tx.update_mission(replace(parent, shadow=outcome, updated_at=now))
    emit(tx, parent, "vp.mission.shadow_compared", now, **outcome, record_state=parent.state.value)


def finish_from_worker(tx: Tx, record: MissionRecord, outcome: MissionState, now: datetime, effects: Effects, *,
                       result_ref: str, error: mission_pb2.MissionError | None, summary: str) -> MissionRecord:
    error_fields = {"error_code": error.code, "error_message": error.message} if error else {}
    payload = {"run_id": record.run_id, "result_ref": result_ref, "summary": summary[:500], **error_fields}
    return move(tx, record, outcome, now, effects, result_ref=result_ref or record.result_ref, summary=summary,
                event_payload=payload, **error_fields)


def give_up(tx: Tx, record: MissionRecord, decision: RoutingDecision, now: datetime, effects: Effects, *,
            terminal: MissionState, error_code: str, error_message: str) -> MissionRecord:
    """No attempts left on this lane: re-route to the fallback lane, or end the
    mission with its route naming the caller as the one to handle it."""
    if record.shadow_of_mission_id:
        # A shadow copy is only a comparison: it ends here, nobody falls back for it.
        return move(tx, record, terminal, now, effects, error_code=error_code, error_message=error_message)
    reason = decision.reason.value if decision.reason else ""
    emit(tx, record, "vp.mission.fallback", now, reason=reason, target=decision.lane or "caller",
         provenance=decision.provenance)
    effects.fallbacks.append((lane_of(record), _fallback_reason(decision)))
    route = route_dict(decision, now, attempt_base=record.attempt)
    if decision.lane and record.state in (M.RUNNING, M.BLOCKED):
        return requeue(tx, record, now, effects, reason=f"fallback:{reason}", lane=decision.lane, route=route)
    if QUEUE_WAIT_KEY in record.route:
        route[QUEUE_WAIT_KEY] = record.route[QUEUE_WAIT_KEY]
    return move(tx, record, terminal, now, effects, route=route, error_code=error_code,
                error_message=error_message, event_payload={"reason": reason, "error_code": error_code})


def _fallback_reason(decision: RoutingDecision) -> str:
    """The metric label of a fallback: its reason; shadow mode has none of its own."""
    if decision.reason is not None:
        return decision.reason.value
    return "shadow" if decision.decision == Decision.SHADOW else "unknown"
