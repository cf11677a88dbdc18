"""Each malformed value from the attack report, sent to a real server: a clear
INVALID_ARGUMENT (or RESOURCE_EXHAUSTED) with ErrorInfo, never INTERNAL, and
nothing changes."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import mission_control_service_pb2_grpc as mc_grpc
from services.common.contracts.vp.v1 import mission_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as reg_grpc
from services.common.edge.checks import violations
from services.common.grpc_options import MAX_MESSAGE_BYTES
from tests.support.grpc_errors import details_of


def envelope(**fields):
    fields.setdefault("objective", "x")
    return mission_pb2.MissionEnvelope(vp_id="vp.coder.primary", mission_type="code", **fields)


BAD_ENVELOPES = {
    "nan_cost": (envelope(budget=mission_pb2.Budget(max_cost_usd=float("nan"))), "envelope.budget.max_cost_usd"),
    "inf_cost": (envelope(budget=mission_pb2.Budget(max_cost_usd=float("inf"))), "envelope.budget.max_cost_usd"),
    "nanos_negative": (envelope(deadline=Timestamp(seconds=2_000_000_000, nanos=-1)), "envelope.deadline"),
    "nanos_1e9": (envelope(deadline=Timestamp(seconds=2_000_000_000, nanos=10**9)), "envelope.deadline"),
    "year_10000": (envelope(deadline=Timestamp(seconds=253_402_300_800)), "envelope.deadline"),
    "duration_int64_max": (envelope(budget=mission_pb2.Budget(max_duration=Duration(seconds=2**63 - 1))),
                           "envelope.budget.max_duration"),
    "duration_sign_mix": (envelope(budget=mission_pb2.Budget(max_duration=Duration(seconds=5, nanos=-1))),
                          "envelope.budget.max_duration"),
    "nul_label": (envelope(labels={"k": "a\x00b"}), "envelope.labels['k']"),
}


@pytest.mark.parametrize("case", sorted(BAD_ENVELOPES))
def test_out_of_range_values_are_invalid_argument_and_change_nothing(processes, case):
    bad, field = BAD_ENVELOPES[case]
    assert [v.field for v in violations(mc_pb.DispatchMissionRequest(envelope=bad))] == [field]
    with processes.channel_security("client").channel(processes.dispatcher_address) as channel:
        stub = mc_grpc.MissionControlStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.DispatchMission(mc_pb.DispatchMissionRequest(envelope=bad), timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        found = details_of(refused.value)
        assert "ErrorInfo" in found
        assert [v.field for v in found["BadRequest"].field_violations] == [field]
        assert not stub.ListMissions(mc_pb.ListMissionsRequest(), timeout=10).missions


@pytest.mark.parametrize("ttl", [Duration(seconds=2**63 - 1), Duration(seconds=1, nanos=10**9),
                                 Duration(seconds=-1, nanos=1)])
def test_out_of_range_lease_ttl_is_invalid_argument(processes, ttl):
    with processes.channel_security("worker-vp.coder.primary").channel(processes.registry_address) as channel:
        stub = reg_grpc.SessionRegistryStub(channel)
        request = reg_pb.AcquireLeaseRequest(vp_id="vp.coder.primary", owner="w", ttl=ttl,
                                             workspace_dir=str(processes.root / "workspaces" / "vp.coder.primary"))
        with pytest.raises(grpc.RpcError) as refused:
            stub.AcquireLease(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "ErrorInfo" in details_of(refused.value)
    with processes.channel_security("operator").channel(processes.registry_address) as channel:
        assert not reg_grpc.SessionRegistryStub(channel).ListSessions(reg_pb.ListSessionsRequest(), timeout=10).sessions


def test_oversize_message_is_resource_exhausted(processes):
    huge = envelope(objective="x" * (MAX_MESSAGE_BYTES + 1))
    with processes.channel_security("client").channel(
            processes.dispatcher_address, [("grpc.max_send_message_length", 2 * MAX_MESSAGE_BYTES)]) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            mc_grpc.MissionControlStub(channel).DispatchMission(mc_pb.DispatchMissionRequest(envelope=huge),
                                                                timeout=20)
    # gRPC core refuses it before any Python code runs, so it carries no details.
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_host_file_read_starts_with_a_refused_workspace(processes):
    # Even the lane's own worker may not name a workspace outside the root.
    with processes.channel_security("worker-vp.fresh.lane").channel(processes.registry_address) as channel:
        stub = reg_grpc.SessionRegistryStub(channel)
        for workspace in ("/", "/etc", str(processes.root / "elsewhere")):
            with pytest.raises(grpc.RpcError) as refused:
                stub.AcquireLease(reg_pb.AcquireLeaseRequest(vp_id="vp.fresh.lane", owner="thief",
                                                             workspace_dir=workspace), timeout=10)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert details_of(refused.value)["BadRequest"].field_violations[0].field == "workspace_dir"
    with processes.channel_security("operator").channel(processes.registry_address) as channel:
        with pytest.raises(grpc.RpcError) as missing:
            reg_grpc.SessionRegistryStub(channel).GetSession(reg_pb.GetSessionRequest(vp_id="vp.fresh.lane"),
                                                             timeout=10)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
