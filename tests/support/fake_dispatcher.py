"""TEST DOUBLE of the dispatcher's WorkerChannel side (NOT the real dispatcher).

Used by the worker tests where the dispatcher is not the subject: a grpc.aio
server on 127.0.0.1:0 that plays the dispatcher's half of the Connect protocol.
It answers hello with welcome (heartbeat interval, optional revoked ids),
records every message the worker sends, acknowledges results and hand-backs
with result_accepted (switchable), renews the worker's lease through the REAL
registry on each heartbeat (like the dispatcher does), and lets a test push
assignments and cancels, drop a stream (UNAVAILABLE) or end it with
FAILED_PRECONDITION + ErrorInfo LEASE_SUPERSEDED. Each renewal is confirmed with
lease_renewed, as the dispatcher does, unless confirm_renewals is switched off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import grpc
from grpc_status import rpc_status

from services.common.contracts.vp.v1 import enums_pb2, mission_pb2, session_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as reg_grpc
from services.common.contracts.vp.v1 import worker_channel_service_pb2 as wc_pb
from services.common.contracts.vp.v1 import worker_channel_service_pb2_grpc as wc_grpc
from services.common.errors import LeaseSuperseded, error_info
from services.common.grpc_options import SERVER_OPTIONS


@dataclass
class _End:
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple = ()


@dataclass
class FakeStream:
    """One Connect stream, from the worker's hello on."""

    index: int
    hello: wc_pb.WorkerHello
    received: list[wc_pb.ConnectRequest] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    _out: asyncio.Queue = field(default_factory=asyncio.Queue)

    def of_kind(self, kind: str) -> list:
        return [getattr(r, kind) for r in self.received if r.WhichOneof("message") == kind]

    async def send(self, response: wc_pb.ConnectResponse) -> None:
        await self._out.put(response)

    async def assign(self, mission: mission_pb2.Mission, run_id: str = "") -> None:
        await self.send(wc_pb.ConnectResponse(assignment=wc_pb.MissionAssignment(
            mission=mission, run_id=run_id or f"run-{mission.envelope.mission_id}-{mission.attempt}")))

    async def cancel(self, mission_id: str, final_state: int = enums_pb2.MISSION_STATE_CANCELLED,
                     reason: str = "cancelled by test") -> None:
        await self.send(wc_pb.ConnectResponse(cancel=wc_pb.MissionCancel(
            mission_id=mission_id, reason=reason, final_state=final_state)))

    async def drop(self, details: str = "fake dispatcher dropped the stream") -> None:
        await self._out.put(_End(grpc.StatusCode.UNAVAILABLE, details))

    async def end_superseded(self, current_epoch: int | None = None) -> None:
        epoch = current_epoch if current_epoch is not None else self.hello.lease_epoch + 1
        status = rpc_status.to_status(LeaseSuperseded(
            f"lease term (epoch {self.hello.lease_epoch}) is superseded",
            metadata={"current_epoch": str(epoch), "current_owner": "someone-else"},
        ).to_rpc_status())
        await self._out.put(_End(status.code, status.details, tuple(status.trailing_metadata)))


def make_mission(mission_id: str, *, vp_id: str, objective: str = "write a haiku", attempt: int = 1,
                 target_path: str = "") -> mission_pb2.Mission:
    return mission_pb2.Mission(
        envelope=mission_pb2.MissionEnvelope(schema_version=1, mission_id=mission_id, vp_id=vp_id,
                                             objective=objective, target_path=target_path),
        state=enums_pb2.MISSION_STATE_RUNNING, attempt=attempt,
    )


class FakeDispatcherChannel(wc_grpc.WorkerChannelServicer):
    def __init__(self, *, registry_addr: str | None = None, lease_ttl: float = 30.0,
                 heartbeat_interval: float = 0.2, accept_results: bool = True) -> None:
        self.registry_addr = registry_addr
        self.lease_ttl = lease_ttl
        self.heartbeat_interval = heartbeat_interval
        self.accept_results = accept_results
        #: Answer each renewed heartbeat with lease_renewed (off: the ack is lost).
        self.confirm_renewals = True
        self.revoke: list[str] = []
        self.streams: list[FakeStream] = []
        self.renewals = 0
        self.address = ""
        self._server: grpc.aio.Server | None = None
        self._registry_channel: grpc.aio.Channel | None = None
        self._registry: reg_grpc.SessionRegistryStub | None = None

    # -- lifecycle ------------------------------------------------------------

    async def start(self, listen: str = "127.0.0.1:0") -> str:
        self._server = grpc.aio.server(options=SERVER_OPTIONS)
        wc_grpc.add_WorkerChannelServicer_to_server(self, self._server)
        port = self._server.add_insecure_port(listen)
        await self._server.start()
        self.address = f"127.0.0.1:{port}"
        if self.registry_addr:
            self._registry_channel = grpc.aio.insecure_channel(self.registry_addr)
            self._registry = reg_grpc.SessionRegistryStub(self._registry_channel)
        return self.address

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)
        if self._registry_channel is not None:
            await self._registry_channel.close()

    # -- what tests wait on ---------------------------------------------------------

    async def wait_until(self, condition: Callable[[], object], *, timeout: float = 10.0, what: str = ""):
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}; "
                                     f"streams: {[s.index for s in self.streams]}; received: {self.kinds()}")
            await asyncio.sleep(0.02)

    async def wait_stream(self, count: int, *, timeout: float = 10.0) -> FakeStream:
        """The count-th stream (1-based) once its hello arrived."""
        await self.wait_until(lambda: len(self.streams) >= count, timeout=timeout, what=f"stream #{count}")
        return self.streams[count - 1]

    def all_received(self, kind: str | None = None) -> list:
        out = []
        for stream in self.streams:
            for request in stream.received:
                if kind is None:
                    out.append(request)
                elif request.WhichOneof("message") == kind:
                    out.append(getattr(request, kind))
        return out

    def results_for(self, mission_id: str) -> list[wc_pb.MissionResult]:
        return [r for r in self.all_received("result") if r.mission_id == mission_id]

    def kinds(self) -> list[list[str]]:
        return [[r.WhichOneof("message") for r in s.received] for s in self.streams]

    # -- the protocol ---------------------------------------------------------------

    async def Connect(self, request_iterator, context):  # noqa: N802 - gRPC method name
        first = await context.read()
        if first is grpc.aio.EOF or first.WhichOneof("message") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first message must be hello")
        stream = FakeStream(index=len(self.streams), hello=first.hello)
        self.streams.append(stream)
        hello = first.hello
        welcome = wc_pb.DispatcherWelcome(
            session=session_pb2.VpSession(vp_id=hello.vp_id, session_id=hello.session_id,
                                          lease_epoch=hello.lease_epoch, lease_owner=hello.owner),
            revoked_mission_ids=[m for m in self.revoke if m in hello.running_mission_ids],
        )
        welcome.heartbeat_interval.FromTimedelta(timedelta(seconds=self.heartbeat_interval))
        await context.write(wc_pb.ConnectResponse(welcome=welcome))
        reader = asyncio.create_task(self._read(context, stream))
        try:
            while True:
                getter = asyncio.create_task(stream._out.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    return  # the worker half-closed or went away
                item = getter.result()
                if isinstance(item, _End):
                    await context.abort(item.code, item.details, item.trailing_metadata)
                await context.write(item)
        finally:
            reader.cancel()
            stream.ended.set()

    async def _read(self, context, stream: FakeStream) -> None:
        while True:
            request = await context.read()
            if request is grpc.aio.EOF:
                return
            stream.received.append(request)
            kind = request.WhichOneof("message")
            if kind == "result" and self.accept_results:
                result = request.result
                await stream._out.put(wc_pb.ConnectResponse(result_accepted=wc_pb.ResultAccepted(
                    mission_id=result.mission_id, attempt=result.attempt, state=result.outcome)))
            elif kind == "hand_back" and self.accept_results:
                back = request.hand_back
                await stream._out.put(wc_pb.ConnectResponse(result_accepted=wc_pb.ResultAccepted(
                    mission_id=back.mission_id, attempt=back.attempt, state=enums_pb2.MISSION_STATE_QUEUED)))
            elif kind == "heartbeat" and self._registry is not None:
                await self._renew(stream, request.heartbeat)

    async def _renew(self, stream: FakeStream, beat: wc_pb.WorkerHeartbeat) -> None:
        """What the dispatcher does on a heartbeat: renew the lease through the
        registry and confirm it (unless confirm_renewals is off: a lost ack)."""
        epoch = beat.lease_epoch
        request = reg_pb.RenewLeaseRequest(vp_id=stream.hello.vp_id, owner=stream.hello.owner, lease_epoch=epoch)
        request.ttl.FromTimedelta(timedelta(seconds=self.lease_ttl))
        try:
            reply = await self._registry.RenewLease(request, timeout=5)
            self.renewals += 1
            if self.confirm_renewals:
                session = reply.session
                ttl = session.lease_expires_at.ToDatetime() - session.last_heartbeat_at.ToDatetime()
                renewed = wc_pb.LeaseRenewed(lease_epoch=epoch, heartbeat_seq=beat.seq,
                                             lease_expires_at=session.lease_expires_at)
                renewed.granted_ttl.FromTimedelta(ttl)
                await stream._out.put(wc_pb.ConnectResponse(lease_renewed=renewed))
        except grpc.aio.AioRpcError as error:
            info = error_info(error)
            if info is not None and info.reason == "LEASE_SUPERSEDED":
                await stream.end_superseded()
