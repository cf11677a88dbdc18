"""Principals, tokens and a secure stack for the authorization tests."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc

from services.common.auth.principals import Role
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import mission_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as reg_grpc
from tests.support.hostile import Outcome, call
from tests.support.rpc_catalog import Rpc
from tests.support.security import mint_tokens, principal
from tests.support.stack import running_stack

LANE_A = "vp.coder.primary"
LANE_B = "vp.general.primary"
PRINCIPALS = {
    "alice": principal(Role.CLIENT, "alice"),
    "bob": principal(Role.CLIENT, "bob"),
    "coder": principal(Role.WORKER, "coder", LANE_A),
    "general": principal(Role.WORKER, "general", LANE_B),
    "ops": principal(Role.OPERATOR, "ops"),
    "dispatcher": principal(Role.SERVICE, "dispatcher"),
}


@dataclass
class AuthStack:
    stack: object
    tokens: dict[str, str]

    def security(self, who: str | None):
        return self.stack.pki.token_only(self.tokens[who] if who else None)

    def address(self, rpc: Rpc) -> str:
        return self.stack.registry_address if rpc.on_registry else self.stack.dispatcher_address

    async def call(self, rpc: Rpc, who: str | None, request, *, timeout: float = 5.0) -> Outcome:
        def blocking() -> Outcome:
            with self.security(who).channel(self.address(rpc)) as channel:
                return call(channel, rpc, request.SerializeToString(), timeout=timeout)

        return await asyncio.to_thread(blocking)

    async def dispatch(self, who: str, vp_id: str = LANE_A) -> str:
        """A mission dispatched by who; its id."""
        envelope = mission_pb2.MissionEnvelope(vp_id=vp_id, mission_type="code", objective="matrix")

        def blocking() -> str:
            with self.security(who).channel(self.stack.dispatcher_address) as channel:
                from services.common.contracts.vp.v1 import mission_control_service_pb2_grpc as mc_grpc

                reply = mc_grpc.MissionControlStub(channel).DispatchMission(
                    mc_pb.DispatchMissionRequest(envelope=envelope), timeout=10)
                return reply.mission.envelope.mission_id

        return await asyncio.to_thread(blocking)

    async def acquire(self, who: str, vp_id: str, owner: str = "w-1") -> reg_pb.AcquireLeaseResponse:
        def blocking():
            with self.security(who).channel(self.stack.registry_address) as channel:
                return reg_grpc.SessionRegistryStub(channel).AcquireLease(reg_pb.AcquireLeaseRequest(
                    vp_id=vp_id, owner=owner, workspace_dir=f"/ws/{vp_id}"), timeout=10)

        return await asyncio.to_thread(blocking)


@asynccontextmanager
async def auth_stack(db_url: str):
    """Real servers on real TLS; callers present bearer tokens (no client certificates)."""
    store, tokens = mint_tokens(PRINCIPALS)
    async with running_stack(db_url, tokens=store, require_client_cert=False) as stack:
        yield AuthStack(stack, tokens)


def denied(outcome: Outcome, code: grpc.StatusCode, reason: str | None = None) -> str | None:
    """Why outcome is not the expected denial (None: it is)."""
    if outcome.code != code:
        return f"expected {code.name}, got {outcome.code.name}: {outcome.details}"
    if outcome.error_info is None:
        return f"{code.name} without ErrorInfo"
    if reason and outcome.error_info.reason != reason:
        return f"expected reason {reason}, got {outcome.error_info.reason}"
    return None
