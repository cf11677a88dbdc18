"""Enum helpers: parse user-typed state names, tell terminal states apart."""

from __future__ import annotations

from services.common.contracts.vp.v1 import enums_pb2

MissionState = enums_pb2.MissionState
SessionStatus = enums_pb2.SessionStatus

TERMINAL_STATES = frozenset({
    enums_pb2.MISSION_STATE_COMPLETED,
    enums_pb2.MISSION_STATE_FAILED,
    enums_pb2.MISSION_STATE_CANCELLED,
    enums_pb2.MISSION_STATE_TIMED_OUT,
})


def is_terminal(state: int) -> bool:
    return state in TERMINAL_STATES


def _parse(enum, prefix: str, value: int | str) -> int:
    if isinstance(value, int):
        enum.Name(value)  # raises ValueError when unknown
        return value
    name = value.strip().upper().replace("-", "_")
    if not name.startswith(prefix):
        name = prefix + name
    try:
        number = enum.Value(name)
    except ValueError:
        choices = ", ".join(n[len(prefix):].lower() for n in enum.keys() if not n.endswith("UNSPECIFIED"))
        raise ValueError(f"unknown value {value!r} (choose from {choices})") from None
    if number == 0:
        raise ValueError(f"{value!r} is not a valid filter value")
    return number


def parse_mission_state(value: int | str) -> int:
    """'running', 'RUNNING', 'MISSION_STATE_RUNNING' or 2 -> 2."""
    return _parse(MissionState, "MISSION_STATE_", value)


def parse_session_status(value: int | str) -> int:
    return _parse(SessionStatus, "SESSION_STATUS_", value)


def short_name(enum, value: int, prefix: str) -> str:
    try:
        name = enum.Name(value)
    except ValueError:
        return str(value)
    return name[len(prefix):] if name.startswith(prefix) else name


def mission_state_name(value: int) -> str:
    return short_name(MissionState, value, "MISSION_STATE_")


def session_status_name(value: int) -> str:
    return short_name(SessionStatus, value, "SESSION_STATUS_")
