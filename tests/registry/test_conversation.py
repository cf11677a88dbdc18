"""A VP that remembers: the session's agent conversation is durable, fenced
state (SetConversation / ResetConversation), on SQLite and PostgreSQL."""

from __future__ import annotations

import grpc
import pytest

from services.common.contracts.vp.v1 import session_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as pb
from services.common.store import SqlStore
from services.registry.registry import SessionRegistry
from services.registry.settings import RegistrySettings
from tests.support.grpc_errors import reason_of

VP = "vp.coder.primary"


async def acquire(stub, owner):
    return (await stub.AcquireLease(pb.AcquireLeaseRequest(vp_id=VP, owner=owner, runtime_id="rt",
                                                           workspace_dir=f"/ws/{VP}"))).session


def conversation(cid: str, mission_id: str = "m-1") -> session_pb2.AgentConversation:
    return session_pb2.AgentConversation(agent="claude-code", conversation_id=cid, mission_id=mission_id)


async def test_the_current_term_sets_it_and_everyone_reads_it(registry_server):
    stub, clock = registry_server.stub, registry_server.clock
    session = await acquire(stub, "w1")
    assert not session.HasField("conversation")
    reply = await stub.SetConversation(pb.SetConversationRequest(vp_id=VP, owner="w1", lease_epoch=1,
                                                                 conversation=conversation("c-1")))
    assert reply.session.conversation.conversation_id == "c-1"
    assert reply.session.conversation.agent == "claude-code" and reply.session.conversation.mission_id == "m-1"
    assert reply.session.conversation.updated_at.ToDatetime() == clock.now().replace(tzinfo=None)
    got = (await stub.GetSession(pb.GetSessionRequest(vp_id=VP))).session
    assert got.conversation.conversation_id == "c-1"
    listed = (await stub.ListSessions(pb.ListSessionsRequest())).sessions
    assert listed[0].conversation.conversation_id == "c-1"


async def test_a_superseded_term_cannot_overwrite_it(registry_server):
    stub, clock = registry_server.stub, registry_server.clock
    await acquire(stub, "w1")
    await stub.SetConversation(pb.SetConversationRequest(vp_id=VP, owner="w1", lease_epoch=1,
                                                         conversation=conversation("c-1")))
    clock.advance(3600)  # w1's lease expires; w2 takes over with epoch 2
    taken = await acquire(stub, "w2")
    assert taken.lease_epoch == 2 and taken.conversation.conversation_id == "c-1"  # kept across terms
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await stub.SetConversation(pb.SetConversationRequest(vp_id=VP, owner="w1", lease_epoch=1,
                                                             conversation=conversation("c-zombie")))
    assert stale.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reason_of(stale.value) == "LEASE_SUPERSEDED"
    got = (await stub.GetSession(pb.GetSessionRequest(vp_id=VP))).session
    assert got.conversation.conversation_id == "c-1"


async def test_bad_input_is_refused_and_changes_nothing(registry_server):
    stub = registry_server.stub
    await acquire(stub, "w1")
    for bad in (session_pb2.AgentConversation(agent="", conversation_id="c"),
                session_pb2.AgentConversation(agent="codex", conversation_id=""),
                session_pb2.AgentConversation(agent="codex", conversation_id="x" * 257)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SetConversation(pb.SetConversationRequest(vp_id=VP, owner="w1", lease_epoch=1,
                                                                 conversation=bad))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.ResetConversation(pb.ResetConversationRequest(vp_id="vp.nobody.primary"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert not (await stub.GetSession(pb.GetSessionRequest(vp_id=VP))).session.HasField("conversation")


async def test_an_operator_reset_forgets_it_once_with_an_event(registry_server):
    stub, store = registry_server.stub, registry_server.store
    await acquire(stub, "w1")
    await stub.SetConversation(pb.SetConversationRequest(vp_id=VP, owner="w1", lease_epoch=1,
                                                         conversation=conversation("c-1")))
    reset = await stub.ResetConversation(pb.ResetConversationRequest(vp_id=VP, reason="start over"))
    assert not reset.session.HasField("conversation")
    again = await stub.ResetConversation(pb.ResetConversationRequest(vp_id=VP))
    assert not again.session.HasField("conversation")
    events = await store.aread(lambda tx: tx.events_after(0, event_types=["vp.session.conversation_reset"]))
    resets = [e for e in events if e.event_type == "vp.session.conversation_reset"]
    assert len(resets) == 1
    assert resets[0].payload == {"session_id": reset.session.session_id, "reason": "start over",
                                 "previous_agent": "claude-code", "previous_conversation_id": "c-1"}


async def test_it_survives_a_registry_restart(registry_server, db_url):
    stub = registry_server.stub
    await acquire(stub, "w1")
    await stub.SetConversation(pb.SetConversationRequest(vp_id=VP, owner="w1", lease_epoch=1,
                                                         conversation=conversation("c-durable")))
    store = SqlStore(db_url)
    try:
        fresh = SessionRegistry(store, registry_server.clock, RegistrySettings())
        record = await fresh.get(VP)
    finally:
        store.close()
    assert (record.conversation_agent, record.conversation_id) == ("claude-code", "c-durable")
