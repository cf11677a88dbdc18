"""The state machines of sessions and missions, in one place.

Each table lists the legal transitions, who makes them and which event each
emits; specs/ renders the same tables for readers. Anything not listed is
illegal and is refused with IllegalTransition.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.common.errors import IllegalTransition


class SessionStatus(StrEnum):
    IDLE = "idle"
    ACTIVE = "active"
    PAUSED = "paused"
    DEGRADED = "degraded"
    RECOVERING = "recovering"
    RETIRED = "retired"


class MissionState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    BLOCKED = "blocked"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_MISSION_STATES


TERMINAL_MISSION_STATES = frozenset(
    {MissionState.COMPLETED, MissionState.FAILED, MissionState.CANCELLED, MissionState.TIMED_OUT}
)


@dataclass(frozen=True)
class Transition:
    """One row: the named transition `name` takes `source` to `target`. Each
    name has exactly one actor (whose action causes it); (name, source, target)
    is unique, so a lookup can never pick the wrong row."""

    name: str
    source: str
    target: str
    actor: str
    trigger: str
    event: str | None


S = SessionStatus
SESSION_TRANSITIONS: tuple[Transition, ...] = (
    Transition("acquire", "(none)", S.ACTIVE, "registry", "AcquireLease on a new vp_id", "vp.session.created"),
    Transition("acquire", S.IDLE, S.ACTIVE, "registry", "AcquireLease", "vp.session.resumed"),
    Transition("acquire", S.ACTIVE, S.ACTIVE, "registry", "AcquireLease after expiry (takeover, or by the holder)",
               "vp.session.resumed"),
    Transition("acquire", S.PAUSED, S.PAUSED, "registry", "AcquireLease (paused lanes keep their status)",
               "vp.session.resumed"),
    Transition("acquire", S.DEGRADED, S.ACTIVE, "registry", "AcquireLease", "vp.session.resumed"),
    Transition("acquire", S.RECOVERING, S.ACTIVE, "registry", "AcquireLease", "vp.session.resumed"),
    Transition("renew", S.DEGRADED, S.ACTIVE, "registry", "RenewLease by the current term's holder",
               "vp.session.resumed"),
    Transition("renew", S.RECOVERING, S.ACTIVE, "registry", "RenewLease by the current term's holder",
               "vp.session.resumed"),
    Transition("release", S.ACTIVE, S.IDLE, "registry", "ReleaseLease by the holder", "vp.session.released"),
    Transition("release", S.PAUSED, S.PAUSED, "registry", "ReleaseLease by the holder", "vp.session.released"),
    Transition("release", S.DEGRADED, S.IDLE, "registry", "ReleaseLease by the current term's holder",
               "vp.session.released"),
    Transition("release", S.RECOVERING, S.IDLE, "registry", "ReleaseLease by the current term's holder",
               "vp.session.released"),
    Transition("expire", S.ACTIVE, S.DEGRADED, "sweeper", "lease expired", "vp.session.degraded"),
    Transition("start_recovery", S.DEGRADED, S.RECOVERING, "sweeper", "degraded longer than the grace period",
               "vp.session.recovering"),
    Transition("retire", S.IDLE, S.RETIRED, "operator", "RetireSession", "vp.session.retired"),
    Transition("retire", S.ACTIVE, S.RETIRED, "operator", "RetireSession", "vp.session.retired"),
    Transition("retire", S.PAUSED, S.RETIRED, "operator", "RetireSession", "vp.session.retired"),
    Transition("retire", S.DEGRADED, S.RETIRED, "operator", "RetireSession", "vp.session.retired"),
    Transition("retire", S.RECOVERING, S.RETIRED, "operator", "RetireSession", "vp.session.retired"),
    Transition("revive", S.RETIRED, S.IDLE, "operator", "ReviveSession", "vp.session.revived"),
)

# Actors of mission transitions: the caller (MissionControl RPCs), the worker
# (WorkerChannel messages), the dispatcher (assignment and routing) and the
# supervisor (the dispatcher's safety net: deadlines, lost workers). The
# dispatcher writes every row; services/dispatcher/transitions.py is the only
# code that does. Rows whose source equals their target change no state but
# are transitions of the record all the same (an event, a flag).
M = MissionState
MISSION_TRANSITIONS: tuple[Transition, ...] = (
    Transition("dispatch", "(none)", M.QUEUED, "caller", "DispatchMission", "vp.mission.dispatched"),
    Transition("hand_back", M.QUEUED, M.FAILED, "dispatcher",
               "routing at dispatch hands the result of record to the caller", "vp.mission.failed"),
    Transition("assign", M.QUEUED, M.RUNNING, "dispatcher", "a free slot of the lane's worker (live lease)",
               "vp.mission.started"),
    Transition("cancel", M.QUEUED, M.CANCELLED, "caller", "CancelMission", "vp.mission.cancelled"),
    Transition("cancel", M.BLOCKED, M.CANCELLED, "caller", "CancelMission", "vp.mission.cancelled"),
    Transition("request_cancel", M.RUNNING, M.RUNNING, "caller", "CancelMission on a running mission, first time",
               "vp.mission.cancel_requested"),
    Transition("progress", M.RUNNING, M.RUNNING, "worker", "MissionProgress with a new seq", "vp.mission.progress"),
    Transition("complete", M.RUNNING, M.COMPLETED, "worker", "MissionResult COMPLETED", "vp.mission.completed"),
    Transition("fail", M.RUNNING, M.FAILED, "worker", "MissionResult FAILED, no attempts left, fallback to the caller",
               "vp.mission.failed"),
    Transition("block", M.RUNNING, M.BLOCKED, "worker", "MissionResult BLOCKED", "vp.mission.blocked"),
    Transition("report_timeout", M.RUNNING, M.TIMED_OUT, "worker", "MissionResult TIMED_OUT (max_duration spent)",
               "vp.mission.timed_out"),
    Transition("acknowledge_cancel", M.RUNNING, M.CANCELLED, "worker",
               "MissionResult after a cancel was requested (any outcome but COMPLETED)", "vp.mission.cancelled"),
    Transition("retry", M.RUNNING, M.QUEUED, "worker", "MissionResult FAILED with attempts left (attempt + 1)",
               "vp.mission.requeued"),
    Transition("give_back", M.RUNNING, M.QUEUED, "worker",
               "MissionHandBack: a draining worker stopped the run (same attempt: no attempt used)",
               "vp.mission.requeued"),
    Transition("give_back", M.RUNNING, M.CANCELLED, "worker", "MissionHandBack after a cancel was requested",
               "vp.mission.cancelled"),
    Transition("reroute", M.RUNNING, M.QUEUED, "dispatcher",
               "no attempts left on the lane and routing names a fallback lane (attempt + 1)", "vp.mission.requeued"),
    Transition("lose", M.RUNNING, M.QUEUED, "supervisor",
               "worker lost (term ended or superseded, or run unreported), attempts left (attempt + 1)",
               "vp.mission.requeued"),
    Transition("lose", M.RUNNING, M.CANCELLED, "supervisor", "worker lost after a cancel was requested",
               "vp.mission.cancelled"),
    Transition("give_up", M.RUNNING, M.FAILED, "supervisor", "worker lost, no attempts left, fallback to the caller",
               "vp.mission.failed"),
    Transition("time_out", M.QUEUED, M.TIMED_OUT, "supervisor", "deadline passed while queued",
               "vp.mission.timed_out"),
    Transition("time_out", M.RUNNING, M.TIMED_OUT, "supervisor", "attempt deadline (deadline or max_duration) passed",
               "vp.mission.timed_out"),
    Transition("time_out", M.BLOCKED, M.TIMED_OUT, "supervisor", "deadline passed while blocked",
               "vp.mission.timed_out"),
    Transition("resume", M.BLOCKED, M.QUEUED, "caller", "ResumeMission (attempt + 1)", "vp.mission.resumed"),
)


def _index(table: tuple[Transition, ...]) -> dict[tuple[str, str, str], Transition]:
    index: dict[tuple[str, str, str], Transition] = {}
    actors: dict[str, str] = {}
    for row in table:
        key = (row.name, str(row.source), str(row.target))
        if key in index:
            raise ValueError(f"transition {key} is listed twice")
        if actors.setdefault(row.name, row.actor) != row.actor:
            raise ValueError(f"transition {row.name!r} names two actors")
        index[key] = row
    return index


_SESSION_INDEX = _index(SESSION_TRANSITIONS)
_MISSION_INDEX = _index(MISSION_TRANSITIONS)


def _lookup(kind: str, index, name: str, source, target) -> Transition:
    key = (name, "(none)" if source is None else str(source), str(target))
    try:
        return index[key]
    except KeyError:
        raise IllegalTransition(kind, key[1], key[2]) from None


def session_transition(name: str, source: SessionStatus | None, target: SessionStatus) -> Transition:
    """The row of transition `name` from source to target, or IllegalTransition."""
    return _lookup("session", _SESSION_INDEX, name, source, target)


def mission_transition(name: str, source: MissionState | None, target: MissionState) -> Transition:
    return _lookup("mission", _MISSION_INDEX, name, source, target)
