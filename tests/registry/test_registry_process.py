"""The vp-registry console script as a real process: health, reflection, SIGKILL
and restart, takeover of a SIGKILLed owner, SIGTERM, concurrent load."""

from __future__ import annotations

import asyncio
import sys

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.common.contracts.vp.v1 import session_registry_service_pb2 as pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as pb_grpc
from tests.registry.lease_holder import WORKSPACE_ROOT
from tests.support.grpc_errors import reason_of
from tests.support.processes import ServiceProcess, console_script
from tests.support.waiting import wait_until

VP = "vp.coder.primary"


def start_registry(db_url: str, *extra: str) -> ServiceProcess:
    return ServiceProcess([console_script("vp-registry"), "--listen", "127.0.0.1:0", "--db", db_url,
                           "--sweep-interval", "0.2", "--workspace-root", WORKSPACE_ROOT, "--insecure", *extra])


def stub_for(address: str):
    channel = grpc.insecure_channel(address)
    return channel, pb_grpc.SessionRegistryStub(channel)


def test_console_script_answers_health_and_reflection(sqlite_url):
    with start_registry(sqlite_url) as registry:
        channel, _ = stub_for(registry.address())
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(service="vp.v1.SessionRegistry"), timeout=5).status == \
            health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = list(reflect.ServerReflectionInfo(iter([
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="vp.v1.SessionRegistry")]), timeout=5))
        assert replies[0].file_descriptor_response.file_descriptor_proto
        channel.close()
        assert registry.terminate() == 0, registry.output


def test_sigkill_and_restart_resumes_same_session(sqlite_url):
    registry = start_registry(sqlite_url)
    channel, stub = stub_for(registry.address())
    first = stub.AcquireLease(pb.AcquireLeaseRequest(vp_id=VP, owner="w1", workspace_dir="/ws/coder"), timeout=5)
    channel.close()
    registry.kill()

    with start_registry(sqlite_url) as restarted:
        channel, stub = stub_for(restarted.address())
        got = stub.GetSession(pb.GetSessionRequest(vp_id=VP), timeout=5).session
        assert (got.session_id, got.workspace_dir, got.lease_epoch) == (
            first.session.session_id, "/ws/coder", 1)
        # The holder survived the registry crash: its term still renews.
        renewed = stub.RenewLease(pb.RenewLeaseRequest(vp_id=VP, owner="w1", lease_epoch=1), timeout=5)
        assert renewed.session.session_id == first.session.session_id
        channel.close()


def test_lease_of_sigkilled_owner_is_taken_over_and_zombie_refused(db_url):
    with start_registry(db_url, "--recovery-grace", "0.5") as registry:
        address = registry.address()
        holder = ServiceProcess([sys.executable, "-m", "tests.registry.lease_holder", address, VP, "old-owner", "1"])
        try:
            holder.wait_for_line(r"acquired epoch=1")
        finally:
            holder.kill()
        channel, stub = stub_for(address)
        request = pb.AcquireLeaseRequest(vp_id=VP, owner="new-owner", workspace_dir="/ignored")

        def try_takeover():
            try:
                return stub.AcquireLease(request, timeout=5)
            except grpc.RpcError as error:
                assert reason_of(error) == "LEASE_HELD"
                return None

        taken = wait_until(try_takeover, timeout=10, interval=0.1, what="lease expiry and takeover")
        assert taken.outcome == pb.ACQUIRE_OUTCOME_TAKEN_OVER
        assert taken.session.lease_epoch == 2 and taken.session.workspace_dir == f"{WORKSPACE_ROOT}/{VP}"
        with pytest.raises(grpc.RpcError) as zombie:
            stub.RenewLease(pb.RenewLeaseRequest(vp_id=VP, owner="old-owner", lease_epoch=1), timeout=5)
        assert zombie.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason_of(zombie.value) == "LEASE_SUPERSEDED"
        channel.close()


def test_fifty_concurrent_acquire_and_renew_on_one_sqlite_file(sqlite_url):
    with start_registry(sqlite_url) as registry:
        address = registry.address()

        async def load():
            async with grpc.aio.insecure_channel(address) as channel:
                stub = pb_grpc.SessionRegistryStub(channel)

                async def lane(i: int):
                    vp_id = f"vp.load{i % 10}.primary"
                    owner = f"w{i}"
                    try:
                        reply = await stub.AcquireLease(pb.AcquireLeaseRequest(
                            vp_id=vp_id, owner=owner, workspace_dir=f"/ws/{i}", ttl=Duration(seconds=60)), timeout=20)
                    except grpc.aio.AioRpcError as error:
                        # Five owners race for each lane: exactly one wins, the rest see LEASE_HELD.
                        return ("held" if reason_of(error) == "LEASE_HELD" else error.code().name), 0
                    renews = 0
                    for _ in range(5):
                        await stub.RenewLease(pb.RenewLeaseRequest(vp_id=vp_id, owner=owner,
                                                                   lease_epoch=reply.session.lease_epoch), timeout=20)
                        renews += 1
                    return "acquired", renews

                return await asyncio.gather(*(lane(i) for i in range(50)))

        results = asyncio.run(load())
        outcomes = [r[0] for r in results]
        assert outcomes.count("acquired") == 10, results
        assert outcomes.count("held") == 40, results
        assert sum(r[1] for r in results) == 50
        assert "database is locked" not in registry.output
