"""Exit codes of vpctl; scripts may rely on them."""

from __future__ import annotations

import grpc

from services.client.states import is_terminal
from services.common.contracts.vp.v1 import enums_pb2, mission_pb2

OK = 0
NOT_COMPLETED = 1
USAGE = 2
NOT_FOUND = 3
CONFLICT = 4
UNAVAILABLE = 5
ERROR = 6
#: The mission is BLOCKED: it waits for an answer or a raised budget (vpctl resume).
BLOCKED = 7
INTERRUPTED = 130

EPILOG = """\
exit codes:
  0  success (wait / dispatch --wait: the mission COMPLETED)
  1  the mission ended not completed (FAILED, CANCELLED, TIMED_OUT),
     or the dispatch fell back to the caller
  2  usage error or INVALID_ARGUMENT
  3  not found (NOT_FOUND)
  4  conflict (ALREADY_EXISTS, FAILED_PRECONDITION)
  5  unavailable or timed out (UNAVAILABLE, DEADLINE_EXCEEDED, wait timed out)
  6  any other error
  7  the mission is BLOCKED: it asked a question or reached its token/cost
     budget; the question is printed; answer with vpctl resume MISSION --answer
"""

_BY_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: USAGE,
    grpc.StatusCode.OUT_OF_RANGE: USAGE,
    grpc.StatusCode.NOT_FOUND: NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: CONFLICT,
    grpc.StatusCode.FAILED_PRECONDITION: CONFLICT,
    grpc.StatusCode.UNAVAILABLE: UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: UNAVAILABLE,
}


def for_status(code: grpc.StatusCode | None) -> int:
    return _BY_STATUS.get(code, ERROR)


def fell_back_to_caller(route: mission_pb2.Route) -> bool:
    if route.decision != enums_pb2.ROUTE_DECISION_FALLBACK:
        return False
    return route.fallback_target.kind == enums_pb2.FALLBACK_TARGET_KIND_CALLER or not route.lane


def for_mission(mission: mission_pb2.Mission) -> int:
    """0 for COMPLETED, 7 for BLOCKED, 1 for any other end, 5 if still going."""
    if mission.state == enums_pb2.MISSION_STATE_COMPLETED:
        return OK
    if mission.state == enums_pb2.MISSION_STATE_BLOCKED:
        return BLOCKED
    if is_terminal(mission.state):
        return NOT_COMPLETED
    return UNAVAILABLE
