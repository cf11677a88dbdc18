"""The authorization matrix (specs/trust-boundary-v1.md), every cell asserted
against real servers on real TLS: every RPC of the contract x {anonymous, client
on its own mission, client on another's mission, worker of lane A acting on A,
worker of A acting on B, operator, service}.

EXPECTED is written from the spec, independently of services/common/auth/policy.py:
an RPC added to the contract without a row here (or in the policy) fails."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2

from services.common.auth.policy import MATRIX
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import mission_pb2, session_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from services.common.contracts.vp.v1 import worker_channel_service_pb2 as wc_pb
from services.common.telemetry.metrics import AUTH_DENIALS
from tests.auth.support import LANE_A, LANE_B, auth_stack, denied
from tests.support.hostile import acceptable
from tests.support.rpc_catalog import Rpc, all_rpcs

COLUMNS = ("anonymous", "client", "other_client", "worker_own", "worker_other", "operator", "service")
# Who calls in each column (None: no credentials), and which lane / whose mission the request names.
CALLER = {"anonymous": None, "client": "alice", "other_client": "bob", "worker_own": "coder",
          "worker_other": "coder", "operator": "ops", "service": "dispatcher"}

OK, NO, ANON = "ok", "denied", "unauthenticated"


def row(anonymous=ANON, client=NO, other_client=NO, worker_own=NO, worker_other=NO, operator=NO, service=NO):
    return dict(zip(COLUMNS, (anonymous, client, other_client, worker_own, worker_other, operator, service)))


OWN_MISSION = row(client=OK, operator=OK)
CLIENT_READS = row(client=OK, other_client=OK, operator=OK)
OWN_LANE = row(worker_own=OK)
OPERATOR_ONLY = row(operator=OK)
EXPECTED = {
    "/vp.v1.MissionControl/DispatchMission": CLIENT_READS,
    "/vp.v1.MissionControl/GetMission": OWN_MISSION,
    "/vp.v1.MissionControl/ListMissions": CLIENT_READS,
    "/vp.v1.MissionControl/WaitMission": OWN_MISSION,
    "/vp.v1.MissionControl/CancelMission": OWN_MISSION,
    "/vp.v1.MissionControl/StreamMissionEvents": CLIENT_READS,
    "/vp.v1.MissionControl/CommitEventCursor": CLIENT_READS,
    "/vp.v1.MissionControl/ReadResultArtifacts": OWN_MISSION,
    "/vp.v1.MissionControl/ResumeMission": OWN_MISSION,
    "/vp.v1.MissionControl/GetRoutingFlags": OPERATOR_ONLY,
    "/vp.v1.MissionControl/SetRoutingFlags": OPERATOR_ONLY,
    "/vp.v1.SessionRegistry/AcquireLease": OWN_LANE,
    "/vp.v1.SessionRegistry/RenewLease": row(worker_own=OK, service=OK),
    "/vp.v1.SessionRegistry/ReleaseLease": OWN_LANE,
    "/vp.v1.SessionRegistry/GetSession": row(client=OK, other_client=OK, worker_own=OK, worker_other=OK,
                                             operator=OK, service=OK),
    "/vp.v1.SessionRegistry/ListSessions": row(client=OK, other_client=OK, worker_own=OK, worker_other=OK,
                                               operator=OK, service=OK),
    "/vp.v1.SessionRegistry/RetireSession": OPERATOR_ONLY,
    "/vp.v1.SessionRegistry/SetConversation": OWN_LANE,
    "/vp.v1.SessionRegistry/ResetConversation": OPERATOR_ONLY,
    "/vp.v1.SessionRegistry/ReviveSession": OPERATOR_ONLY,
    "/vp.v1.WorkerChannel/Connect": OWN_LANE,
    "/grpc.health.v1.Health/Check": row(anonymous=OK, client=OK, other_client=OK, worker_own=OK, worker_other=OK,
                                        operator=OK, service=OK),
}

HEALTH_CHECK = Rpc("grpc.health.v1.Health", "Check", health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse,
                   False, False)
RPCS = [*all_rpcs(), HEALTH_CHECK]


def request_for(rpc: Rpc, column: str, mission_id: str, term: session_pb2.VpSession):
    """A well-formed request naming lane A (B for worker_other) and alice's mission."""
    lane = LANE_B if column == "worker_other" else LANE_A
    owner, epoch = term.lease_owner, term.lease_epoch
    conversation = session_pb2.AgentConversation(agent="claude-code", conversation_id="c-1")
    build = {
        "DispatchMission": lambda: mc_pb.DispatchMissionRequest(envelope=mission_pb2.MissionEnvelope(
            vp_id=lane, mission_type="code", objective="matrix")),
        "GetMission": lambda: mc_pb.GetMissionRequest(mission_id=mission_id),
        "ListMissions": lambda: mc_pb.ListMissionsRequest(),
        "WaitMission": lambda: mc_pb.WaitMissionRequest(mission_id=mission_id, timeout=Duration()),
        "CancelMission": lambda: mc_pb.CancelMissionRequest(mission_id=mission_id, reason="matrix"),
        "StreamMissionEvents": lambda: mc_pb.StreamMissionEventsRequest(mission_id=mission_id),
        "CommitEventCursor": lambda: mc_pb.CommitEventCursorRequest(consumer=f"c-{column}", event_id=1),
        "ReadResultArtifacts": lambda: mc_pb.ReadResultArtifactsRequest(mission_id=mission_id),
        "ResumeMission": lambda: mc_pb.ResumeMissionRequest(mission_id=mission_id, answer="yes"),
        "GetRoutingFlags": lambda: mc_pb.GetRoutingFlagsRequest(vp_id=lane),
        "SetRoutingFlags": lambda: mc_pb.SetRoutingFlagsRequest(vp_id=lane, shadow=False, reason="matrix"),
        "AcquireLease": lambda: reg_pb.AcquireLeaseRequest(vp_id=lane, owner=owner, workspace_dir=f"/ws/{lane}"),
        "RenewLease": lambda: reg_pb.RenewLeaseRequest(vp_id=lane, owner=owner, lease_epoch=epoch),
        "ReleaseLease": lambda: reg_pb.ReleaseLeaseRequest(vp_id=lane, owner=owner, lease_epoch=epoch),
        "GetSession": lambda: reg_pb.GetSessionRequest(vp_id=lane),
        "ListSessions": lambda: reg_pb.ListSessionsRequest(),
        "RetireSession": lambda: reg_pb.RetireSessionRequest(vp_id=lane, reason="matrix"),
        "ReviveSession": lambda: reg_pb.ReviveSessionRequest(vp_id=lane, reason="matrix"),
        "SetConversation": lambda: reg_pb.SetConversationRequest(vp_id=lane, owner=owner, lease_epoch=epoch,
                                                                 conversation=conversation),
        "ResetConversation": lambda: reg_pb.ResetConversationRequest(vp_id=lane, reason="matrix"),
        # A stale epoch: allowed callers get FAILED_PRECONDITION at once instead of a stream.
        "Connect": lambda: wc_pb.ConnectRequest(hello=wc_pb.WorkerHello(
            vp_id=lane, owner=owner, session_id=term.session_id, lease_epoch=epoch + 100, capacity=1)),
        "Check": lambda: health_pb2.HealthCheckRequest(),
    }
    return build[rpc.name]()


def test_every_rpc_has_a_row_here_and_in_the_policy():
    paths = {rpc.path for rpc in RPCS}
    assert not paths - set(EXPECTED), f"RPCs without a row in the expected matrix: {sorted(paths - set(EXPECTED))}"
    assert not paths - set(MATRIX), f"RPCs without a row in services/common/auth/policy.py: " \
                                    f"{sorted(paths - set(MATRIX))}"


def _denials(rpc: Rpc, reason: str) -> float:
    return AUTH_DENIALS.labels(rpc.service, rpc.name, reason)._value.get()


@pytest.mark.parametrize("rpc", RPCS, ids=lambda r: r.path.lstrip("/"))
async def test_matrix_row(db_url, rpc):
    """All seven cells of rpc's row."""
    assert rpc.path in EXPECTED, f"{rpc.path} has no row in the matrix"
    problems = []
    async with auth_stack(db_url) as auth:
        mission_id = await auth.dispatch("alice")
        term = (await auth.acquire("coder", LANE_A)).session
        for column in COLUMNS:
            expected = EXPECTED[rpc.path][column]
            request = request_for(rpc, column, mission_id, term)
            before = {r: _denials(rpc, r) for r in ("NO_CREDENTIALS", "ROLE_NOT_ALLOWED", "NOT_YOUR_LANE",
                                                    "NOT_YOUR_MISSION")}
            outcome = await auth.call(rpc, CALLER[column], request)
            if expected == OK:
                why = acceptable(outcome)
                if outcome.code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    why = f"allowed cell refused: {outcome.code.name} {outcome.details}"
            elif expected == ANON:
                why = denied(outcome, grpc.StatusCode.UNAUTHENTICATED, "NO_CREDENTIALS")
            else:
                why = denied(outcome, grpc.StatusCode.PERMISSION_DENIED)
            if why is None and expected != OK:
                reason = outcome.error_info.reason
                if _denials(rpc, reason) != before.get(reason, 0) + 1:
                    why = f"denial {reason} not counted in vp_auth_denials_total"
            if why:
                problems.append(f"{column}: {why}")
    assert not problems, f"{rpc.path}:\n" + "\n".join(problems)


def test_the_spec_renders_the_same_matrix():
    from pathlib import Path

    spec = (Path(__file__).resolve().parents[2] / "specs" / "trust-boundary-v1.md").read_text()
    table = spec.split("<!-- matrix:begin -->")[1].split("<!-- matrix:end -->")[0]
    symbols = {"✓": OK, "✗": NO, "🔒": ANON}
    rendered = {}
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = cells[0].strip("`")
        path = "/" + (name if name.startswith("grpc.") else f"vp.v1.{name}")
        rendered[path] = dict(zip(COLUMNS, (symbols[c] for c in cells[1:])))
    assert rendered == EXPECTED
