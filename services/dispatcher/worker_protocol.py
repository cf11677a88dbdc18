"""The dispatcher's side of WorkerChannel.Connect, message by message.

Fencing: a stream is bound to the (vp_id, owner, lease_epoch) its hello proved
against the registry. Any message carrying another epoch, and any heartbeat the
registry refuses as LEASE_SUPERSEDED, ends the stream with LEASE_SUPERSEDED and
changes nothing. Results are idempotent on (mission_id, attempt)."""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

from google.protobuf.json_format import MessageToDict

from services.common.contracts.vp.v1 import enums_pb2
from services.common.contracts.vp.v1 import worker_channel_service_pb2 as wc_pb
from services.common.errors import DependencyUnavailable, FieldViolation, InvalidArgument, LeaseSuperseded
from services.common.states import MissionState
from services.common.timeutil import from_timestamp, to_duration
from services.common.limits import MAX_WORKER_CAPACITY
from services.common.validation import OWNER_MAX, check_text, check_vp_id
from services.dispatcher import agent_results, liveness, transitions
from services.dispatcher.agent_results import AgentReport
from services.dispatcher.core import DispatcherCore
from services.dispatcher.effects import Effects
from services.dispatcher.mission_proto import PROTO_TO_STATE, STATE_TO_PROTO
from services.dispatcher.worker_hub import WorkerConnection

log = logging.getLogger(__name__)
HEARTBEATS_PER_TTL = 4
M = MissionState
MAX_CAPACITY = MAX_WORKER_CAPACITY


def superseded(vp_id: str, epoch: int, current_epoch: int, current_owner: str) -> LeaseSuperseded:
    return LeaseSuperseded(
        f"lease epoch {epoch} on {vp_id!r} is superseded (current epoch {current_epoch})",
        metadata={"current_epoch": str(current_epoch), "current_owner": current_owner})


class WorkerProtocol:
    def __init__(self, core: DispatcherCore) -> None:
        self.core = core
        self.store = core.store

    # --- hello -------------------------------------------------------------------------
    async def hello(self, hello: wc_pb.WorkerHello) -> WorkerConnection:
        violations = check_vp_id(hello.vp_id) + check_text(hello.owner, "hello.owner", max_len=OWNER_MAX)
        if hello.lease_epoch <= 0:
            violations.append(FieldViolation("hello.lease_epoch", "required (from SessionRegistry.AcquireLease)"))
        if not 1 <= hello.capacity <= MAX_CAPACITY:
            violations.append(FieldViolation("hello.capacity", f"must be within 1..{MAX_CAPACITY}"))
        if violations:
            raise InvalidArgument(violations)
        session = await self.core.registry.session(hello.vp_id)
        expires = from_timestamp(session.lease_expires_at)
        live = expires is not None and expires > self.core.clock.now()
        if session.lease_owner != hello.owner or session.lease_epoch != hello.lease_epoch or not live:
            raise superseded(hello.vp_id, hello.lease_epoch, session.lease_epoch, session.lease_owner)
        # The worker chose its TTL when it acquired; keep renewing with the same one.
        ttl = (expires - from_timestamp(session.last_heartbeat_at)) if session.HasField("last_heartbeat_at") \
            else self.core.settings.heartbeat_interval * 3
        connection = WorkerConnection(vp_id=hello.vp_id, owner=hello.owner, session_id=session.session_id,
                                      lease_epoch=hello.lease_epoch, capacity=hello.capacity,
                                      workspace_dir=session.workspace_dir, lease_ttl=max(ttl, timedelta(seconds=1)),
                                      lease_expires_at=expires, last_heartbeat_at=self.core.clock.now())
        revoked, effects = await self._reconcile(connection, set(hello.running_mission_ids))
        # A quarter of the TTL: renewal gaps stay under a third of it even when a
        # renewal is late, and the worker's trust window (TTL minus a fifth)
        # survives two lost confirmations.
        interval = min(self.core.settings.heartbeat_interval, ttl / HEARTBEATS_PER_TTL)
        # Welcome goes first; only then may the hub push cancels and assignments to this stream.
        connection.send(wc_pb.ConnectResponse(welcome=wc_pb.DispatcherWelcome(
            session=session, heartbeat_interval=to_duration(interval), revoked_mission_ids=sorted(revoked))))
        previous = self.core.hub.attach(connection)
        if previous is not None and previous is not connection:
            previous.end(superseded(previous.vp_id, previous.lease_epoch, hello.lease_epoch, hello.owner)
                         if previous.lease_epoch < hello.lease_epoch else None)
        self.core.streams_changed()
        self.core.registry.invalidate()
        self.core.apply(effects)
        self.core.request_pump(connection.vp_id, look=True)
        log.info("worker %s connected (epoch %d, capacity %d)", hello.owner, hello.lease_epoch, hello.capacity,
                 extra={"vp_id": hello.vp_id, "lease_epoch": hello.lease_epoch})
        return connection

    async def _reconcile(self, connection: WorkerConnection, reported: set[str]) -> tuple[set[str], Effects]:
        """Adopt this worker's runs, end older terms' runs, re-send pending cancels."""
        now = self.core.clock.now()
        # Effects are applied by hello, after the welcome.
        owned, effects = await self.core.transact(lambda tx, routes: transitions.reconcile_worker(
            tx, connection.vp_id, owner=connection.owner, lease_epoch=connection.lease_epoch, now=now, routes=routes),
            apply=False)
        for record in owned:
            connection.running[record.mission_id] = record.attempt
            connection.assigned_at[record.mission_id] = now
        owned_ids = {record.mission_id for record in owned}
        connection.reported = reported & owned_ids
        connection.reported_at = now
        return reported - owned_ids, effects

    # --- heartbeat, started, progress ---------------------------------------------------
    async def heartbeat(self, connection: WorkerConnection, beat: wc_pb.WorkerHeartbeat) -> None:
        """Renew the worker's lease and confirm it (LeaseRenewed). Handled beside
        the in-order messages (servicers.py), so no result or progress write
        delays it. An expired epoch is never renewed: the stream ends instead."""
        self._fence(connection, beat.lease_epoch)
        now = self.core.clock.now()
        connection.last_heartbeat_at = now
        if connection.expired(now):
            raise liveness.expired_error(connection)
        try:
            session = await self.core.registry.renew(connection.vp_id, connection.owner, connection.lease_epoch,
                                                     connection.lease_ttl)
            connection.lease_expires_at = from_timestamp(session.lease_expires_at)
            # The worker trusts its term only as far as renewals it has seen confirmed.
            connection.send(wc_pb.ConnectResponse(lease_renewed=wc_pb.LeaseRenewed(
                lease_epoch=connection.lease_epoch, heartbeat_seq=beat.seq,
                granted_ttl=to_duration(from_timestamp(session.lease_expires_at)
                                        - from_timestamp(session.last_heartbeat_at)),
                lease_expires_at=session.lease_expires_at)))
        except LeaseSuperseded as refused:
            raise superseded(connection.vp_id, connection.lease_epoch,
                             int(refused.metadata.get("current_epoch", 0)),
                             refused.metadata.get("current_owner", "")) from None
        except DependencyUnavailable as error:
            # The worker keeps its stream; the lease may lapse and the supervisor handles that.
            log.warning("lease renew for %s failed: %s", connection.vp_id, error.message,
                        extra={"vp_id": connection.vp_id})
        connection.reported = set(beat.running_mission_ids)
        connection.reported_at = self.core.clock.now()

    async def started(self, connection: WorkerConnection, started: wc_pb.MissionStarted) -> None:
        self._fence(connection, started.lease_epoch)

    async def progress(self, connection: WorkerConnection, progress: wc_pb.MissionProgress) -> None:
        """Lines are collected per stream and written by the next group commit,
        all that arrived until it starts in one go; the stream is not held until
        they commit. Order still holds: a result of the stream commits after its
        earlier lines (group_commit)."""
        self._fence(connection, progress.lease_epoch)
        if (progress.mission_id, progress.attempt) in connection.handed_back:
            return  # a handed-back run's late output
        if progress.seq <= connection.progress_seq.get(progress.mission_id, 0):
            return  # a resend after reconnect: already recorded
        connection.progress_seq[progress.mission_id] = progress.seq
        payload = MessageToDict(progress.payload) if progress.HasField("payload") else {}
        connection.progress_lines.append(transitions.ProgressLine(
            progress.mission_id, progress.attempt, progress.seq, progress.message, payload, self.core.clock.now()))
        if connection.progress_flush is None:
            connection.progress_flush = self.core.commits.submit_later(lambda: self._take_lines(connection))
            connection.progress_flush.add_done_callback(lambda done: self._lines_committed(connection, done))

    def _take_lines(self, connection: WorkerConnection):
        lines, connection.progress_lines = connection.progress_lines, []
        connection.progress_flush = None  # lines from now on go to the next group
        return lambda tx: transitions.progress(tx, lines, owner=connection.owner, lease_epoch=connection.lease_epoch)

    def _lines_committed(self, connection: WorkerConnection, done) -> None:
        if done.cancelled():
            return
        if done.exception() is not None:
            # Not stored: end the stream; the worker reconnects, and the lines are not lost silently.
            log.warning("progress lines of %s not stored: %s", connection.vp_id, done.exception(),
                        extra={"vp_id": connection.vp_id})
            connection.progress_seq.clear()
            connection.end(DependencyUnavailable("progress could not be stored; reconnect and resend"))
            return
        self.core.apply(done.result())

    # --- result ---------------------------------------------------------------------------
    async def result(self, connection: WorkerConnection, result: wc_pb.MissionResult) -> None:
        self._fence(connection, result.lease_epoch)
        reported = PROTO_TO_STATE.get(result.outcome)
        if reported not in transitions.WORKER_OUTCOMES:
            raise InvalidArgument(FieldViolation("result.outcome", "must be COMPLETED, FAILED, CANCELLED, BLOCKED "
                                                                   "or TIMED_OUT"))
        if (result.mission_id, result.attempt) in connection.handed_back:
            # A handed-back run's late output: acknowledged, changes nothing.
            record = await self.store.aread(lambda tx: tx.get_mission(result.mission_id))
            connection.send(wc_pb.ConnectResponse(result_accepted=wc_pb.ResultAccepted(
                mission_id=result.mission_id, attempt=result.attempt,
                state=STATE_TO_PROTO[record.state] if record is not None else 0)))
            return
        result_ref = self._checked_result_ref(connection, result)
        now = self.core.clock.now()
        error = result.error if result.HasField("error") else None

        def work(tx, routes):
            return transitions.result(
                tx, result.mission_id, owner=connection.owner, lease_epoch=connection.lease_epoch,
                attempt=result.attempt, reported=reported, result_ref=result_ref,
                error_code=error.code if error else None, error_message=error.message if error else "",
                summary=result.summary, now=now, routes=routes, report=agent_report(result))

        record = await self.core.transact(work)
        connection.running.pop(result.mission_id, None)
        connection.progress_seq.pop(result.mission_id, None)
        self.core.request_pump(connection.vp_id)
        state = STATE_TO_PROTO[record.state] if record is not None else 0
        connection.send(wc_pb.ConnectResponse(result_accepted=wc_pb.ResultAccepted(
            mission_id=result.mission_id, attempt=result.attempt, state=state)))

    async def hand_back(self, connection: WorkerConnection, back: wc_pb.MissionHandBack) -> None:
        """A draining worker gives a run back (its processes are gone): re-queued
        at once with the same attempt; anything the run still sends is refused."""
        self._fence(connection, back.lease_epoch)
        if (back.mission_id, back.attempt) in connection.handed_back:
            record = await self.store.aread(lambda tx: tx.get_mission(back.mission_id))
        else:
            now = self.core.clock.now()
            record = await self.core.transact(lambda tx, routes: transitions.give_back(
                tx, back.mission_id, owner=connection.owner, lease_epoch=connection.lease_epoch,
                attempt=back.attempt, reason=back.reason, now=now))
            connection.handed_back.add((back.mission_id, back.attempt))
        connection.running.pop(back.mission_id, None)
        connection.assigned_at.pop(back.mission_id, None)
        connection.progress_seq.pop(back.mission_id, None)
        log.info("worker %s handed %s attempt %d back (%s)", connection.owner, back.mission_id, back.attempt,
                 back.reason or "-", extra={"vp_id": connection.vp_id, "mission_id": back.mission_id})
        state = STATE_TO_PROTO[record.state] if record is not None else 0
        connection.send(wc_pb.ConnectResponse(result_accepted=wc_pb.ResultAccepted(
            mission_id=back.mission_id, attempt=back.attempt, state=state)))

    async def draining(self, connection: WorkerConnection, draining: wc_pb.WorkerDraining) -> None:
        self._fence(connection, draining.lease_epoch)
        connection.draining = True
        log.info("worker %s draining", connection.owner, extra={"vp_id": connection.vp_id})

    def _checked_result_ref(self, connection: WorkerConnection, result: wc_pb.MissionResult) -> str:
        """Only a directory inside the worker's own session workspace may become a
        result_ref: ReadResultArtifacts later serves whatever it names."""
        if not result.result_ref:
            return ""
        parsed = urlparse(result.result_ref)
        path = Path(unquote(parsed.path)).resolve() if parsed.scheme == "file" else None
        workspace = Path(connection.workspace_dir).resolve() if connection.workspace_dir else None
        if path is None or workspace is None or not path.is_relative_to(workspace):
            log.warning("result_ref %s of %s is outside the session workspace; dropped", result.result_ref,
                        result.mission_id, extra={"mission_id": result.mission_id, "vp_id": connection.vp_id})
            return ""
        return result.result_ref

    # --- fencing -----------------------------------------------------------------------------
    @staticmethod
    def _fence(connection: WorkerConnection, lease_epoch: int) -> None:
        if lease_epoch != connection.lease_epoch:
            raise superseded(connection.vp_id, lease_epoch, connection.lease_epoch, connection.owner)


_BLOCKED_REASONS = {enums_pb2.BLOCKED_REASON_INPUT_REQUIRED: agent_results.INPUT_REQUIRED,
                    enums_pb2.BLOCKED_REASON_BUDGET_EXCEEDED: agent_results.BUDGET_EXCEEDED}


def agent_report(result: wc_pb.MissionResult) -> AgentReport:
    """The agent protocol v1 fields of a result; numbers a worker got wrong count as 0."""
    usage = result.usage
    return AgentReport(
        input_tokens=max(0, usage.input_tokens), output_tokens=max(0, usage.output_tokens),
        cached_input_tokens=max(0, usage.cached_input_tokens),
        cost_usd=usage.cost_usd if math.isfinite(usage.cost_usd) and usage.cost_usd > 0 else 0.0,
        model=usage.model[:128], blocked_reason=_BLOCKED_REASONS.get(result.blocked_reason, ""),
        question=result.input_request.question[:8192], choices=[c[:256] for c in result.input_request.choices[:20]],
        conversation_agent=result.conversation.agent[:64], conversation_id=result.conversation.conversation_id[:256],
    )
