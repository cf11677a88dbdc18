"""The authorization matrix, as data. specs/trust-boundary-v1.md renders it and
tests/auth/test_matrix.py asserts every cell against real servers.

A method missing from the matrix is denied to everyone (PERMISSION_DENIED,
METHOD_NOT_IN_MATRIX): a new RPC is closed until someone writes its row."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from services.common.auth.principals import Role

C, W, O, S = Role.CLIENT, Role.WORKER, Role.OPERATOR, Role.SERVICE


class Scope(enum.Enum):
    """What a caller of an allowed role may reach beyond the method itself."""

    ANY = "any"                # whatever the request names
    OWN_LANE = "own_lane"      # workers: only requests naming one of their vp_ids (lane_field)
    OWN_MISSION = "own_mission"  # clients: only missions they dispatched (mission_field)
    OWN_RESULTS = "own_results"  # clients: lists and streams trimmed to their own missions
    DISPATCH = "dispatch"      # the mission is recorded as the caller's


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role]
    anonymous: bool = False
    scope: Scope = Scope.ANY
    # Dotted path of the request field naming the lane (OWN_LANE) or mission (OWN_MISSION).
    field: str = ""
    # Which roles the scope restricts; the others in roles are unrestricted.
    scoped_roles: frozenset[Role] = frozenset()


def _rule(*roles: Role, anonymous: bool = False, scope: Scope = Scope.ANY, field: str = "",
          scoped: tuple[Role, ...] = ()) -> Rule:
    return Rule(frozenset(roles), anonymous, scope, field, frozenset(scoped))


MC = "/vp.v1.MissionControl/"
REG = "/vp.v1.SessionRegistry/"
WC = "/vp.v1.WorkerChannel/"
HEALTH = "/grpc.health.v1.Health/"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/"

MATRIX: dict[str, Rule] = {
    MC + "DispatchMission": _rule(C, O, scope=Scope.DISPATCH, scoped=(C, O)),
    MC + "GetMission": _rule(C, O, scope=Scope.OWN_MISSION, field="mission_id", scoped=(C,)),
    MC + "ListMissions": _rule(C, O, scope=Scope.OWN_RESULTS, scoped=(C,)),
    MC + "WaitMission": _rule(C, O, scope=Scope.OWN_MISSION, field="mission_id", scoped=(C,)),
    MC + "CancelMission": _rule(C, O, scope=Scope.OWN_MISSION, field="mission_id", scoped=(C,)),
    MC + "StreamMissionEvents": _rule(C, O, scope=Scope.OWN_RESULTS, scoped=(C,)),
    MC + "CommitEventCursor": _rule(C, O),
    MC + "ReadResultArtifacts": _rule(C, O, scope=Scope.OWN_MISSION, field="mission_id", scoped=(C,)),
    MC + "ResumeMission": _rule(C, O, scope=Scope.OWN_MISSION, field="mission_id", scoped=(C,)),
    MC + "GetRoutingFlags": _rule(O),
    MC + "SetRoutingFlags": _rule(O),
    REG + "AcquireLease": _rule(W, scope=Scope.OWN_LANE, field="vp_id", scoped=(W,)),
    # The dispatcher renews a lane's lease on each heartbeat of the worker's authenticated stream.
    REG + "RenewLease": _rule(W, S, scope=Scope.OWN_LANE, field="vp_id", scoped=(W,)),
    REG + "ReleaseLease": _rule(W, scope=Scope.OWN_LANE, field="vp_id", scoped=(W,)),
    REG + "SetConversation": _rule(W, scope=Scope.OWN_LANE, field="vp_id", scoped=(W,)),
    REG + "GetSession": _rule(C, W, O, S),
    REG + "ListSessions": _rule(C, W, O, S),
    REG + "RetireSession": _rule(O),
    REG + "ReviveSession": _rule(O),
    REG + "ResetConversation": _rule(O),
    WC + "Connect": _rule(W, scope=Scope.OWN_LANE, field="hello.vp_id", scoped=(W,)),
    HEALTH + "Check": _rule(C, W, O, S, anonymous=True),
    HEALTH + "Watch": _rule(C, W, O, S, anonymous=True),
    REFLECTION + "ServerReflectionInfo": _rule(C, W, O, S),
}

# The label DispatchMission stamps with the dispatching principal ("client:simone"):
# the record of who may read, wait on, resume and cancel the mission.
OWNER_LABEL = "vp.dispatched_by"


def field_value(request, path: str) -> str:
    value = request
    for part in path.split("."):
        value = getattr(value, part)
    return value
