"""The registry over real gRPC on an ephemeral port, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.common.contracts.vp.v1 import enums_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as pb
from tests.support.grpc_errors import details_of, reason_of

VP = "vp.coder.primary"


async def acquire(stub, owner, vp_id=VP, ttl=None):
    request = pb.AcquireLeaseRequest(vp_id=vp_id, owner=owner, runtime_id="rt", workspace_dir=f"/ws/{vp_id}")
    if ttl is not None:
        request.ttl.CopyFrom(Duration(seconds=ttl))
    return await stub.AcquireLease(request)


async def test_acquire_renew_expire_takeover_and_fencing(registry_server):
    stub, clock = registry_server.stub, registry_server.clock
    first = await acquire(stub, "w1")
    assert first.outcome == pb.ACQUIRE_OUTCOME_CREATED
    assert first.session.lease_epoch == 1
    assert first.session.status == enums_pb2.SESSION_STATUS_ACTIVE

    clock.advance(20)
    renewed = await stub.RenewLease(pb.RenewLeaseRequest(vp_id=VP, owner="w1", lease_epoch=1))
    assert renewed.session.lease_expires_at.ToDatetime() > first.session.lease_expires_at.ToDatetime()

    with pytest.raises(grpc.aio.AioRpcError) as held:
        await acquire(stub, "w2")
    assert held.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = details_of(held.value)["ErrorInfo"]
    assert info.reason == "LEASE_HELD" and info.domain == "vp.v1" and info.metadata["holder"] == "w1"

    clock.advance(31)
    stale = await stub.GetSession(pb.GetSessionRequest(vp_id=VP))
    assert stale.session.stale and stale.session.effective_status == enums_pb2.SESSION_STATUS_DEGRADED
    assert stale.session.stale_reason == enums_pb2.STALE_REASON_LEASE_EXPIRED

    taken = await acquire(stub, "w2")
    assert taken.outcome == pb.ACQUIRE_OUTCOME_TAKEN_OVER
    assert taken.session.lease_epoch == 2
    assert taken.session.session_id == first.session.session_id
    assert taken.session.workspace_dir == first.session.workspace_dir

    with pytest.raises(grpc.aio.AioRpcError) as superseded:
        await stub.RenewLease(pb.RenewLeaseRequest(vp_id=VP, owner="w1", lease_epoch=1))
    assert superseded.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(superseded.value) == "LEASE_SUPERSEDED"
    # The refused renew changed nothing.
    after = await stub.GetSession(pb.GetSessionRequest(vp_id=VP))
    assert (after.session.lease_owner, after.session.lease_epoch) == ("w2", 2)


async def test_release_and_retire(registry_server):
    stub = registry_server.stub
    await acquire(stub, "w1")
    released = await stub.ReleaseLease(pb.ReleaseLeaseRequest(vp_id=VP, owner="w1", lease_epoch=1))
    assert released.session.status == enums_pb2.SESSION_STATUS_IDLE and released.session.lease_owner == ""
    again = await acquire(stub, "w2")
    assert again.outcome == pb.ACQUIRE_OUTCOME_RESUMED and again.session.lease_epoch == 2
    retired = await stub.RetireSession(pb.RetireSessionRequest(vp_id=VP, reason="moved"))
    assert retired.session.status == enums_pb2.SESSION_STATUS_RETIRED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await acquire(stub, "w3")
    assert reason_of(refused.value) == "SESSION_RETIRED"


async def test_invalid_input_is_refused_with_bad_request_and_changes_nothing(registry_server):
    stub = registry_server.stub
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.AcquireLease(pb.AcquireLeaseRequest(vp_id="Not An Id", owner="", workspace_dir="/ws"))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in details_of(bad.value)["BadRequest"].field_violations}
    assert fields == {"vp_id", "owner"}
    with pytest.raises(grpc.aio.AioRpcError) as ttl:
        await acquire(stub, "w1", ttl=86400)
    assert ttl.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = await stub.ListSessions(pb.ListSessionsRequest())
    assert list(listed.sessions) == []
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetSession(pb.GetSessionRequest(vp_id="vp.none"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND and reason_of(missing.value) == "SESSION_NOT_FOUND"


async def test_list_filters_and_pages(registry_server):
    stub, clock = registry_server.stub, registry_server.clock
    for i in range(5):
        await acquire(stub, f"w{i}", vp_id=f"vp.lane{i}.primary", ttl=10 if i % 2 else 60)
    clock.advance(15)
    stale = await stub.ListSessions(pb.ListSessionsRequest(stale=True))
    assert sorted(s.vp_id for s in stale.sessions) == ["vp.lane1.primary", "vp.lane3.primary"]
    fresh = await stub.ListSessions(pb.ListSessionsRequest(
        effective_statuses=[enums_pb2.SESSION_STATUS_ACTIVE]))
    assert len(fresh.sessions) == 3
    seen, token = [], ""
    while True:
        page = await stub.ListSessions(pb.ListSessionsRequest(page_size=2, page_token=token))
        seen += [s.vp_id for s in page.sessions]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen) and len(seen) == 5
    with pytest.raises(grpc.aio.AioRpcError) as bad_token:
        await stub.ListSessions(pb.ListSessionsRequest(page_token="%%%"))
    assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_sweeper_degrades_then_recovers_and_acquire_promotes(registry_server):
    stub, clock, registry = registry_server.stub, registry_server.clock, registry_server.registry
    await acquire(stub, "w1")
    assert (await registry.sweep_once()).degraded == []
    clock.advance(31)
    assert (await registry.sweep_once()).degraded == [VP]
    got = await stub.GetSession(pb.GetSessionRequest(vp_id=VP))
    assert got.session.status == enums_pb2.SESSION_STATUS_DEGRADED
    clock.advance(30)
    assert (await registry.sweep_once()).recovering == []
    clock.advance(31)
    assert (await registry.sweep_once()).recovering == [VP]
    got = await stub.GetSession(pb.GetSessionRequest(vp_id=VP))
    assert got.session.status == enums_pb2.SESSION_STATUS_RECOVERING
    promoted = await acquire(stub, "w2")
    assert promoted.session.status == enums_pb2.SESSION_STATUS_ACTIVE and promoted.session.lease_epoch == 2
    events = await registry.store.aread(lambda tx: tx.events_after(0, vp_id=VP))
    assert [e.event_type for e in events] == [
        "vp.session.created", "vp.session.degraded", "vp.session.recovering", "vp.session.resumed"]
    assert all(e.emitted_at.tzinfo is not None for e in events)


async def test_health_and_reflection(registry_server):
    health = health_pb2_grpc.HealthStub(registry_server.channel)
    for service in ("", "vp.v1.SessionRegistry"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(registry_server.channel)
    call = reflect.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    reply = await call.read()
    await call.done_writing()
    names = {s.name for s in reply.list_services_response.service}
    assert {"vp.v1.SessionRegistry", "grpc.health.v1.Health"} <= names


async def test_timestamps_on_the_wire_are_utc(registry_server):
    reply = await acquire(registry_server.stub, "w1")
    expires = reply.session.lease_expires_at.ToDatetime(tzinfo=__import__("datetime").timezone.utc)
    assert expires - registry_server.clock.now() == timedelta(seconds=30)
