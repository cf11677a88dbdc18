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
    source: str
    target: str
    actor: str
    trigger: str
    event: str | None


S = SessionStatus
SESSION_TRANSITIONS: tuple[Transition, ...] = (
    Transition("(none)", S.ACTIVE, "registry", "AcquireLease on a new vp_id", "vp.session.created"),
    Transition(S.IDLE, S.ACTIVE, "registry", "AcquireLease", "vp.session.resumed"),
    Transition(S.ACTIVE, S.ACTIVE, "registry", "AcquireLease after expiry (takeover) or by the holder", "vp.session.resumed"),
    Transition(S.PAUSED, S.PAUSED, "registry", "AcquireLease (paused lanes keep their status)", "vp.session.resumed"),
    Transition(S.DEGRADED, S.ACTIVE, "registry", "AcquireLease, or RenewLease by the current term's holder", "vp.session.resumed"),
    Transition(S.RECOVERING, S.ACTIVE, "registry", "AcquireLease, or RenewLease by the current term's holder", "vp.session.resumed"),
    Transition(S.ACTIVE, S.IDLE, "registry", "ReleaseLease by the holder", "vp.session.released"),
    Transition(S.PAUSED, S.PAUSED, "registry", "ReleaseLease by the holder", "vp.session.released"),
    Transition(S.DEGRADED, S.IDLE, "registry", "ReleaseLease by the current term's holder", "vp.session.released"),
    Transition(S.RECOVERING, S.IDLE, "registry", "ReleaseLease by the current term's holder", "vp.session.released"),
    Transition(S.ACTIVE, S.DEGRADED, "sweeper", "lease expired", "vp.session.degraded"),
    Transition(S.DEGRADED, S.RECOVERING, "sweeper", "degraded longer than the grace period", "vp.session.recovering"),
    Transition(S.IDLE, S.RETIRED, "operator", "RetireSession", "vp.session.retired"),
    Transition(S.ACTIVE, S.RETIRED, "operator", "RetireSession", "vp.session.retired"),
    Transition(S.PAUSED, S.RETIRED, "operator", "RetireSession", "vp.session.retired"),
    Transition(S.DEGRADED, S.RETIRED, "operator", "RetireSession", "vp.session.retired"),
    Transition(S.RECOVERING, S.RETIRED, "operator", "RetireSession", "vp.session.retired"),
)

M = MissionState
MISSION_TRANSITIONS: tuple[Transition, ...] = (
    Transition("(none)", M.QUEUED, "dispatcher", "DispatchMission", "vp.mission.dispatched"),
    Transition(M.QUEUED, M.RUNNING, "dispatcher", "assigned to a worker with a live lease", "vp.mission.started"),
    Transition(M.QUEUED, M.CANCELLED, "dispatcher", "CancelMission", "vp.mission.cancelled"),
    Transition(M.QUEUED, M.TIMED_OUT, "dispatcher", "deadline passed while queued", "vp.mission.timed_out"),
    Transition(M.QUEUED, M.FAILED, "dispatcher", "fallback: lane cannot take it", "vp.mission.failed"),
    Transition(M.RUNNING, M.COMPLETED, "worker", "MissionResult COMPLETED", "vp.mission.completed"),
    Transition(M.RUNNING, M.FAILED, "worker", "MissionResult FAILED, no attempts left", "vp.mission.failed"),
    Transition(M.RUNNING, M.CANCELLED, "worker", "MissionResult after a cancel (any outcome but COMPLETED), "
               "or worker lost after a cancel", "vp.mission.cancelled"),
    Transition(M.RUNNING, M.TIMED_OUT, "dispatcher", "deadline or budget passed", "vp.mission.timed_out"),
    Transition(M.RUNNING, M.BLOCKED, "worker", "MissionResult BLOCKED", "vp.mission.blocked"),
    Transition(M.RUNNING, M.QUEUED, "dispatcher", "worker lost or failed with attempts left, or re-routed to the "
               "fallback lane (attempt + 1)", "vp.mission.requeued"),
    Transition(M.RUNNING, M.FAILED, "dispatcher", "worker lost, no attempts left", "vp.mission.failed"),
    Transition(M.BLOCKED, M.QUEUED, "dispatcher", "re-dispatch after unblock", "vp.mission.requeued"),
    Transition(M.BLOCKED, M.CANCELLED, "dispatcher", "CancelMission", "vp.mission.cancelled"),
    Transition(M.BLOCKED, M.TIMED_OUT, "dispatcher", "deadline passed", "vp.mission.timed_out"),
)


def _index(table: tuple[Transition, ...]) -> dict[tuple[str, str], Transition]:
    return {(str(t.source), str(t.target)): t for t in table}


_SESSION_INDEX = _index(SESSION_TRANSITIONS)
_MISSION_INDEX = _index(MISSION_TRANSITIONS)


def session_transition(source: SessionStatus | None, target: SessionStatus) -> Transition:
    """The transition for source -> target, or IllegalTransition."""
    key = ("(none)" if source is None else str(source), str(target))
    try:
        return _SESSION_INDEX[key]
    except KeyError:
        raise IllegalTransition("session", key[0], key[1]) from None


def mission_transition(source: MissionState | None, target: MissionState) -> Transition:
    key = ("(none)" if source is None else str(source), str(target))
    try:
        return _MISSION_INDEX[key]
    except KeyError:
        raise IllegalTransition("mission", key[0], key[1]) from None
