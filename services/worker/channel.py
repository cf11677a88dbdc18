"""The worker's side of WorkerChannel.Connect, for one lease term.

``serve_term(term)`` keeps a stream to the dispatcher open for as long as the
term lasts:

* connect: send ``hello`` (vp_id, owner, session_id, lease_epoch, capacity,
  runtime_id, running_mission_ids), wait for ``welcome`` (heartbeat interval,
  revoked_mission_ids -> stopped locally without a result), then resend every
  result not yet acknowledged, and ``draining`` again if the worker drains;
* connected: ``heartbeat`` (numbered) every welcome.heartbeat_interval; the
  dispatcher renews the lease on each and answers ``lease_renewed``, which
  extends the trust window from the moment that heartbeat was sent;
  ``assignment`` -> path check, then a run (a draining worker hands it back at
  once); ``cancel`` -> the run's cancel event; ``result_accepted`` -> the
  result or hand-back is forgotten;
* disconnected: reconnect with jittered exponential backoff (capped), and renew
  the lease directly with the registry meanwhile, so a dispatcher restart
  does not cost the lease;
* the stream ending with FAILED_PRECONDITION / LEASE_SUPERSEDED, or a direct
  renew answering so, ends the term: serve_term raises LeaseLost;
* the trust window (trust.py) running out ends the term too: serve_term raises
  TrustLapsed. Nothing is sent, no run is started and no lease is renewed once
  it has run out, whatever woke the worker (e.g. SIGCONT after a freeze).

Results and hand-backs are kept until ``result_accepted``; ``started`` and ``progress`` are
best effort (sent only while connected; hello/heartbeats carry the running
missions anyway).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict

import grpc
from google.protobuf import struct_pb2

from services.common.contracts.vp.v1 import enums_pb2, mission_pb2
from services.common.contracts.vp.v1 import worker_channel_service_pb2 as wc_pb
from services.common.contracts.vp.v1 import worker_channel_service_pb2_grpc as wc_grpc
from services.common.errors import PathNotAllowed
from services.common.guardrails import PathPolicy
from services.worker.lane_config import LaneConfig
from services.worker.runs import ActiveRun, RunSet, unique
from services.worker.session import (
    WORKER_CHANNEL_OPTIONS,
    Backoff,
    LeaseKeeper,
    LeaseLost,
    Term,
    TrustLapsed,
    reason_of,
)

log = logging.getLogger("vp.worker.channel")

DEFAULT_HEARTBEAT_INTERVAL = 5.0
MIN_HEARTBEAT_INTERVAL = 0.05
#: How long to wait for welcome after hello before trying again.
WELCOME_TIMEOUT = 10.0
#: Stream-ending reasons that mean the lease term is over.
TERM_OVER_REASONS = frozenset({"LEASE_SUPERSEDED", "SESSION_RETIRED", "SESSION_NOT_FOUND"})

ResultKey = tuple[str, int]
#: Heartbeats whose send time is kept for matching a LeaseRenewed.
BEAT_HISTORY = 64
#: How often the trust watcher looks at the clock at most.
TRUST_POLL = 0.1
#: The reason a draining worker gives when it hands a mission back.
DRAINING = "DRAINING"


_USAGE_KEYS = ("input_tokens", "output_tokens", "cached_input_tokens", "total_tokens", "cost_usd", "model")


class DispatcherLink:
    """Implements runs.RunReporter: runs report through it."""

    def __init__(self, config: LaneConfig, keeper: LeaseKeeper, runs: RunSet, policy: PathPolicy) -> None:
        self.config = config
        self.keeper = keeper
        self.runs = runs
        self.policy = policy
        self._channel = config.security.aio_channel(config.dispatcher_addr, WORKER_CHANNEL_OPTIONS)
        self._stub = wc_grpc.WorkerChannelStub(self._channel)
        self._call: grpc.aio.StreamStreamCall | None = None
        self._write_lock = asyncio.Lock()
        self._pending: OrderedDict[ResultKey, wc_pb.ConnectRequest] = OrderedDict()
        self._no_pending = asyncio.Event()
        self._no_pending.set()
        self.connected = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._disconnected.set()
        self._closing = asyncio.Event()
        self.draining = False
        self.term: Term | None = None
        self.connections = 0
        self._failed_attempts = 0
        self._beat_seq = 0
        self._beats_sent: OrderedDict[int, float] = OrderedDict()
        self.trust = keeper.trust
        self._lapsed = asyncio.Event()

    @property
    def _extra(self) -> dict:
        extra: dict = {"vp_id": self.config.vp_id}
        if self.term is not None:
            extra["lease_epoch"] = self.term.lease_epoch
        return extra

    # -- state shared with the service ---------------------------------------

    def in_flight_ids(self) -> list[str]:
        """Missions this worker still owes a result for: running or queued runs,
        plus results not yet acknowledged (they are resent right after hello)."""
        return unique([*self.runs.mission_ids(), *(key[0] for key in self._pending)])

    @property
    def pending_results(self) -> int:
        return len(self._pending)

    async def wait_results_acknowledged(self) -> None:
        await self._no_pending.wait()

    def forget_results(self, mission_id: str | None = None) -> int:
        """Drop unacknowledged results (all of them, or one mission's)."""
        keys = [k for k in self._pending if mission_id is None or k[0] == mission_id]
        for key in keys:
            del self._pending[key]
        if not self._pending:
            self._no_pending.set()
        return len(keys)

    # -- RunReporter -------------------------------------------------------------

    async def started(self, run: ActiveRun) -> None:
        await self._send(wc_pb.ConnectRequest(started=wc_pb.MissionStarted(
            mission_id=run.mission_id, attempt=run.attempt, lease_epoch=run.lease_epoch, run_id=run.run_id)))

    async def progress(self, run: ActiveRun, seq: int, message: str, payload: dict) -> None:
        struct = struct_pb2.Struct()
        try:
            struct.update(json.loads(json.dumps(payload or {}, default=str)))
        except (TypeError, ValueError):
            struct.update({"repr": repr(payload)})
        progress = wc_pb.MissionProgress(mission_id=run.mission_id, attempt=run.attempt, lease_epoch=run.lease_epoch,
                                         seq=seq, message=message, payload=struct)
        usage = (payload or {}).get("usage") if (payload or {}).get("kind") == "usage" else None
        if isinstance(usage, dict):  # agent protocol v1: the run's usage so far
            progress.usage.CopyFrom(mission_pb2.Usage(**{k: usage[k] for k in _USAGE_KEYS if k in usage}))
        await self._send(wc_pb.ConnectRequest(progress=progress))

    async def result(self, run: ActiveRun | None, result: wc_pb.MissionResult) -> None:
        await self._deliver(wc_pb.ConnectRequest(result=result), result.mission_id, result.attempt)

    async def hand_back(self, mission_id: str, attempt: int, reason: str = DRAINING) -> None:
        """Give a mission back: its run is stopped (or never started) here."""
        if self.term is None:
            return
        log.info("handing %s attempt %d back to the dispatcher (%s)", mission_id, attempt, reason,
                 extra={**self._extra, "mission_id": mission_id})
        await self._deliver(wc_pb.ConnectRequest(hand_back=wc_pb.MissionHandBack(
            mission_id=mission_id, attempt=attempt, lease_epoch=self.term.lease_epoch, reason=reason)),
            mission_id, attempt)

    async def _deliver(self, request: wc_pb.ConnectRequest, mission_id: str, attempt: int) -> None:
        """Send and keep until acknowledged (resent after a reconnect)."""
        if not self._check_trust():
            return
        self._pending[(mission_id, attempt)] = request
        self._no_pending.clear()
        await self._send(request)

    # -- sending -------------------------------------------------------------------

    def _check_trust(self) -> bool:
        """Whether the term may still be acted on; on the first "no" the term ends."""
        if self.trust.trusted():
            return True
        if not self._lapsed.is_set():
            log.error("trust in lease epoch %s lapsed %.2fs ago without a confirmed renewal; acting on it no more",
                      self.term.lease_epoch if self.term else "?",
                      self.trust.now() - (self.trust.trusted_until or self.trust.now()), extra=self._extra)
            self._lapsed.set()
        return False

    async def _send(self, request: wc_pb.ConnectRequest) -> bool:
        """Write on the current stream if connected and the term is still
        trusted; False if it could not be sent."""
        call = self._call
        if call is None or not self.connected.is_set():
            return False
        if not self._check_trust():
            return False
        async with self._write_lock:
            if call is not self._call:
                return False
            try:
                await call.write(request)
            except Exception as exc:  # noqa: BLE001 - the read side sees the failure and reconnects
                log.debug("write of %s failed: %r", request.WhichOneof("message"), exc, extra=self._extra)
                return False
        return True

    async def send_draining(self) -> bool:
        self.draining = True
        if self.term is None:
            return False
        return await self._send(wc_pb.ConnectRequest(draining=wc_pb.WorkerDraining(lease_epoch=self.term.lease_epoch)))

    # -- the term loop ---------------------------------------------------------------

    async def serve_term(self, term: Term) -> None:
        """Stay connected for this term. Returns after close(); raises LeaseLost when the term is over."""
        self.term = term
        self._lapsed.clear()
        self._beats_sent.clear()
        backoff = Backoff(self.config.backoff_initial, self.config.backoff_max)
        renewer = asyncio.create_task(self._renew_while_disconnected(term), name="lease-renewer")
        watcher = asyncio.create_task(self._watch_trust(term), name="trust-watcher")
        guards = {renewer, watcher}
        closing = asyncio.create_task(self._closing.wait(), name="link-closing")
        try:
            while not self._closing.is_set():
                stream = asyncio.create_task(self._stream_once(term), name="dispatcher-stream")
                done, _ = await asyncio.wait({stream, closing, *guards}, return_when=asyncio.FIRST_COMPLETED)
                if stream not in done:
                    if closing in done and not done & guards:
                        await self._finish_stream(stream)
                        return
                    await _cancel(stream)
                    _raise_from(done & guards)
                if watcher in done or renewer in done:
                    _raise_from(done & guards)
                if stream.result():  # raises LeaseLost; True if the stream got a welcome
                    backoff.reset()
                if self._closing.is_set():
                    return
                delay = backoff.next()
                done, _ = await asyncio.wait({closing, *guards}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
                _raise_from(done & guards)
        finally:
            await _cancel(renewer)
            await _cancel(watcher)
            await _cancel(closing)

    async def _watch_trust(self, term: Term) -> None:
        """Raise TrustLapsed when the trust window runs out (or a send found it out)."""
        while True:
            remaining = self.trust.remaining()
            if remaining <= 0 or self._lapsed.is_set():
                self._check_trust()
                raise TrustLapsed(f"no renewal of lease epoch {term.lease_epoch} confirmed in time")
            try:
                # Bounded, so that an injected clock moved by a test is noticed too.
                await asyncio.wait_for(self._lapsed.wait(), min(remaining, TRUST_POLL))
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        """Ask serve_term to end: half-close the stream and stop reconnecting."""
        self._closing.set()

    async def _finish_stream(self, stream: asyncio.Task) -> None:
        call = self._call
        if call is not None:
            async with self._write_lock:
                try:
                    await asyncio.wait_for(call.done_writing(), 1.0)
                except Exception:  # noqa: BLE001
                    pass
        try:
            await asyncio.wait_for(asyncio.shield(stream), 2.0)
        except BaseException:  # noqa: BLE001 - closing anyway
            pass
        await _cancel(stream)

    async def aclose(self) -> None:
        await self._channel.close()

    async def _renew_while_disconnected(self, term: Term) -> None:
        """Renew the lease directly while the stream is down; LeaseLost ends the term."""
        interval = self.config.renew_interval
        failures = 0
        while True:
            await self._disconnected.wait()
            try:
                await self.keeper.renew()
                failures = 0
                log.debug("lease renewed directly (disconnected from the dispatcher)", extra=self._extra)
                delay = interval
            except TrustLapsed:
                raise
            except LeaseLost:
                log.error("lease term epoch %d is over (registry: superseded)", term.lease_epoch, extra=self._extra)
                raise
            except grpc.aio.AioRpcError as error:
                failures += 1
                if failures == 1 or failures % 10 == 0:
                    log.warning("direct RenewLease failed (%s: %s); retrying", error.code().name, error.details(),
                                extra=self._extra)
                delay = min(interval, self.config.backoff_max)
            await asyncio.sleep(delay)

    async def _stream_once(self, term: Term) -> bool:
        """One Connect stream, from hello to its end. True if it was welcomed."""
        call = self._stub.Connect()
        self._call = call
        heartbeats: asyncio.Task | None = None
        welcomed = False
        addr = self.config.dispatcher_addr
        try:
            if not self._check_trust():
                return False
            hello = wc_pb.WorkerHello(
                vp_id=self.config.vp_id, owner=term.owner, session_id=term.session_id, lease_epoch=term.lease_epoch,
                capacity=self.config.capacity, runtime_id=self.keeper.runtime_id,
                running_mission_ids=self.in_flight_ids(),
            )
            await call.write(wc_pb.ConnectRequest(hello=hello))
            first = await asyncio.wait_for(call.read(), WELCOME_TIMEOUT)
            if first is grpc.aio.EOF:
                log.warning("dispatcher %s ended the stream before welcome", addr, extra=self._extra)
                return False
            if first.WhichOneof("message") != "welcome":
                log.warning("dispatcher %s sent %s before welcome; reconnecting", addr, first.WhichOneof("message"),
                            extra=self._extra)
                return False
            welcome = first.welcome
            interval = DEFAULT_HEARTBEAT_INTERVAL
            if welcome.HasField("heartbeat_interval") and welcome.heartbeat_interval.ToNanoseconds() > 0:
                interval = max(MIN_HEARTBEAT_INTERVAL, welcome.heartbeat_interval.ToTimedelta().total_seconds())
            for mission_id in welcome.revoked_mission_ids:
                self.runs.revoke(mission_id)
                self.forget_results(mission_id)
            welcomed = True
            self._failed_attempts = 0
            self.connections += 1
            self.connected.set()
            self._disconnected.clear()
            log.info("vp-worker %s connected to %s (epoch %d)", self.config.vp_id, addr, term.lease_epoch,
                     extra={**self._extra, "session_id": term.session_id, "address": addr})
            if self.draining:
                await self.send_draining()
            for (mission_id, attempt), request in list(self._pending.items()):
                log.info("resending unacknowledged %s of %s attempt %d", request.WhichOneof("message"), mission_id,
                         attempt, extra={**self._extra, "mission_id": mission_id})
                await self._send(request)
            heartbeats = asyncio.create_task(self._heartbeats(term, interval), name="heartbeats")
            while True:
                response = await call.read()
                if response is grpc.aio.EOF:
                    if self._closing.is_set():
                        log.info("stream to dispatcher %s closed", addr, extra=self._extra)
                    else:
                        log.warning("dispatcher %s closed the stream; reconnecting", addr, extra=self._extra)
                    break
                try:
                    await self._handle(term, response)
                except Exception:  # noqa: BLE001 - one bad message must not take the worker down
                    log.exception("failed to handle dispatcher message %s", response.WhichOneof("message"),
                                  extra=self._extra)
        except grpc.aio.AioRpcError as error:
            reason = reason_of(error)
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION and reason in TERM_OVER_REASONS:
                log.error("dispatcher ended the stream: %s (%s); lease term epoch %d is over", reason,
                          error.details(), term.lease_epoch, extra=self._extra)
                raise LeaseLost(f"dispatcher: {reason}: {error.details()}") from None
            self._log_stream_error(welcomed, error, reason)
        except asyncio.TimeoutError:
            self._failed_attempts += 1
            log.warning("no welcome from dispatcher %s within %.0fs; reconnecting", addr, WELCOME_TIMEOUT,
                        extra=self._extra)
        except Exception as exc:  # noqa: BLE001 - e.g. InvalidStateError writing to a finished call
            log.warning("dispatcher stream failed: %r; reconnecting", exc, extra=self._extra)
        finally:
            self.connected.clear()
            self._disconnected.set()
            self._call = None
            if heartbeats is not None:
                await _cancel(heartbeats)
            call.cancel()
        return welcomed

    def _log_stream_error(self, welcomed: bool, error: grpc.aio.AioRpcError, reason: str) -> None:
        what = f"{error.code().name}{f' ({reason})' if reason else ''}: {error.details()}"
        if welcomed:
            log.warning("dispatcher stream lost: %s; reconnecting", what, extra=self._extra)
            return
        self._failed_attempts += 1
        # The first failure, then one line every 30 attempts (about a minute at the 2 s cap).
        level = logging.WARNING if self._failed_attempts % 30 == 1 else logging.DEBUG
        log.log(level, "cannot connect to dispatcher %s (attempt %d): %s", self.config.dispatcher_addr,
                self._failed_attempts, what, extra=self._extra)

    async def _heartbeats(self, term: Term, interval: float) -> None:
        # A fixed rate, not a sleep after each send: a slow write must not stretch the gaps.
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due = max(due + interval, loop.time())
            await asyncio.sleep(due - loop.time())
            self._beat_seq += 1
            # The send time anchors the trust window when the renewal is confirmed.
            self._beats_sent[self._beat_seq] = self.trust.now()
            while len(self._beats_sent) > BEAT_HISTORY:
                self._beats_sent.popitem(last=False)
            await self._send(wc_pb.ConnectRequest(heartbeat=wc_pb.WorkerHeartbeat(
                lease_epoch=term.lease_epoch, running_mission_ids=self.in_flight_ids(), seq=self._beat_seq)))

    def _on_lease_renewed(self, term: Term, renewed: wc_pb.LeaseRenewed) -> None:
        sent = self._beats_sent.get(renewed.heartbeat_seq)
        if renewed.lease_epoch != term.lease_epoch or sent is None:
            log.debug("ignoring lease_renewed for epoch %d heartbeat %d", renewed.lease_epoch,
                      renewed.heartbeat_seq, extra=self._extra)
            return
        if not self.trust.trusted():
            return  # too late: an expired term is never trusted again
        self.trust.confirm(sent, renewed.granted_ttl.ToTimedelta().total_seconds())

    # -- dispatcher messages ----------------------------------------------------------

    async def _handle(self, term: Term, response: wc_pb.ConnectResponse) -> None:
        kind = response.WhichOneof("message")
        if kind == "assignment":
            await self._on_assignment(term, response.assignment)
        elif kind == "cancel":
            self._on_cancel(response.cancel)
        elif kind == "lease_renewed":
            self._on_lease_renewed(term, response.lease_renewed)
        elif kind == "result_accepted":
            accepted = response.result_accepted
            request = self._pending.pop((accepted.mission_id, accepted.attempt), None)
            if request is not None:
                log.info("%s of %s attempt %d accepted (%s)", request.WhichOneof("message"), accepted.mission_id,
                         accepted.attempt,
                         enums_pb2.MissionState.Name(accepted.state),
                         extra={**self._extra, "mission_id": accepted.mission_id})
            if not self._pending:
                self._no_pending.set()
        elif kind == "welcome":
            log.debug("ignoring a second welcome", extra=self._extra)
        else:
            log.warning("ignoring unknown dispatcher message %r", kind, extra=self._extra)

    async def _on_assignment(self, term: Term, assignment: wc_pb.MissionAssignment) -> None:
        mission = assignment.mission
        mission_id = mission.envelope.mission_id
        attempt = mission.attempt or 1
        run_id = assignment.run_id or mission.run_id
        extra = {**self._extra, "mission_id": mission_id, "run_id": run_id, "attempt": attempt}
        if not self._check_trust():
            return
        if self.draining:
            log.warning("draining: not taking assignment of %s; handing it back", mission_id, extra=extra)
            await self.hand_back(mission_id, attempt, DRAINING)
            return
        existing = self.runs.get(mission_id)
        if existing is not None and existing.attempt == attempt:
            log.info("assignment of %s attempt %d is already running; ignoring the duplicate", mission_id, attempt,
                     extra=extra)
            return
        pending = self._pending.get((mission_id, attempt))
        if pending is not None:
            log.info("assignment of %s attempt %d already has a result; resending it", mission_id, attempt,
                     extra=extra)
            await self._send(pending)
            return
        for key in [k for k in self._pending if k[0] == mission_id and k[1] < attempt]:
            del self._pending[key]  # the dispatcher has moved on to a newer attempt
        if not self._pending:
            self._no_pending.set()
        log.info("assignment of %s attempt %d (run %s)", mission_id, attempt, run_id, extra=extra)

        target = mission.envelope.target_path
        if target:
            try:
                self.policy.check_target_path(target)
            except PathNotAllowed as exc:
                log.warning("mission %s refused: %s", mission_id, exc.message, extra=extra)
                await self.result(None, wc_pb.MissionResult(
                    mission_id=mission_id, attempt=attempt, lease_epoch=term.lease_epoch,
                    outcome=enums_pb2.MISSION_STATE_FAILED,
                    error=mission_pb2.MissionError(code=PathNotAllowed.reason, message=exc.message),
                    summary="target_path refused by the worker's path policy; nothing was run",
                ))
                return
        self.runs.start(mission, run_id=run_id, lease_epoch=term.lease_epoch, trace=assignment.trace)

    def _on_cancel(self, cancel: wc_pb.MissionCancel) -> None:
        run = self.runs.cancel(cancel.mission_id, cancel.final_state or enums_pb2.MISSION_STATE_CANCELLED,
                               cancel.reason)
        if run is None:
            log.info("cancel for %s, which is not running here (%s)", cancel.mission_id,
                     "result pending" if any(k[0] == cancel.mission_id for k in self._pending) else "unknown",
                     extra={**self._extra, "mission_id": cancel.mission_id})


def _raise_from(done: set[asyncio.Task]) -> None:
    """A guard task (renewer, trust watcher) finished: re-raise why."""
    for task in done:
        task.result()  # raises LeaseLost / TrustLapsed
    if done:
        raise RuntimeError("lease guard stopped unexpectedly")


async def _cancel(task: asyncio.Task) -> None:
    """Cancel a helper task and wait until it is gone (our own cancellation still propagates)."""
    if not task.done():
        task.cancel()
        await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not warn about it
