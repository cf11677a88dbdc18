"""Every row of the transition tables is reachable by its name; everything else is refused."""

from __future__ import annotations

import itertools

import pytest

from services.common.errors import IllegalTransition
from services.common.states import (
    MISSION_TRANSITIONS,
    SESSION_TRANSITIONS,
    MissionState,
    SessionStatus,
    _index,
    mission_transition,
    session_transition,
)


def _key(t):
    return (t.name, str(t.source), str(t.target))


SESSION_LEGAL = {_key(t) for t in SESSION_TRANSITIONS}
MISSION_LEGAL = {_key(t) for t in MISSION_TRANSITIONS}


@pytest.mark.parametrize("transition", SESSION_TRANSITIONS, ids=lambda t: f"{t.name}:{t.source}->{t.target}")
def test_legal_session_transitions_have_actor_and_event(transition):
    source = None if transition.source == "(none)" else SessionStatus(transition.source)
    found = session_transition(transition.name, source, SessionStatus(transition.target))
    assert found is transition
    assert found.actor and found.event and found.event.startswith("vp.session.")


@pytest.mark.parametrize("transition", MISSION_TRANSITIONS, ids=lambda t: f"{t.name}:{t.source}->{t.target}")
def test_legal_mission_transitions_have_actor_and_event(transition):
    source = None if transition.source == "(none)" else MissionState(transition.source)
    found = mission_transition(transition.name, source, MissionState(transition.target))
    assert found is transition
    assert found.actor and found.event and found.event.startswith("vp.mission.")


ILLEGAL_SESSION = [
    (name, a, b) for name in sorted({t.name for t in SESSION_TRANSITIONS})
    for a, b in itertools.product([None, *SessionStatus], SessionStatus)
    if (name, "(none)" if a is None else str(a), str(b)) not in SESSION_LEGAL
]
ILLEGAL_MISSION = [
    (name, a, b) for name in sorted({t.name for t in MISSION_TRANSITIONS})
    for a, b in itertools.product([None, *MissionState], MissionState)
    if (name, "(none)" if a is None else str(a), str(b)) not in MISSION_LEGAL
]


@pytest.mark.parametrize(("name", "source", "target"), ILLEGAL_SESSION)
def test_illegal_session_transitions_refused(name, source, target):
    with pytest.raises(IllegalTransition):
        session_transition(name, source, target)


@pytest.mark.parametrize(("name", "source", "target"), ILLEGAL_MISSION)
def test_illegal_mission_transitions_refused(name, source, target):
    with pytest.raises(IllegalTransition):
        mission_transition(name, source, target)


def test_unknown_transition_name_is_refused():
    with pytest.raises(IllegalTransition):
        mission_transition("teleport", MissionState.QUEUED, MissionState.RUNNING)


@pytest.mark.parametrize("table", [SESSION_TRANSITIONS, MISSION_TRANSITIONS], ids=["session", "mission"])
def test_each_name_has_one_actor_and_each_row_one_key(table):
    actors = {}
    for row in table:
        actors.setdefault(row.name, set()).add(row.actor)
    assert all(len(found) == 1 for found in actors.values()), actors
    assert len({_key(t) for t in table}) == len(table)


def test_a_row_listed_twice_or_a_name_with_two_actors_is_refused_at_import():
    row = MISSION_TRANSITIONS[0]
    with pytest.raises(ValueError, match="twice"):
        _index((row, row))
    other = type(row)(row.name, row.source, MissionState.RUNNING, "worker", "x", "vp.mission.x")
    with pytest.raises(ValueError, match="two actors"):
        _index((row, other))


def test_the_same_pair_by_two_actors_keeps_both_rows():
    # (RUNNING, FAILED) is reached by a worker's result and by the supervisor's give-up.
    worker = mission_transition("fail", MissionState.RUNNING, MissionState.FAILED)
    supervisor = mission_transition("give_up", MissionState.RUNNING, MissionState.FAILED)
    assert (worker.actor, supervisor.actor) == ("worker", "supervisor")
    # A paused session acquired again resumes; released, it is released.
    acquired = session_transition("acquire", SessionStatus.PAUSED, SessionStatus.PAUSED)
    released = session_transition("release", SessionStatus.PAUSED, SessionStatus.PAUSED)
    assert (acquired.event, released.event) == ("vp.session.resumed", "vp.session.released")


def test_terminal_missions_never_leave():
    for state in MissionState:
        if state.terminal:
            assert not [t for t in MISSION_TRANSITIONS if t.source == state]
    assert len(ILLEGAL_SESSION) > 20 and len(ILLEGAL_MISSION) > 40
