"""The attacks of the trust-boundary report, reproduced against a secure stack
(TLS, mTLS identities): each one now fails and does no harm. The attacker holds a
valid credential of the wrong kind (a client, or the worker of another lane);
with no credential at all it cannot even complete the TLS handshake."""

from __future__ import annotations

import grpc
import pytest

from services.common.contracts.vp.v1 import enums_pb2
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import mission_control_service_pb2_grpc as mc_grpc
from services.common.contracts.vp.v1 import mission_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as reg_grpc
from services.common.auth.principals import Role
from tests.support.grpc_errors import reason_of
from tests.support.scripted_worker import ScriptedWorker
from tests.support.security import mint_tokens, principal
from tests.support.stack import running_stack

CODER, GENERAL = "vp.coder.primary", "vp.general.primary"
THIEVES = ["client", "worker-vp.general.primary"]


@pytest.fixture
async def stack(db_url):
    async with running_stack(db_url) as running:
        yield running


@pytest.fixture
async def lane(stack):
    """The real worker of vp.coder.primary, connected."""
    worker = ScriptedWorker(stack, CODER)
    await worker.connect()
    yield worker
    await worker.close()


def registry_as(stack, identity: str):
    return reg_grpc.SessionRegistryStub(stack.channel_security(identity).aio_channel(stack.registry_address))


def missions_as(stack, identity: str, token: str | None = None):
    security = stack.pki.channel_security(identity, token=token)
    return mc_grpc.MissionControlStub(security.aio_channel(stack.dispatcher_address))


async def published_term(stack):
    """What anyone may read: GetSession publishes lease_owner and lease_epoch."""
    return (await registry_as(stack, "client").GetSession(reg_pb.GetSessionRequest(vp_id=CODER))).session


async def assert_lane_still_served(stack, lane: ScriptedWorker):
    reply = await stack.missions.DispatchMission(mc_pb.DispatchMissionRequest(envelope=mission_pb2.MissionEnvelope(
        vp_id=CODER, mission_type="code", objective="after the attack")))
    assignment = await lane.assignment()
    assert assignment.mission.envelope.mission_id == reply.mission.envelope.mission_id
    assert lane.ended is None
    return assignment


@pytest.mark.parametrize("thief", THIEVES)
async def test_worker_impersonation_with_published_owner_and_epoch_is_refused(stack, lane, thief):
    term = await published_term(stack)
    impostor = ScriptedWorker(stack, CODER, owner=term.lease_owner, identity=thief)
    impostor.epoch, impostor.session_id = term.lease_epoch, term.session_id
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await impostor.connect()
    await impostor.close()
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(refused.value) in {"ROLE_NOT_ALLOWED", "NOT_YOUR_LANE"}
    await assert_lane_still_served(stack, lane)  # the real worker's stream was not closed


@pytest.mark.parametrize("thief", THIEVES)
async def test_lease_theft_and_forged_result_are_refused(stack, lane, thief):
    term = await published_term(stack)
    thief_registry = registry_as(stack, thief)
    for attempt in (thief_registry.ReleaseLease(reg_pb.ReleaseLeaseRequest(
                        vp_id=CODER, owner=term.lease_owner, lease_epoch=term.lease_epoch)),
                    thief_registry.AcquireLease(reg_pb.AcquireLeaseRequest(
                        vp_id=CODER, owner="thief", workspace_dir=term.workspace_dir))):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await attempt
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    after = await published_term(stack)
    assert (after.lease_owner, after.lease_epoch) == (term.lease_owner, term.lease_epoch)
    # The lane's next mission goes to the real worker; its result is the one that stands.
    assignment = await assert_lane_still_served(stack, lane)
    lane.result(assignment, summary="the real result")
    await lane.next("result_accepted")
    mission = (await stack.missions.GetMission(mc_pb.GetMissionRequest(
        mission_id=assignment.mission.envelope.mission_id))).mission
    assert mission.state == enums_pb2.MISSION_STATE_COMPLETED


async def test_a_worker_of_another_lane_cannot_report_a_result_for_this_lane(stack, lane):
    other = ScriptedWorker(stack, GENERAL)  # a real worker, of vp.general.primary
    await other.connect()
    assignment = await assert_lane_still_served(stack, lane)
    forged = mission_pb2.Mission()
    forged.CopyFrom(assignment.mission)
    other.result(type(assignment)(mission=forged), summary="FORGED by thief")
    lane.result(assignment, summary="the real result")
    await lane.next("result_accepted")
    mission = (await stack.missions.GetMission(mc_pb.GetMissionRequest(
        mission_id=assignment.mission.envelope.mission_id))).mission
    assert mission.state == enums_pb2.MISSION_STATE_COMPLETED
    events = [r.event async for r in stack.missions.StreamMissionEvents(
        mc_pb.StreamMissionEventsRequest(mission_id=assignment.mission.envelope.mission_id))]
    assert not [e for e in events if "FORGED" in str(e.payload)]
    await other.close()


async def test_retire_is_operator_only_and_the_operator_can_revive(stack, lane):
    for caller in ("client", "worker-vp.coder.primary", "dispatcher"):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await registry_as(stack, caller).RetireSession(reg_pb.RetireSessionRequest(vp_id=CODER))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, caller
    await assert_lane_still_served(stack, lane)
    operator = registry_as(stack, "operator")
    retired = (await operator.RetireSession(reg_pb.RetireSessionRequest(vp_id=CODER, reason="test"))).session
    assert retired.status == enums_pb2.SESSION_STATUS_RETIRED
    revived = (await operator.ReviveSession(reg_pb.ReviveSessionRequest(vp_id=CODER, reason="back"))).session
    assert revived.status == enums_pb2.SESSION_STATUS_IDLE
    assert (revived.session_id, revived.lease_epoch) == (retired.session_id, retired.lease_epoch)
    comeback = ScriptedWorker(stack, CODER)
    await comeback.acquire()
    assert comeback.epoch == retired.lease_epoch + 1
    with pytest.raises(grpc.aio.AioRpcError) as not_retired:
        await operator.ReviveSession(reg_pb.ReviveSessionRequest(vp_id=CODER))
    assert not_retired.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_client_cannot_see_wait_on_or_cancel_another_clients_missions(db_url):
    store, tokens = mint_tokens({"alice": principal(Role.CLIENT, "alice"), "bob": principal(Role.CLIENT, "bob")})
    async with running_stack(db_url, tokens=store) as stack:
        alice = missions_as(stack, "client", tokens["alice"])
        bob = missions_as(stack, "client", tokens["bob"])
        mine = (await alice.DispatchMission(mc_pb.DispatchMissionRequest(envelope=mission_pb2.MissionEnvelope(
            vp_id=GENERAL, mission_type="task", objective="alice's")))).mission
        mission_id = mine.envelope.mission_id
        for attempt in (bob.CancelMission(mc_pb.CancelMissionRequest(mission_id=mission_id, reason="mine now")),
                        bob.GetMission(mc_pb.GetMissionRequest(mission_id=mission_id)),
                        bob.WaitMission(mc_pb.WaitMissionRequest(mission_id=mission_id))):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await attempt
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert reason_of(refused.value) == "NOT_YOUR_MISSION"
        assert not (await bob.ListMissions(mc_pb.ListMissionsRequest())).missions
        assert not [r async for r in bob.StreamMissionEvents(mc_pb.StreamMissionEventsRequest())
                    if r.event.mission_id == mission_id]
        # A forged owner label does not make it bob's either.
        envelope = mission_pb2.MissionEnvelope(vp_id=GENERAL, mission_type="task", objective="x",
                                               labels={"vp.dispatched_by": "client:alice"})
        with pytest.raises(grpc.aio.AioRpcError) as forged:
            await bob.DispatchMission(mc_pb.DispatchMissionRequest(envelope=envelope))
        assert forged.value.code() == grpc.StatusCode.PERMISSION_DENIED
        after = (await alice.GetMission(mc_pb.GetMissionRequest(mission_id=mission_id))).mission
        assert after.state == mine.state and after.state != enums_pb2.MISSION_STATE_CANCELLED
        assert [m.envelope.mission_id for m in (await alice.ListMissions(mc_pb.ListMissionsRequest())).missions] \
            == [mission_id]
