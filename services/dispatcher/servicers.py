"""vp.v1.MissionControl and vp.v1.WorkerChannel over gRPC: translation only."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from grpc_status import rpc_status

from opentelemetry.trace import SpanKind

from services.common.contracts.vp.v1 import enums_pb2
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import mission_control_service_pb2_grpc as mc_grpc
from services.common.contracts.vp.v1 import worker_channel_service_pb2 as wc_pb
from services.common.contracts.vp.v1 import worker_channel_service_pb2_grpc as wc_grpc
from services.common.errors import FieldViolation, InvalidArgument, VpError, internal_status
from services.common.grpc_errors import translate_errors
from services.common.telemetry import tracing
from services.common.timeutil import from_duration
from services.dispatcher import artifacts, flags_proto
from services.dispatcher.mission_proto import PROTO_TO_STATE, event_to_proto, mission_to_proto
from services.dispatcher.missions_api import MissionsApi
from services.dispatcher.worker_protocol import WorkerProtocol

log = logging.getLogger(__name__)
MISSION_CONTROL = mc_pb.DESCRIPTOR.services_by_name["MissionControl"].full_name
WORKER_CHANNEL = wc_pb.DESCRIPTOR.services_by_name["WorkerChannel"].full_name


@translate_errors
class MissionControlServicer(mc_grpc.MissionControlServicer):
    def __init__(self, api: MissionsApi) -> None:
        self.api = api

    async def DispatchMission(self, request, context):
        with tracing.span("vp.dispatch", metadata=context.invocation_metadata(), kind=SpanKind.SERVER,
                          attributes={"vp_id": request.envelope.vp_id, "mission_id": request.envelope.mission_id}):
            result = await self.api.dispatch(request.envelope)
        mission = mission_to_proto(result.mission)
        return mc_pb.DispatchMissionResponse(mission=mission, route=mission.route, deduplicated=result.deduplicated)

    async def GetMission(self, request, context):
        return mc_pb.GetMissionResponse(mission=mission_to_proto(await self.api.get(request.mission_id)))

    async def ListMissions(self, request, context):
        states = []
        for value in request.states:
            if value not in PROTO_TO_STATE:
                raise InvalidArgument(FieldViolation("states", f"unknown or unspecified MissionState {value}"))
            states.append(PROTO_TO_STATE[value])
        if request.order not in enums_pb2.ListOrder.values():
            raise InvalidArgument(FieldViolation("order", f"unknown ListOrder {request.order}"))
        records, token = await self.api.list(vp_id=request.vp_id, states=states,
                                             source_session_id=request.source_session_id,
                                             page_size=request.page_size, page_token=request.page_token,
                                             newest_first=request.order == enums_pb2.LIST_ORDER_NEWEST_FIRST)
        return mc_pb.ListMissionsResponse(missions=[mission_to_proto(r) for r in records], next_page_token=token)

    async def WaitMission(self, request, context):
        timeout = from_duration(request.timeout, default=timedelta(0))
        if timeout < timedelta(0):
            raise InvalidArgument(FieldViolation("timeout", "must not be negative"))
        record, timed_out = await self.api.wait(request.mission_id, timeout)
        return mc_pb.WaitMissionResponse(mission=mission_to_proto(record), timed_out=timed_out)

    async def CancelMission(self, request, context):
        record = await self.api.cancel(request.mission_id, request.reason)
        return mc_pb.CancelMissionResponse(mission=mission_to_proto(record))

    async def ResumeMission(self, request, context):
        record = await self.api.resume(request.mission_id, request.answer,
                                       request.budget if request.HasField("budget") else None)
        return mc_pb.ResumeMissionResponse(mission=mission_to_proto(record))

    async def StreamMissionEvents(self, request, context):
        async for record in self.api.events(
                after_event_id=request.after_event_id, consumer=request.consumer, mission_id=request.mission_id,
                vp_id=request.vp_id, event_types=list(request.event_types), follow=request.follow):
            yield mc_pb.StreamMissionEventsResponse(event=event_to_proto(record))

    async def CommitEventCursor(self, request, context):
        event_id = await self.api.commit_cursor(request.consumer, request.event_id)
        return mc_pb.CommitEventCursorResponse(consumer=request.consumer, event_id=event_id)

    async def ReadResultArtifacts(self, request, context):
        record = await self.api.get(request.mission_id)
        root = artifacts.artifact_root(record.result_ref, record.mission_id)
        # File reads happen off the event loop, one chunk at a time.
        iterator = await asyncio.to_thread(artifacts.chunks, root, request.path, request.chunk_size)
        while True:
            chunk = await asyncio.to_thread(next, iterator, None)
            if chunk is None:
                return
            yield mc_pb.ReadResultArtifactsResponse(path=chunk.path, offset=chunk.offset, data=chunk.data,
                                                    size=chunk.size, eof=chunk.eof)

    async def GetRoutingFlags(self, request, context):
        core = self.api.core
        if request.vp_id and request.vp_id not in core.settings.lanes:
            raise InvalidArgument(FieldViolation("vp_id", f"not a configured lane; lanes: "
                                                          f"{', '.join(sorted(core.settings.lanes))}"),
                                  reason="UNKNOWN_VP")
        return flags_proto.snapshot_to_proto(await core.flags.current(), only=request.vp_id)

    async def SetRoutingFlags(self, request, context):
        snapshot, event_id = await self.api.core.flags.change(flags_proto.change_from_proto(request))
        log.info("routing flags changed (%s): %s", request.vp_id or "kill switch", request.reason,
                 extra={"vp_id": request.vp_id})
        self.api.core.notifier.events_appended()
        return mc_pb.SetRoutingFlagsResponse(flags=flags_proto.snapshot_to_proto(snapshot), audit_event_id=event_id)


class WorkerChannelServicer(wc_grpc.WorkerChannelServicer):
    """One bidirectional stream per worker. Incoming messages are read by a
    reader task: heartbeats are handled on their own, everything else in order;
    outgoing ones flow through the connection's outbox, which also carries the
    status that ends the stream."""

    def __init__(self, protocol: WorkerProtocol) -> None:
        self.protocol = protocol

    async def Connect(self, request_iterator, context):
        try:
            first = await anext(request_iterator)
        except StopAsyncIteration:
            return
        if first.WhichOneof("message") != "hello":
            await _abort(context, InvalidArgument(FieldViolation("message", "the first message must be hello")))
        try:
            connection = await self.protocol.hello(first.hello)
        except VpError as error:
            await _abort(context, error)
        reader = asyncio.create_task(self._read(connection, request_iterator))
        try:
            while True:
                item = await connection.outbox.get()
                if item is None:
                    return
                if isinstance(item, VpError):
                    await _abort(context, item)
                yield item
        finally:
            reader.cancel()
            self.protocol.core.hub.detach(connection)
            self.protocol.core.streams_changed()
            log.info("worker %s stream closed", connection.owner, extra={"vp_id": connection.vp_id})

    async def _read(self, connection, request_iterator) -> None:
        """Read the worker's messages as fast as they come. Heartbeats go to their
        own task (only the newest one waiting counts), so a renewal never waits for
        the store transactions of the results and progress read before it; every
        other message is handled in order by a second task."""
        handlers = {
            "started": self.protocol.started, "progress": self.protocol.progress, "result": self.protocol.result,
            "draining": self.protocol.draining, "hand_back": self.protocol.hand_back,
        }
        ordered: asyncio.Queue = asyncio.Queue(maxsize=ORDERED_BACKLOG)
        beats = _Newest()
        in_order = asyncio.create_task(self._handle_in_order(connection, ordered))
        renewing = asyncio.create_task(self._handle_heartbeats(connection, beats))
        try:
            async for message in request_iterator:
                kind = message.WhichOneof("message")
                if kind == "heartbeat":
                    beats.put(message.heartbeat)
                    continue
                handler = handlers.get(kind)
                if handler is None:
                    raise InvalidArgument(FieldViolation("message", f"unexpected {kind!r} after hello"))
                await ordered.put((handler, getattr(message, kind)))
            await ordered.put(None)
            await in_order
            connection.end()
        except asyncio.CancelledError:
            raise
        except VpError as error:
            connection.end(error)
        except Exception:
            if connection.closed:
                return  # the stream was ended (and aborted) from our side: reading just stops
            log.exception("worker stream handler failed", extra={"vp_id": connection.vp_id})
            connection.end(VpError(internal_status().message))
        finally:
            in_order.cancel()
            renewing.cancel()

    @staticmethod
    async def _handle_in_order(connection, ordered: asyncio.Queue) -> None:
        while True:
            item = await ordered.get()
            if item is None:
                return
            handler, payload = item
            if not await _guarded(connection, handler, payload):
                return

    async def _handle_heartbeats(self, connection, beats: "_Newest") -> None:
        while True:
            beat = await beats.get()
            if not await _guarded(connection, self.protocol.heartbeat, beat):
                return


#: Messages read ahead of their (in-order) handling; beyond it reading waits.
ORDERED_BACKLOG = 4096


class _Newest:
    """A one-slot mailbox that keeps only the newest item."""

    def __init__(self) -> None:
        self._item = None
        self._ready = asyncio.Event()

    def put(self, item) -> None:
        self._item = item
        self._ready.set()

    async def get(self):
        await self._ready.wait()
        self._ready.clear()
        item, self._item = self._item, None
        return item


async def _guarded(connection, handler, payload) -> bool:
    """Run one handler; a failure ends the stream (with its status). False then."""
    try:
        await handler(connection, payload)
        return True
    except asyncio.CancelledError:
        raise
    except VpError as error:
        connection.end(error)
    except Exception:
        log.exception("worker stream handler failed", extra={"vp_id": connection.vp_id})
        connection.end(VpError(internal_status().message))
    return False


async def _abort(context, error: VpError):
    await context.abort_with_status(rpc_status.to_status(error.to_rpc_status()))


def add_to_server(api: MissionsApi, protocol: WorkerProtocol, server) -> list[str]:
    mc_grpc.add_MissionControlServicer_to_server(MissionControlServicer(api), server)
    wc_grpc.add_WorkerChannelServicer_to_server(WorkerChannelServicer(protocol), server)
    return [MISSION_CONTROL, WORKER_CHANNEL]
