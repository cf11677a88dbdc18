"""Every legal transition is accepted; every other pair is refused."""

from __future__ import annotations

import itertools

import pytest

from services.common.errors import IllegalTransition
from services.common.states import (
    MISSION_TRANSITIONS,
    SESSION_TRANSITIONS,
    MissionState,
    SessionStatus,
    mission_transition,
    session_transition,
)

SESSION_LEGAL = {(str(t.source), str(t.target)) for t in SESSION_TRANSITIONS}
MISSION_LEGAL = {(str(t.source), str(t.target)) for t in MISSION_TRANSITIONS}


@pytest.mark.parametrize("transition", SESSION_TRANSITIONS, ids=lambda t: f"{t.source}->{t.target}")
def test_legal_session_transitions_have_actor_and_event(transition):
    source = None if transition.source == "(none)" else SessionStatus(transition.source)
    found = session_transition(source, SessionStatus(transition.target))
    assert found.actor and found.event and found.event.startswith("vp.session.")


@pytest.mark.parametrize("transition", MISSION_TRANSITIONS, ids=lambda t: f"{t.source}->{t.target}")
def test_legal_mission_transitions_have_actor_and_event(transition):
    source = None if transition.source == "(none)" else MissionState(transition.source)
    found = mission_transition(source, MissionState(transition.target))
    assert found.actor and found.event and found.event.startswith("vp.mission.")


ILLEGAL_SESSION = [
    (a, b) for a, b in itertools.product([None, *SessionStatus], SessionStatus)
    if ("(none)" if a is None else str(a), str(b)) not in SESSION_LEGAL
]
ILLEGAL_MISSION = [
    (a, b) for a, b in itertools.product([None, *MissionState], MissionState)
    if ("(none)" if a is None else str(a), str(b)) not in MISSION_LEGAL
]


@pytest.mark.parametrize(("source", "target"), ILLEGAL_SESSION)
def test_illegal_session_transitions_refused(source, target):
    with pytest.raises(IllegalTransition):
        session_transition(source, target)


@pytest.mark.parametrize(("source", "target"), ILLEGAL_MISSION)
def test_illegal_mission_transitions_refused(source, target):
    with pytest.raises(IllegalTransition):
        mission_transition(source, target)


def test_terminal_missions_never_leave():
    for state in MissionState:
        if state.terminal:
            assert not [t for t in MISSION_TRANSITIONS if t.source == state]
    assert len(ILLEGAL_SESSION) > 20 and len(ILLEGAL_MISSION) > 40
