"""In-process registry + dispatcher on real gRPC ports and a real database, for
integration tests that need to reach inside (clock, settings, supervisor)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from services.common.clock import Clock, FakeClock, SystemClock
from services.common.contracts.vp.v1 import mission_control_service_pb2_grpc as mc_grpc
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as reg_grpc
from services.common.grpc_server import RunningServer, start_server
from services.common.store import SqlStore
from services.dispatcher.core import DispatcherCore
from services.dispatcher.registry_client import RegistryClient
from services.dispatcher.registry_memory import InMemoryRegistry
from services.common.auth.tokens import TokenStore
from services.common.security import INSECURE_SERVER, ChannelSecurity
from services.dispatcher.mission_owner import owner_lookup
from services.dispatcher.missions_api import MissionsApi
from services.dispatcher.servicers import add_to_server as add_dispatcher
from services.dispatcher.settings import DispatcherSettings
from services.dispatcher.supervision import Supervisor
from services.dispatcher.worker_protocol import WorkerProtocol
from services.registry.registry import SessionRegistry
from services.registry.servicer import SessionRegistryServicer
from services.registry.servicer import add_to_server as add_registry
from services.registry.settings import RegistrySettings
from tests.support.security import Pki, channel_for, shared_pki


@dataclass
class Stack:
    registry_address: str
    dispatcher_address: str
    core: DispatcherCore
    supervisor: Supervisor
    store: SqlStore
    missions: mc_grpc.MissionControlStub
    sessions: reg_grpc.SessionRegistryStub | None
    clock: Clock = field(default_factory=SystemClock)
    # Set by fake_clock_stack: workers acquire leases here instead of over gRPC.
    memory_registry: InMemoryRegistry | None = None
    # The credentials of a secure stack; None: an explicitly insecure one.
    pki: Pki | None = None

    _operator_channel: object = field(default=None, repr=False)

    @property
    def operator(self) -> mc_grpc.MissionControlStub:
        """MissionControl as the operator: routing flags, every caller's missions."""
        if self._operator_channel is None:
            self._operator_channel = self.channel_security("operator").aio_channel(self.dispatcher_address)
        return mc_grpc.MissionControlStub(self._operator_channel)

    async def close_operator(self) -> None:
        if self._operator_channel is not None:
            await self._operator_channel.close()

    def channel_security(self, identity: str) -> ChannelSecurity:
        """Credentials of identity ("client", "operator", "worker-<vp_id>"...) for this stack."""
        return channel_for(self.pki, identity)

    def worker_args(self, vp_id: str) -> list[str]:
        """vp-worker flags for a worker process of vp_id against this stack."""
        return self.pki.channel_args(f"worker-{vp_id}") if self.pki else ["--insecure"]

    def data_dir_env(self) -> dict[str, str]:
        """Environment for vpctl to find this stack's credentials as a data dir: each command
        then speaks as its own identity (client, or the operator for operator commands)."""
        return {"VP_DATA_DIR": str(self.pki.credentials.root)} if self.pki else {"VP_INSECURE": "1"}

    def client_env(self, identity: str = "client") -> dict[str, str]:
        """Environment for a client process (vpctl, vp-mcp) speaking as identity."""
        return self.pki.client_env(identity) if self.pki else {"VP_INSECURE": "1"}


@asynccontextmanager
async def running_stack(db_url: str, settings: DispatcherSettings | None = None, *,
                        lease_ttl: timedelta = timedelta(seconds=30), registry_db_url: str | None = None,
                        secure: bool = True, tokens: TokenStore | None = None, require_client_cert: bool = True):
    """Secure by default (TLS, mTLS identities, tokens): stack.missions speaks as a
    client, stack.sessions as the operator. secure=False: plaintext, no authentication.
    tokens replaces the bearer-token store; require_client_cert=False lets callers
    without a certificate connect (tokens only). ``registry_db_url``: give the
    registry its own database (as ``vpctl up`` does)."""
    clock = SystemClock()
    store = SqlStore(db_url)
    pki = shared_pki() if secure else None
    security = pki.server_security(tokens, require_client_cert=require_client_cert) if pki else INSECURE_SERVER
    registry_store = SqlStore(registry_db_url) if registry_db_url else store
    registry = SessionRegistry(registry_store, clock, RegistrySettings(lease_ttl=lease_ttl))
    registry_server: RunningServer = await start_server(
        "127.0.0.1:0", lambda s: add_registry(SessionRegistryServicer(registry), s), gate=security.gate(),
        credentials=security.credentials())
    settings = settings or DispatcherSettings(heartbeat_interval=timedelta(milliseconds=200),
                                              health_cache_ttl=timedelta(0))
    registry_client = RegistryClient(registry_server.address, settings.health_cache_ttl.total_seconds(),
                                     channel_for(pki, "dispatcher"))
    core = DispatcherCore(store, clock, settings, registry_client)
    dispatcher_server = await start_server(
        "127.0.0.1:0", lambda s: add_dispatcher(MissionsApi(core), WorkerProtocol(core), s),
        gate=security.gate(owner_lookup(store)), credentials=security.credentials())
    channel = channel_for(pki, "client").aio_channel(dispatcher_server.address)
    registry_channel = channel_for(pki, "operator").aio_channel(registry_server.address)
    stack = Stack(registry_server.address, dispatcher_server.address, core, Supervisor(core), store,
                  mc_grpc.MissionControlStub(channel), reg_grpc.SessionRegistryStub(registry_channel), clock,
                  pki=pki)
    try:
        yield stack
    finally:
        await stack.close_operator()
        await channel.close()
        await registry_channel.close()
        await dispatcher_server.stop(0)
        await core.close()
        await registry_client.close()
        await registry_server.stop(0)
        store.close()
        if registry_store is not store:
            registry_store.close()


@asynccontextmanager
async def fake_clock_stack(db_url: str, settings: DispatcherSettings | None = None, *,
                           clock: FakeClock | None = None, registry: InMemoryRegistry | None = None,
                           secure: bool = True):
    """The dispatcher on a real gRPC port and a real database, with the in-memory
    registry and a FakeClock: lease expiry and deadlines happen when the test
    moves the clock. Pass the clock and registry of an earlier stack to restart
    the dispatcher over the same world."""
    clock = clock or FakeClock()
    registry = registry or InMemoryRegistry(clock, RegistrySettings(lease_ttl=timedelta(seconds=30)))
    store = SqlStore(db_url)
    settings = settings or DispatcherSettings(heartbeat_interval=timedelta(seconds=1), health_cache_ttl=timedelta(0))
    core = DispatcherCore(store, clock, settings, registry)
    pki = shared_pki() if secure else None
    security = pki.server_security() if pki else INSECURE_SERVER
    server = await start_server("127.0.0.1:0", lambda s: add_dispatcher(MissionsApi(core), WorkerProtocol(core), s),
                                gate=security.gate(owner_lookup(store)), credentials=security.credentials())
    channel = channel_for(pki, "client").aio_channel(server.address)
    stack = Stack("", server.address, core, Supervisor(core), store, mc_grpc.MissionControlStub(channel), None,
                  clock, registry, pki=pki)
    try:
        yield stack
    finally:
        await stack.close_operator()
        await channel.close()
        await server.stop(0)
        await core.close()
        store.close()
