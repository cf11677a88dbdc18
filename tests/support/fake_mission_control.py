"""A test double of the MissionControl server (and a tiny SessionRegistry), over
in-memory dicts, that can inject failures. For client and CLI tests where the
real dispatcher is not the subject.

Injecting failures:
  fake.fail_next("DispatchMission", unavailable(retry_delay=0.05), times=2)
  fake.drop_streams_after(3, 4)     # next event streams abort UNAVAILABLE after 3, then 4 events
  fake.replay_cursor_on_resume = True  # a sloppy server resending the cursor event
  fake.lose_dispatch_responses = 1     # stored, then the reply is lost (UNAVAILABLE)
Missions run by themselves when dispatched with label fake.outcome in
{completed, failed, blocked, hang}; without it they stay QUEUED.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import grpc
from google.protobuf.struct_pb2 import Struct
from grpc_status import rpc_status

from services.common.contracts.vp.v1 import enums_pb2 as enums
from services.common.contracts.vp.v1 import event_pb2, mission_pb2, session_pb2
from services.common.contracts.vp.v1 import mission_control_service_pb2 as pb
from services.common.contracts.vp.v1 import mission_control_service_pb2_grpc as pb_grpc
from services.common.contracts.vp.v1 import session_registry_service_pb2 as spb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as spb_grpc
from services.common.errors import (
    FieldViolation,
    IdempotencyConflict,
    InvalidArgument,
    MissionNotFound,
    NotFound,
    SessionNotFound,
    VpError,
)
from services.common.grpc_errors import translate_errors
from services.common.grpc_server import start_server
from services.common.timeutil import from_duration, to_timestamp

LANES = ("vp.coder.primary", "vp.general.primary")
#: A lane whose missions fall back to the caller at once (like a disabled flag).
CALLER_FALLBACK_LANE = "vp.disabled.primary"
TERMINAL = {enums.MISSION_STATE_COMPLETED, enums.MISSION_STATE_FAILED, enums.MISSION_STATE_CANCELLED,
            enums.MISSION_STATE_TIMED_OUT}


def unavailable(retry_delay: float | None = 0.05, reason: str = "STORE_BUSY") -> VpError:
    error = VpError("store busy, retry later")
    error.code, error.reason = grpc.StatusCode.UNAVAILABLE, reason
    error.retry_delay = None if retry_delay is None else timedelta(seconds=retry_delay)
    return error


def invalid(field: str, description: str, reason: str | None = None) -> VpError:
    return InvalidArgument(FieldViolation(field, description), reason=reason)


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _abort(context, error: VpError) -> None:
    await context.abort_with_status(rpc_status.to_status(error.to_rpc_status()))


def _envelope_key(envelope: mission_pb2.MissionEnvelope) -> bytes:
    copy = mission_pb2.MissionEnvelope()
    copy.CopyFrom(envelope)
    copy.mission_id = ""
    return copy.SerializeToString(deterministic=True)


@translate_errors
class FakeMissionControl(pb_grpc.MissionControlServicer):
    def __init__(self, *, step_delay: float = 0.05, chunk_size: int = 5) -> None:
        self.missions: dict[str, mission_pb2.Mission] = {}
        self.by_key: dict[str, tuple[str, bytes]] = {}
        self.events: list[event_pb2.MissionEvent] = []
        self.cursors: dict[str, int] = {}
        # mission_id -> [(path as the server will send it, content)]
        self.artifacts: dict[str, list[tuple[str, bytes]]] = {}
        self.requests: dict[str, list] = defaultdict(list)
        self.failures: dict[str, list[VpError]] = defaultdict(list)
        self.stream_drops: list[int] = []
        self.replay_cursor_on_resume = False
        # Dispatches stored whose response is then lost (UNAVAILABLE instead).
        self.lose_dispatch_responses = 0
        self.step_delay = step_delay
        self.chunk_size = chunk_size
        self._tasks: set[asyncio.Task] = set()

    # -- test controls ------------------------------------------------------------

    def fail_next(self, method: str, error: VpError, times: int = 1) -> None:
        self.failures[method].extend([error] * times)

    def drop_streams_after(self, *counts: int) -> None:
        self.stream_drops.extend(counts)

    def emit(self, event_type: str, mission_id: str = "", vp_id: str = "", **payload) -> event_pb2.MissionEvent:
        struct = Struct()
        struct.update(payload)
        event = event_pb2.MissionEvent(event_id=len(self.events) + 1, mission_id=mission_id, vp_id=vp_id,
                                       event_type=event_type, payload=struct, emitted_at=to_timestamp(_now()))
        self.events.append(event)
        return event

    def set_state(self, mission_id: str, state: int, event_type: str | None = None, **payload) -> None:
        mission = self.missions[mission_id]
        mission.state = state
        mission.updated_at.CopyFrom(to_timestamp(_now()))
        if state == enums.MISSION_STATE_RUNNING and not mission.HasField("started_at"):
            mission.started_at.CopyFrom(to_timestamp(_now()))
        if state in TERMINAL:
            mission.completed_at.CopyFrom(to_timestamp(_now()))
        if event_type:
            self.emit(event_type, mission_id, mission.envelope.vp_id, **payload)

    async def _gate(self, method: str, request, context) -> None:
        self.requests[method].append(request)
        if self.failures[method]:
            await _abort(context, self.failures[method].pop(0))

    def _mission(self, mission_id: str) -> mission_pb2.Mission:
        try:
            return self.missions[mission_id]
        except KeyError:
            raise MissionNotFound(mission_id) from None

    # -- RPCs -------------------------------------------------------------------------

    async def DispatchMission(self, request, context):
        await self._gate("DispatchMission", request, context)
        env = request.envelope
        violations = []
        if not env.objective.strip():
            violations.append(FieldViolation("envelope.objective", "required"))
        if not env.mission_type:
            violations.append(FieldViolation("envelope.mission_type", "required"))
        if violations:
            await _abort(context, InvalidArgument(violations))
        if env.vp_id not in (*LANES, CALLER_FALLBACK_LANE):
            await _abort(context, invalid("envelope.vp_id", f"no lane {env.vp_id!r}", reason="UNKNOWN_VP"))
        key = _envelope_key(env)
        if env.idempotency_key and env.idempotency_key in self.by_key:
            mission_id, stored = self.by_key[env.idempotency_key]
            if stored != key:
                await _abort(context, IdempotencyConflict(f"idempotency key {env.idempotency_key!r} reused"))
            mission = self.missions[mission_id]
            return pb.DispatchMissionResponse(mission=mission, route=mission.route, deduplicated=True)
        mission_id = env.mission_id or f"m-{len(self.missions) + 1:04d}"
        stored_env = mission_pb2.MissionEnvelope()
        stored_env.CopyFrom(env)
        stored_env.mission_id = mission_id
        now = to_timestamp(_now())
        if env.vp_id == CALLER_FALLBACK_LANE:
            route = mission_pb2.Route(
                decision=enums.ROUTE_DECISION_FALLBACK, requested_vp_id=env.vp_id,
                fallback_reason=enums.FALLBACK_REASON_DISABLED, provenance="fallback to caller: disabled",
                fallback_target=mission_pb2.FallbackTarget(kind=enums.FALLBACK_TARGET_KIND_CALLER), decided_at=now)
            state = enums.MISSION_STATE_FAILED
        else:
            route = mission_pb2.Route(decision=enums.ROUTE_DECISION_DELEGATED, lane=env.vp_id,
                                      requested_vp_id=env.vp_id, provenance=f"delegated to {env.vp_id}",
                                      decided_at=now)
            state = enums.MISSION_STATE_QUEUED
        mission = mission_pb2.Mission(envelope=stored_env, state=state, attempt=1, route=route, created_at=now,
                                      updated_at=now)
        self.missions[mission_id] = mission
        if env.idempotency_key:
            self.by_key[env.idempotency_key] = (mission_id, key)
        self.emit("vp.mission.dispatched", mission_id, env.vp_id)
        if state == enums.MISSION_STATE_FAILED:
            self.emit("vp.mission.fallback", mission_id, env.vp_id, reason="disabled")
        outcome = env.labels.get("fake.outcome")
        if outcome:
            task = asyncio.get_running_loop().create_task(self._run(mission_id, outcome))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self.lose_dispatch_responses:
            self.lose_dispatch_responses -= 1
            await _abort(context, unavailable(retry_delay=0.01, reason="DEPENDENCY_UNAVAILABLE"))
        return pb.DispatchMissionResponse(mission=mission, route=route, deduplicated=False)

    async def _run(self, mission_id: str, outcome: str) -> None:
        await asyncio.sleep(self.step_delay)
        self.set_state(mission_id, enums.MISSION_STATE_RUNNING, "vp.mission.started")
        for step in (1, 2):
            await asyncio.sleep(self.step_delay)
            self.emit("vp.mission.progress", mission_id, self.missions[mission_id].envelope.vp_id,
                      message=f"step {step}/2", step=step)
        await asyncio.sleep(self.step_delay)
        mission = self.missions[mission_id]
        if mission.state != enums.MISSION_STATE_RUNNING:
            return  # cancelled meanwhile
        if outcome == "completed":
            self.artifacts[mission_id] = [("result.md", b"# done\n" + mission.envelope.objective.encode())]
            mission.summary = "done"
            self.set_state(mission_id, enums.MISSION_STATE_COMPLETED, "vp.mission.completed")
        elif outcome == "failed":
            mission.error.code, mission.error.message = "EXECUTOR_EXIT_NONZERO", "exit 3"
            self.set_state(mission_id, enums.MISSION_STATE_FAILED, "vp.mission.failed")
        elif outcome == "blocked":
            self.set_state(mission_id, enums.MISSION_STATE_BLOCKED, "vp.mission.blocked")
        # "hang": stays RUNNING

    async def GetMission(self, request, context):
        await self._gate("GetMission", request, context)
        return pb.GetMissionResponse(mission=self._mission(request.mission_id))

    async def ListMissions(self, request, context):
        await self._gate("ListMissions", request, context)
        found = [m for m in self.missions.values()
                 if (not request.vp_id or m.envelope.vp_id == request.vp_id)
                 and (not request.states or m.state in request.states)
                 and (not request.source_session_id or m.envelope.source.session_id == request.source_session_id)]
        if request.order == enums.LIST_ORDER_NEWEST_FIRST:
            found.reverse()
        size = request.page_size or 100
        start = int(request.page_token or 0)
        page = found[start:start + size]
        token = str(start + size) if start + size < len(found) else ""
        return pb.ListMissionsResponse(missions=page, next_page_token=token)

    async def WaitMission(self, request, context):
        await self._gate("WaitMission", request, context)
        mission = self._mission(request.mission_id)
        limit = min(from_duration(request.timeout, timedelta(0)).total_seconds(), 300)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while mission.state not in TERMINAL:
            if loop.time() >= deadline:
                return pb.WaitMissionResponse(mission=mission, timed_out=True)
            await asyncio.sleep(0.01)
        return pb.WaitMissionResponse(mission=mission, timed_out=False)

    async def CancelMission(self, request, context):
        await self._gate("CancelMission", request, context)
        mission = self._mission(request.mission_id)
        if mission.state not in TERMINAL:
            self.set_state(request.mission_id, enums.MISSION_STATE_CANCELLED, "vp.mission.cancelled",
                           reason=request.reason)
        return pb.CancelMissionResponse(mission=mission)

    def _matches(self, event: event_pb2.MissionEvent, request) -> bool:
        return ((not request.mission_id or event.mission_id == request.mission_id)
                and (not request.vp_id or event.vp_id == request.vp_id)
                and (not request.event_types or event.event_type in request.event_types))

    async def StreamMissionEvents(self, request, context):
        await self._gate("StreamMissionEvents", request, context)
        cursor = request.after_event_id
        if cursor == 0 and request.consumer:
            cursor = self.cursors.get(request.consumer, 0)
        if self.replay_cursor_on_resume and cursor:
            cursor -= 1
        drop_after = self.stream_drops.pop(0) if self.stream_drops else None
        sent = 0
        while True:
            for event in list(self.events):
                if event.event_id <= cursor or not self._matches(event, request):
                    continue
                if drop_after is not None and sent >= drop_after:
                    await _abort(context, unavailable(retry_delay=0.01, reason="DEPENDENCY_UNAVAILABLE"))
                yield pb.StreamMissionEventsResponse(event=event)
                cursor, sent = event.event_id, sent + 1
            if not request.follow:
                return
            await asyncio.sleep(0.01)

    async def CommitEventCursor(self, request, context):
        await self._gate("CommitEventCursor", request, context)
        if not request.consumer:
            await _abort(context, invalid("consumer", "required"))
        self.cursors[request.consumer] = request.event_id
        return pb.CommitEventCursorResponse(consumer=request.consumer, event_id=request.event_id)

    async def ReadResultArtifacts(self, request, context):
        await self._gate("ReadResultArtifacts", request, context)
        self._mission(request.mission_id)
        files = self.artifacts.get(request.mission_id, [])
        if request.path:
            files = [(p, d) for p, d in files if p == request.path]
            if not files:
                await _abort(context, NotFound(f"no artifact {request.path!r}", reason="ARTIFACT_NOT_FOUND"))
        size = request.chunk_size or self.chunk_size
        for path, data in files:
            if not data:
                yield pb.ReadResultArtifactsResponse(path=path, offset=0, data=b"", size=0, eof=True)
                continue
            for offset in range(0, len(data), size):
                piece = data[offset:offset + size]
                yield pb.ReadResultArtifactsResponse(path=path, offset=offset, data=piece, size=len(data),
                                                     eof=offset + len(piece) >= len(data))


@translate_errors
class FakeSessionRegistry(spb_grpc.SessionRegistryServicer):
    """Read side only: GetSession and ListSessions over a dict."""

    def __init__(self, sessions: list[session_pb2.VpSession] = ()) -> None:
        self.sessions = {s.vp_id: s for s in sessions}

    async def GetSession(self, request, context):
        if request.vp_id not in self.sessions:
            await _abort(context, SessionNotFound(request.vp_id))
        return spb.GetSessionResponse(session=self.sessions[request.vp_id])

    async def ListSessions(self, request, context):
        found = [s for s in self.sessions.values()
                 if (not request.statuses or s.status in request.statuses)
                 and (not request.effective_statuses or s.effective_status in request.effective_statuses)
                 and (not request.HasField("stale") or s.stale == request.stale)
                 and s.vp_id.startswith(request.vp_id_prefix)]
        return spb.ListSessionsResponse(sessions=sorted(found, key=lambda s: s.vp_id))


def _register(fake: FakeMissionControl, registry: FakeSessionRegistry | None):
    def register(server) -> list[str]:
        pb_grpc.add_MissionControlServicer_to_server(fake, server)
        names = [pb.DESCRIPTOR.services_by_name["MissionControl"].full_name]
        if registry is not None:
            spb_grpc.add_SessionRegistryServicer_to_server(registry, server)
            names.append(spb.DESCRIPTOR.services_by_name["SessionRegistry"].full_name)
        return names

    return register


async def start_fake(fake: FakeMissionControl, registry: FakeSessionRegistry | None = None):
    """Serve on 127.0.0.1:<free port> in the running loop; returns RunningServer."""
    return await start_server("127.0.0.1:0", _register(fake, registry))


class FakeServerThread:
    """The fake served from its own thread and loop, for tests that block (subprocesses)."""

    def __init__(self, fake: FakeMissionControl, registry: FakeSessionRegistry | None = None) -> None:
        self.fake, self.registry = fake, registry
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="fake-mission-control")
        self.address = ""
        self._running = None

    def call(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> str:
        self.thread.start()
        self._running = self.call(start_fake(self.fake, self.registry))
        self.address = self._running.address
        return self.address

    def stop(self) -> None:
        if self._running is not None:
            self.call(self._running.stop(0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def __enter__(self) -> "FakeServerThread":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
