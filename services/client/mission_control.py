"""Async client of vp.v1.MissionControl (the dispatcher): dispatch, follow and
read missions. Every call has a deadline; transient failures of calls that are
safe to repeat are retried (dispatch always carries an idempotency key, so a
retried dispatch returns the same mission); other failures raise ClientError."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.struct_pb2 import Struct

from opentelemetry.trace import SpanKind

from services.common.telemetry import tracing
from services.client.artifacts import ArtifactFile, ChunkAssembler, DirectoryWriter
from services.client.base import GrpcClient, log
from services.client.errors import ClientError, invalid_argument, is_transient
from services.client.states import is_terminal, parse_mission_state
from services.common.contracts.vp.v1 import enums_pb2, event_pb2, mission_pb2
from services.common.contracts.vp.v1 import mission_control_service_pb2 as pb
from services.common.contracts.vp.v1 import mission_control_service_pb2_grpc as pb_grpc
from services.common.timeutil import NaiveDatetimeError, to_duration, to_timestamp

#: Longest single WaitMission call; the server caps its own wait at 300 s.
WAIT_SLICE_SECONDS = 60.0
#: Deadline of streams that end on their own (non-follow events, artifacts).
DEFAULT_STREAM_TIMEOUT = 60.0
#: In-memory artifact reads refuse to grow beyond this.
DEFAULT_MAX_ARTIFACT_BYTES = 64 * 1024 * 1024


def new_idempotency_key() -> str:
    return f"auto-{uuid.uuid4().hex}"


def _source(value: mission_pb2.Source | Mapping[str, Any] | None) -> mission_pb2.Source | None:
    if value is None or isinstance(value, mission_pb2.Source):
        return value
    data = dict(value)
    mode = data.get("reply_mode", 0)
    if isinstance(mode, str):
        name = mode.upper()
        mode = enums_pb2.ReplyMode.Value(name if name.startswith("REPLY_MODE_") else f"REPLY_MODE_{name}")
    return mission_pb2.Source(session_id=data.get("session_id", ""), turn_id=data.get("turn_id", ""),
                              reply_mode=mode)


class MissionControlClient(GrpcClient):
    """``async with MissionControlClient("127.0.0.1:50052") as mc: ...``"""

    def __init__(self, address: str, *, stream_timeout: float = DEFAULT_STREAM_TIMEOUT, **kwargs: Any) -> None:
        super().__init__(address, **kwargs)
        self.stream_timeout = stream_timeout

    @property
    def stub(self) -> pb_grpc.MissionControlStub:
        return self._stub(pb_grpc.MissionControlStub)

    # -- missions -----------------------------------------------------------------

    def build_envelope(
        self,
        vp_id: str,
        mission_type: str,
        objective: str,
        *,
        idempotency_key: str | None = None,
        target_path: str | None = None,
        constraints: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        priority: int = 0,
        max_attempts: int = 0,
        deadline: datetime | None = None,
        budget_seconds: float | None = None,
        source: mission_pb2.Source | Mapping[str, Any] | None = None,
        mission_id: str = "",
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
        fresh_context: bool = False,
    ) -> mission_pb2.MissionEnvelope:
        envelope = mission_pb2.MissionEnvelope(
            schema_version=1, mission_id=mission_id, vp_id=vp_id, mission_type=mission_type, objective=objective,
            idempotency_key=idempotency_key or new_idempotency_key(), priority=priority,
            max_attempts=max_attempts, target_path=target_path or "", labels=dict(labels or {}),
            fresh_context=fresh_context,
        )
        if max_tokens is not None:
            envelope.budget.max_tokens = max_tokens
        if max_cost_usd is not None:
            envelope.budget.max_cost_usd = max_cost_usd
        if constraints:
            struct = Struct()
            try:
                struct.update(dict(constraints))
            except (TypeError, ValueError) as exc:
                raise invalid_argument("constraints", f"not JSON-like: {exc}") from None
            envelope.constraints.CopyFrom(struct)
        if deadline is not None:
            try:
                envelope.deadline.CopyFrom(to_timestamp(deadline))
            except NaiveDatetimeError as exc:
                raise invalid_argument("deadline", str(exc)) from None
        if budget_seconds is not None:
            if budget_seconds < 0:
                raise invalid_argument("budget.max_duration", "must not be negative")
            envelope.budget.max_duration.CopyFrom(to_duration(timedelta(seconds=budget_seconds)))
        src = _source(source)
        if src is not None:
            envelope.source.CopyFrom(src)
        return envelope

    async def dispatch(
        self,
        vp_id: str,
        mission_type: str,
        objective: str,
        *,
        idempotency_key: str | None = None,
        target_path: str | None = None,
        constraints: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        priority: int = 0,
        max_attempts: int = 0,
        deadline: datetime | None = None,
        budget_seconds: float | None = None,
        source: mission_pb2.Source | Mapping[str, Any] | None = None,
        timeout: float | None = None,
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
        fresh_context: bool = False,
    ) -> tuple[mission_pb2.Mission, mission_pb2.Route, bool]:
        """Dispatch a mission; returns (mission, route, deduplicated).

        Without ``idempotency_key`` one is generated, so the call can be retried
        safely: every attempt carries the same key and the server returns the
        same mission."""
        envelope = self.build_envelope(
            vp_id, mission_type, objective, idempotency_key=idempotency_key, target_path=target_path,
            constraints=constraints, labels=labels, priority=priority, max_attempts=max_attempts,
            deadline=deadline, budget_seconds=budget_seconds, source=source, max_tokens=max_tokens,
            max_cost_usd=max_cost_usd, fresh_context=fresh_context,
        )
        return await self.dispatch_envelope(envelope, timeout=timeout)

    async def dispatch_envelope(self, envelope: mission_pb2.MissionEnvelope, *, timeout: float | None = None
                                ) -> tuple[mission_pb2.Mission, mission_pb2.Route, bool]:
        with tracing.span("vp.client.dispatch", kind=SpanKind.CLIENT,
                          attributes={"vp_id": envelope.vp_id, "mission_id": envelope.mission_id}):
            traceparent, tracestate = tracing.current_traceparent()
            if traceparent and not envelope.trace.traceparent:
                # The envelope keeps the trace so it outlives this call (queue, re-queue).
                traced = mission_pb2.MissionEnvelope()
                traced.CopyFrom(envelope)
                traced.trace.traceparent, traced.trace.tracestate = traceparent, tracestate
                envelope = traced
            response = await self._unary("DispatchMission", self.stub.DispatchMission,
                                         pb.DispatchMissionRequest(envelope=envelope), timeout=timeout,
                                         retryable=bool(envelope.idempotency_key),
                                         extra_metadata=tracing.outgoing_metadata())
        return response.mission, response.route, response.deduplicated

    async def get(self, mission_id: str, *, timeout: float | None = None) -> mission_pb2.Mission:
        response = await self._unary("GetMission", self.stub.GetMission,
                                     pb.GetMissionRequest(mission_id=mission_id), timeout=timeout)
        return response.mission

    async def list(
        self,
        *,
        vp_id: str = "",
        states: Iterable[int | str] = (),
        source_session_id: str = "",
        page_size: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
        timeout: float | None = None,
    ) -> AsyncIterator[mission_pb2.Mission]:
        """Every matching mission, across all pages (at most ``limit``), oldest
        first or with ``newest_first`` newest first."""
        try:
            state_values = [parse_mission_state(s) for s in states]
        except ValueError as exc:
            raise invalid_argument("states", str(exc)) from None
        request = pb.ListMissionsRequest(vp_id=vp_id, states=state_values, source_session_id=source_session_id,
                                         page_size=page_size,
                                         order=enums_pb2.LIST_ORDER_NEWEST_FIRST if newest_first else
                                         enums_pb2.LIST_ORDER_OLDEST_FIRST)
        async for mission in self._paged("ListMissions", self.stub.ListMissions, request, "missions", limit=limit,
                                         timeout=timeout):
            yield mission

    async def wait_once(self, mission_id: str, seconds: float) -> pb.WaitMissionResponse:
        """One WaitMission call of at most ``seconds`` (its deadline allows for that), no retry."""
        request = pb.WaitMissionRequest(mission_id=mission_id, timeout=to_duration(timedelta(seconds=seconds)))
        return await self._unary("WaitMission", self.stub.WaitMission, request, timeout=seconds + self.timeout,
                                 retryable=False)

    async def wait(
        self,
        mission_id: str,
        timeout: float | None = None,
        *,
        return_on_blocked: bool = True,
        slice_seconds: float = WAIT_SLICE_SECONDS,
    ) -> mission_pb2.Mission:
        """Block until the mission is terminal (or BLOCKED, which needs outside
        input) or ``timeout`` seconds pass (None: no limit); returns the mission
        as last seen. Check ``is_terminal(mission.state)`` to tell a timeout.

        A transient failure (a draining or restarting server) is retried until
        the server has been out of reach for ``self.timeout`` seconds; each
        attempt first waits for a connection, so a server that never answers
        fails the wait after about ``self.timeout`` seconds, not a whole slice."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + max(0.0, timeout)
        slice_seconds = max(0.0, min(slice_seconds, WAIT_SLICE_SECONDS))
        failing_since: float | None = None
        failures = 0
        while True:
            started = loop.time()
            remaining = slice_seconds if deadline is None else max(0.0, min(slice_seconds, deadline - started))
            try:
                await self._reachable("WaitMission", (failing_since or started) + self.timeout)
                response = await self.wait_once(mission_id, remaining)
            except ClientError as error:
                if not error.transient:
                    raise
                failures += 1
                failing_since = failing_since or started
                delay = self.retry.backoff(failures, error.retry_delay.total_seconds() if error.retry_delay else None)
                if loop.time() + delay >= failing_since + self.timeout:
                    raise
                log.info("WaitMission: %s, retry %d in %.2fs", error.summary(), failures, delay)
                await asyncio.sleep(delay)
                continue
            failing_since, failures = None, 0
            mission = response.mission
            if is_terminal(mission.state):
                return mission
            if return_on_blocked and mission.state == enums_pb2.MISSION_STATE_BLOCKED:
                return mission
            now = loop.time()
            if deadline is not None and now >= deadline:
                return mission
            if now - started < 0.05:  # a server answering at once must not make us spin
                await asyncio.sleep(0.05)

    async def cancel(self, mission_id: str, reason: str = "", *, timeout: float | None = None
                     ) -> mission_pb2.Mission:
        """Cancel is idempotent server-side (a terminal mission is a no-op), so it is retried."""
        response = await self._unary("CancelMission", self.stub.CancelMission,
                                     pb.CancelMissionRequest(mission_id=mission_id, reason=reason), timeout=timeout)
        return response.mission

    async def resume(self, mission_id: str, answer: str = "", *, max_tokens: int | None = None,
                     max_cost_usd: float | None = None, max_duration_seconds: float | None = None,
                     timeout: float | None = None) -> mission_pb2.Mission:
        """ResumeMission: answer a BLOCKED mission (and/or raise its budget); it goes back
        to QUEUED. Not retried: a lost answer shows as MISSION_NOT_BLOCKED on a retry."""
        request = pb.ResumeMissionRequest(mission_id=mission_id, answer=answer)
        if max_tokens is not None:
            request.budget.max_tokens = max_tokens
        if max_cost_usd is not None:
            request.budget.max_cost_usd = max_cost_usd
        if max_duration_seconds is not None:
            if max_duration_seconds < 0:
                raise invalid_argument("budget.max_duration", "must not be negative")
            request.budget.max_duration.CopyFrom(to_duration(timedelta(seconds=max_duration_seconds)))
        response = await self._unary("ResumeMission", self.stub.ResumeMission, request, timeout=timeout,
                                     retryable=False)
        return response.mission

    # -- operator: routing flags -----------------------------------------------------

    async def get_routing_flags(self, *, timeout: float | None = None) -> pb.GetRoutingFlagsResponse:
        return await self._unary("GetRoutingFlags", self.stub.GetRoutingFlags, pb.GetRoutingFlagsRequest(),
                                 timeout=timeout)

    async def set_routing_flags(self, vp_id: str = "", *, reason: str, actor: str = "",
                                timeout: float | None = None, **changes: bool | int | None
                                ) -> pb.SetRoutingFlagsResponse:
        """Change the kill switch (vp_id "") or one lane's enabled / shadow /
        force_fallback / max_in_flight / max_queue_depth (-1: back to the default).
        Setting a value twice is harmless, so the call is retried."""
        request = pb.SetRoutingFlagsRequest(vp_id=vp_id, reason=reason, actor=actor)
        for name, value in changes.items():
            if value is not None:
                setattr(request, name, value)
        return await self._unary("SetRoutingFlags", self.stub.SetRoutingFlags, request, timeout=timeout)

    # -- events -------------------------------------------------------------------

    async def events(
        self,
        after_event_id: int = 0,
        consumer: str = "",
        mission_id: str = "",
        vp_id: str = "",
        event_types: Iterable[str] = (),
        follow: bool = False,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[event_pb2.MissionEvent]:
        """Events after a cursor. A dropped stream is reopened after the last event
        yielded, so the caller sees no gap and no duplicate. Without ``follow`` the
        iterator ends once caught up, within ``timeout`` (default stream_timeout)
        overall, retries included; with it, it runs until closed, but fails once
        the server has been out of reach for ``self.timeout`` seconds."""
        types = list(event_types)
        loop = asyncio.get_running_loop()
        total = timeout if timeout is not None else self.stream_timeout
        overall = None if follow else loop.time() + total
        last: int | None = None
        failures = 0
        failing_since: float | None = None
        while True:
            request = pb.StreamMissionEventsRequest(
                after_event_id=last if last is not None else after_event_id, consumer=consumer,
                mission_id=mission_id, vp_id=vp_id, event_types=types, follow=follow)
            attempt_started = loop.time()
            reach_by = overall if overall is not None else (failing_since or attempt_started) + self.timeout
            if overall is not None and overall - attempt_started <= 0:
                raise self._out_of_time("StreamMissionEvents", overall, total)
            await self._reachable("StreamMissionEvents", reach_by)
            deadline = None if overall is None else overall - loop.time()
            call = self.stub.StreamMissionEvents(request, timeout=deadline, metadata=self.metadata or None)
            try:
                async for response in call:
                    event = response.event
                    if event.event_id <= max(request.after_event_id, last or 0):
                        continue  # a server replaying the cursor event must not duplicate it
                    last, failures, failing_since = event.event_id, 0, None
                    yield event
            except grpc.aio.AioRpcError as error:
                failures += 1
                failing_since = failing_since or loop.time()
                # Followed streams retry for as long as the server comes back within self.timeout.
                if not is_transient(error) or (overall is not None and failures >= self.retry.max_attempts):
                    raise ClientError.from_rpc_error(error, method="StreamMissionEvents") from error
                await self._sleep_before_retry("StreamMissionEvents", error, failures,
                                               overall if overall is not None else failing_since + self.timeout)
                continue
            finally:
                call.cancel()
            if not follow:
                return
            # A follow stream the server closed (restart, drain): reopen from the cursor.
            failures += 1
            log.info("StreamMissionEvents: stream closed by server, reopening after %s", last)
            await asyncio.sleep(self.retry.backoff(min(failures, 8)))

    async def commit_cursor(self, consumer: str, event_id: int, *, timeout: float | None = None) -> int:
        """Store ``consumer``'s cursor (the last event fully processed); returns it."""
        response = await self._unary("CommitEventCursor", self.stub.CommitEventCursor,
                                     pb.CommitEventCursorRequest(consumer=consumer, event_id=event_id),
                                     timeout=timeout)
        return response.event_id

    # -- artifacts ------------------------------------------------------------------

    async def artifact_chunks(self, mission_id: str, path: str = "", *, chunk_size: int = 0,
                              timeout: float | None = None) -> AsyncIterator[pb.ReadResultArtifactsResponse]:
        """Raw chunks of one attempt, no retry, no checks (see read_artifacts)."""
        request = pb.ReadResultArtifactsRequest(mission_id=mission_id, path=path, chunk_size=chunk_size)
        call = self.stub.ReadResultArtifacts(request, timeout=timeout if timeout is not None else self.stream_timeout,
                                             metadata=self.metadata or None)
        try:
            async for chunk in call:
                yield chunk
        finally:
            call.cancel()

    async def _with_stream_retry(self, method: str, attempt_once, timeout: float | None):
        """attempt_once(remaining seconds) until it succeeds; ``timeout`` (default
        stream_timeout) is the overall deadline of every attempt together."""
        loop = asyncio.get_running_loop()
        total = timeout if timeout is not None else self.stream_timeout
        deadline = loop.time() + total
        failures = 0
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._out_of_time(method, deadline, total)
            try:
                return await attempt_once(remaining)
            except grpc.aio.AioRpcError as error:
                failures += 1
                if not (is_transient(error) and failures < self.retry.max_attempts):
                    raise ClientError.from_rpc_error(error, method=method) from error
                await self._sleep_before_retry(method, error, failures, deadline)

    async def list_artifacts(self, mission_id: str, path: str = "", *, timeout: float | None = None
                             ) -> list[ArtifactFile]:
        """Names and sizes of the artifact files (content is streamed and dropped)."""

        async def once(remaining: float) -> list[ArtifactFile]:
            files, assembler = [], ChunkAssembler()
            async for chunk in self.artifact_chunks(mission_id, path, timeout=remaining):
                assembler.accept(chunk)
                if chunk.eof:
                    assembler.finish_file(chunk)
                    files.append(ArtifactFile(chunk.path, assembler.received))
            assembler.finish()
            return files

        return await self._with_stream_retry("ReadResultArtifacts", once, timeout)

    async def read_artifacts(self, mission_id: str, path: str = "", *, chunk_size: int = 0,
                             max_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES, timeout: float | None = None
                             ) -> dict[str, bytes]:
        """Every artifact file (or just ``path``) as {relative path: content}."""

        async def once(remaining: float) -> dict[str, bytes]:
            files: dict[str, bytes] = {}
            assembler, buffer, total = ChunkAssembler(), bytearray(), 0
            async for chunk in self.artifact_chunks(mission_id, path, chunk_size=chunk_size, timeout=remaining):
                if assembler.accept(chunk):
                    buffer = bytearray()
                buffer += chunk.data
                total += len(chunk.data)
                if total > max_bytes:
                    raise ClientError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                      f"artifacts exceed {max_bytes} bytes; read them into a directory",
                                      reason="TOO_LARGE")
                if chunk.eof:
                    assembler.finish_file(chunk)
                    files[chunk.path] = bytes(buffer)
            assembler.finish()
            return files

        return await self._with_stream_retry("ReadResultArtifacts", once, timeout)

    async def read_artifacts_to_dir(self, mission_id: str, out_dir: str | Path, path: str = "", *,
                                    chunk_size: int = 0, timeout: float | None = None) -> list[ArtifactFile]:
        """Stream artifacts into ``out_dir`` without holding them in memory. Each
        file appears under its final name only when complete; a path that would
        land outside ``out_dir`` is refused (ClientError PATH_NOT_ALLOWED)."""

        async def once(remaining: float) -> list[ArtifactFile]:
            writer, assembler = DirectoryWriter(Path(out_dir)), ChunkAssembler()
            try:
                async for chunk in self.artifact_chunks(mission_id, path, chunk_size=chunk_size, timeout=remaining):
                    if assembler.accept(chunk):
                        writer.start(chunk.path)
                    writer.write(chunk.data)
                    if chunk.eof:
                        assembler.finish_file(chunk)
                        writer.finish(chunk.path, assembler.received)
                assembler.finish()
            finally:
                writer.abort()
            return writer.written

        return await self._with_stream_retry("ReadResultArtifacts", once, timeout)
