"""A worker peer driven step by step by a test: it speaks WorkerChannel.Connect
exactly as told, so tests can send stale epochs, drop streams or stay silent."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import grpc
from google.protobuf.duration_pb2 import Duration

from services.common.contracts.vp.v1 import enums_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as reg_grpc
from services.common.contracts.vp.v1 import worker_channel_service_pb2 as wc_pb
from services.common.contracts.vp.v1 import worker_channel_service_pb2_grpc as wc_grpc


class ScriptedWorker:
    def __init__(self, stack, vp_id: str, *, capacity: int = 4, ttl_s: int = 30, owner: str | None = None,
                 workspace_dir: str = "", identity: str | None = None):
        self.stack = stack
        self.vp_id = vp_id
        self.identity = identity
        self.capacity = capacity
        self.ttl_s = ttl_s
        self.owner = owner or f"scripted-{uuid.uuid4().hex[:8]}"
        self.workspace_dir = workspace_dir or f"/tmp/ws/{vp_id}"
        self.epoch = 0
        self.session_id = ""
        self.inbox: asyncio.Queue = asyncio.Queue()
        self._outbox: asyncio.Queue = asyncio.Queue()
        self._channel = None
        self._call = None
        self._reader = None
        self.ended: grpc.aio.AioRpcError | None = None

    def _security(self):
        """The lane's worker credentials on a secure stack (identity overrides them)."""
        return self.stack.channel_security(self.identity or f"worker-{self.vp_id}")

    async def acquire(self) -> None:
        if self.stack.memory_registry is not None:
            session = await self.stack.memory_registry.acquire(
                self.vp_id, self.owner, workspace_dir=self.workspace_dir, ttl=timedelta(seconds=self.ttl_s))
            self.epoch, self.session_id = session.lease_epoch, session.session_id
            return
        async with self._security().aio_channel(self.stack.registry_address) as channel:
            reply = await reg_grpc.SessionRegistryStub(channel).AcquireLease(reg_pb.AcquireLeaseRequest(
                vp_id=self.vp_id, owner=self.owner, workspace_dir=self.workspace_dir,
                ttl=Duration(seconds=self.ttl_s)), timeout=5)
        self.epoch, self.session_id = reply.session.lease_epoch, reply.session.session_id

    async def acquire_when_free(self, timeout: float = 10.0) -> None:
        """Acquire as soon as the previous holder's lease has expired (takeover)."""
        from tests.support.waiting import async_wait_until

        async def took_over():
            try:
                await self.acquire()
                return True
            except grpc.aio.AioRpcError:
                return False

        await async_wait_until(took_over, timeout=timeout, interval=0.1, what=f"takeover of {self.vp_id}")

    async def connect(self, *, epoch: int | None = None, running: list[str] = ()) -> wc_pb.DispatcherWelcome:
        if not self.epoch:
            await self.acquire()
        self._channel = self._security().aio_channel(self.stack.dispatcher_address)
        self._outbox = asyncio.Queue()
        self.inbox = asyncio.Queue()
        self.ended = None

        async def requests():
            while True:
                item = await self._outbox.get()
                if item is None:
                    return
                yield item

        self._call = wc_grpc.WorkerChannelStub(self._channel).Connect(requests())
        self.send(hello=wc_pb.WorkerHello(vp_id=self.vp_id, owner=self.owner, session_id=self.session_id,
                                          lease_epoch=self.epoch if epoch is None else epoch,
                                          capacity=self.capacity, running_mission_ids=list(running)))
        self._reader = asyncio.create_task(self._read())
        first = await self.next(timeout=5)
        assert first.WhichOneof("message") == "welcome", first
        return first.welcome

    async def _read(self):
        try:
            async for message in self._call:
                await self.inbox.put(message)
        except grpc.aio.AioRpcError as error:
            self.ended = error
        await self.inbox.put(None)

    def send(self, **message) -> None:
        self._outbox.put_nowait(wc_pb.ConnectRequest(**message))

    async def next(self, kind: str | None = None, timeout: float = 10.0):
        while True:
            message = await asyncio.wait_for(self.inbox.get(), timeout)
            if message is None:
                if self.ended is not None:
                    raise self.ended
                raise EOFError("stream closed")
            if kind is None or message.WhichOneof("message") == kind:
                return message

    async def assignment(self, timeout: float = 10.0) -> wc_pb.MissionAssignment:
        return (await self.next("assignment", timeout)).assignment

    def heartbeat(self, running: list[str] = (), seq: int = 0) -> None:
        self.send(heartbeat=wc_pb.WorkerHeartbeat(lease_epoch=self.epoch, running_mission_ids=list(running),
                                                  seq=seq))

    def hand_back(self, assignment, reason: str = "DRAINING") -> None:
        self.send(hand_back=wc_pb.MissionHandBack(
            mission_id=assignment.mission.envelope.mission_id, attempt=assignment.mission.attempt,
            lease_epoch=self.epoch, reason=reason))

    def progress(self, assignment, seq: int, message: str, epoch: int | None = None) -> None:
        self.send(progress=wc_pb.MissionProgress(
            mission_id=assignment.mission.envelope.mission_id, attempt=assignment.mission.attempt,
            lease_epoch=self.epoch if epoch is None else epoch, seq=seq, message=message))

    def result(self, assignment, outcome=enums_pb2.MISSION_STATE_COMPLETED, *, epoch: int | None = None,
               result_ref: str = "", summary: str = "done", error_code: str = "") -> None:
        from services.common.contracts.vp.v1 import mission_pb2

        self.send(result=wc_pb.MissionResult(
            mission_id=assignment.mission.envelope.mission_id, attempt=assignment.mission.attempt,
            lease_epoch=self.epoch if epoch is None else epoch, outcome=outcome, result_ref=result_ref,
            summary=summary, error=mission_pb2.MissionError(code=error_code) if error_code else None))

    async def drop(self) -> None:
        """Close the stream from the worker side (a crash, as far as the dispatcher can tell)."""
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._channel is not None:
            await self._channel.close()

    async def close(self) -> None:
        await self.drop()
