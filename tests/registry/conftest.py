from __future__ import annotations

from types import SimpleNamespace

import grpc
import pytest

from services.common.clock import FakeClock
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as pb_grpc
from services.common.grpc_server import start_server
from services.common.store import SqlStore
from services.registry.registry import SessionRegistry
from services.registry.servicer import SessionRegistryServicer, add_to_server
from services.registry.settings import RegistrySettings


@pytest.fixture
async def registry_server(db_url):
    """A real registry gRPC server on an ephemeral port, on a fake clock."""
    clock = FakeClock()
    store = SqlStore(db_url)
    registry = SessionRegistry(store, clock, RegistrySettings())
    running = await start_server("127.0.0.1:0", lambda s: add_to_server(SessionRegistryServicer(registry), s))
    channel = grpc.aio.insecure_channel(running.address)
    yield SimpleNamespace(stub=pb_grpc.SessionRegistryStub(channel), clock=clock, registry=registry,
                          address=running.address, store=store, channel=channel)
    await channel.close()
    await running.stop(0)
    store.close()
