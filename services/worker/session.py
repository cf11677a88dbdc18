"""The worker's lease on its VP session, held through the SessionRegistry.

* ``acquire()``: AcquireLease, waiting (with backoff) while a previous
  incarnation's lease is still live (LEASE_HELD) or the registry is
  unreachable. The registry returns the session; on a resume its stored
  workspace_dir and session_id are kept (session continuity).
* ``renew()``: direct RenewLease, used only while the dispatcher stream is down
  (while connected the dispatcher renews on every heartbeat).
* ``release()``: ReleaseLease at a clean shutdown with nothing left in flight.

A LEASE_SUPERSEDED answer (or a vanished/retired session on renew) raises
LeaseLost: the term is over and the worker must stop acting on it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import metadata

import grpc

from services.common.clock import Clock, SystemClock
from services.common.contracts.vp.v1 import session_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as reg_grpc
from services.common.errors import error_info
from services.common.grpc_options import CHANNEL_OPTIONS
from services.common.timeutil import to_duration
from services.worker.lane_config import LaneConfig
from services.worker.trust import Monotonic, TrustWindow, granted_ttl

log = logging.getLogger("vp.worker.session")

#: The shared channel options: keepalive matched with the servers and a
#: reconnect backoff bounded to about a second (grpc's default grows to 120 s,
#: which would defeat the worker's own ~2 s reconnect).
WORKER_CHANNEL_OPTIONS: list[tuple[str, int]] = list(CHANNEL_OPTIONS)

#: Deadline of one registry call.
CALL_TIMEOUT = 5.0
#: Transient gRPC codes: retry with backoff.
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED,
                       grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})


class LeaseLost(Exception):
    """The lease term is over (LEASE_SUPERSEDED): stop every run, report nothing."""


class TrustLapsed(LeaseLost):
    """The term's trust window ran out without a confirmed renewal (trust.py):
    handled like a lost term; the worker acquires a new one."""


class WorkerFatal(Exception):
    """A condition retrying cannot fix (retired session, invalid request)."""


def runtime_id() -> str:
    try:
        version = metadata.version("vp-mission-control")
    except metadata.PackageNotFoundError:
        version = "0.0.0"
    return f"vp-worker/{version}"


def make_owner() -> str:
    """Lease holder identity, unique per process: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def reason_of(error: grpc.RpcError) -> str:
    try:
        info = error_info(error)
    except Exception:  # noqa: BLE001 - malformed details read as "no reason"
        info = None
    return info.reason if info is not None else ""


def metadata_of(error: grpc.RpcError) -> dict[str, str]:
    try:
        info = error_info(error)
    except Exception:  # noqa: BLE001
        info = None
    return dict(info.metadata) if info is not None else {}


class Backoff:
    """Jittered exponential backoff ("full jitter" on the upper half), capped."""

    def __init__(self, initial: float = 0.1, maximum: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def reset(self) -> None:
        self._next = self.initial

    def next(self) -> float:
        value = self._next
        self._next = min(self.maximum, self._next * 2)
        return random.uniform(value / 2, value)


@dataclass(frozen=True)
class Term:
    """One lease term: what every message acting on a mission carries."""

    vp_id: str
    owner: str
    session_id: str
    lease_epoch: int
    workspace_dir: str
    session: session_pb2.VpSession


class LeaseKeeper:
    def __init__(self, config: LaneConfig, *, owner: str | None = None, runtime: str | None = None,
                 clock: Clock | None = None, monotonic: Monotonic | None = None) -> None:
        self.config = config
        #: How long the current term may still be acted on (trust.py).
        self.trust = TrustWindow(monotonic) if monotonic is not None else TrustWindow()
        self.owner = owner or make_owner()
        self.runtime_id = runtime or runtime_id()
        self.clock = clock or SystemClock()
        self.term: Term | None = None
        self._channel = config.security.aio_channel(config.registry_addr, WORKER_CHANNEL_OPTIONS)
        self._stub = reg_grpc.SessionRegistryStub(self._channel)
        self._extra = {"vp_id": config.vp_id}

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=float(self.config.lease_ttl))

    async def close(self) -> None:
        await self._channel.close()

    # -- acquire ----------------------------------------------------------

    async def acquire(self, stop: asyncio.Event | None = None, *, after_epoch: int = 0) -> Term | None:
        """Acquire a lease term, waiting as long as it takes; None if ``stop`` is set first.

        ``after_epoch``: the term must be newer than this one (after LEASE_SUPERSEDED
        the old term must not be picked up again as REACQUIRED)."""
        stop = stop or asyncio.Event()
        backoff = Backoff(self.config.backoff_initial, self.config.backoff_max)
        request = reg_pb.AcquireLeaseRequest(
            vp_id=self.config.vp_id, owner=self.owner, runtime_id=self.runtime_id,
            workspace_dir=str(self.config.default_workspace_dir), ttl=to_duration(self.ttl),
        )
        last_wait_note: tuple[str, str] | None = None
        failures = 0
        while not stop.is_set():
            attempt_started = self.trust.now()
            try:
                reply = await self._stub.AcquireLease(request, timeout=CALL_TIMEOUT)
            except grpc.aio.AioRpcError as error:
                code, reason = error.code(), reason_of(error)
                if reason == "LEASE_HELD":
                    meta = metadata_of(error)
                    holder, until = meta.get("holder", "?"), meta.get("lease_expires_at", "?")
                    if (holder, until) != last_wait_note:
                        log.info("waiting for lease held by %s until %s (epoch %s)", holder, until,
                                 meta.get("lease_epoch", "?"), extra=self._extra)
                        last_wait_note = (holder, until)
                    delay = min(self.config.backoff_max, max(0.05, self._seconds_until(until)) + 0.05)
                elif reason == "SESSION_RETIRED":
                    raise WorkerFatal(f"session {self.config.vp_id!r} is retired: {error.details()}") from None
                elif code == grpc.StatusCode.INVALID_ARGUMENT:
                    raise WorkerFatal(f"registry refused AcquireLease: {error.details()}") from None
                else:
                    failures += 1
                    if failures % 30 == 1 or code not in TRANSIENT:
                        log.warning("registry %s: AcquireLease failed (%s: %s); retrying (attempt %d)",
                                    self.config.registry_addr, code.name, error.details(), failures,
                                    extra=self._extra)
                    delay = backoff.next()
                if await _wait(stop, delay):
                    return None
                continue

            session = reply.session
            if session.lease_epoch <= after_epoch:
                # Same owner, same live term (REACQUIRED) after it was declared
                # superseded: give it up and take a fresh term.
                log.info("lease term epoch %d is the superseded one; releasing it to start a new term",
                         session.lease_epoch, extra=self._extra)
                await self._release_term(session.lease_epoch)
                if await _wait(stop, backoff.next()):
                    return None
                continue
            self.term = Term(vp_id=session.vp_id, owner=self.owner, session_id=session.session_id,
                             lease_epoch=session.lease_epoch, workspace_dir=session.workspace_dir, session=session)
            self.trust.reset()
            self.trust.confirm(attempt_started, granted_ttl(session))
            outcome = reg_pb.AcquireOutcome.Name(reply.outcome).removeprefix("ACQUIRE_OUTCOME_").lower()
            log.info("lease acquired on %s: epoch %d, session %s (%s), workspace %s", session.vp_id,
                     session.lease_epoch, session.session_id, outcome, session.workspace_dir,
                     extra={**self._extra, "session_id": session.session_id, "lease_epoch": session.lease_epoch})
            return self.term
        return None

    def _seconds_until(self, iso: str) -> float:
        try:
            when = datetime.fromisoformat(iso)
        except (TypeError, ValueError):
            return self.config.backoff_max
        if when.tzinfo is None:
            return self.config.backoff_max
        return (when - self.clock.now()).total_seconds()

    # -- renew / release ----------------------------------------------------

    async def renew(self) -> session_pb2.VpSession:
        """Direct RenewLease of the current term. LeaseLost if it is over;
        grpc.aio.AioRpcError for anything transient (the caller retries).
        TrustLapsed once the trust window is over: an expired term is never
        renewed, the worker starts a new one."""
        term = self._require_term()
        if not self.trust.trusted():
            raise TrustLapsed(f"trust in lease epoch {term.lease_epoch} lapsed; not renewing it")
        attempt_started = self.trust.now()
        try:
            reply = await self._stub.RenewLease(
                reg_pb.RenewLeaseRequest(vp_id=term.vp_id, owner=term.owner, lease_epoch=term.lease_epoch,
                                         ttl=to_duration(self.ttl)),
                timeout=CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            reason = reason_of(error)
            if reason in ("LEASE_SUPERSEDED", "SESSION_NOT_FOUND", "SESSION_RETIRED"):
                raise LeaseLost(f"RenewLease: {reason}: {error.details()}") from None
            raise
        if reply.session.lease_epoch == term.lease_epoch:
            self.trust.confirm(attempt_started, granted_ttl(reply.session))
        return reply.session

    async def get_session(self) -> session_pb2.VpSession:
        reply = await self._stub.GetSession(reg_pb.GetSessionRequest(vp_id=self.config.vp_id), timeout=CALL_TIMEOUT)
        return reply.session

    async def set_conversation(self, conversation: session_pb2.AgentConversation) -> session_pb2.VpSession:
        """SetConversation under the current term (the registry fences it like RenewLease)."""
        term = self._require_term()
        reply = await self._stub.SetConversation(
            reg_pb.SetConversationRequest(vp_id=term.vp_id, owner=term.owner, lease_epoch=term.lease_epoch,
                                          conversation=conversation),
            timeout=CALL_TIMEOUT,
        )
        return reply.session

    async def release(self) -> bool:
        """ReleaseLease of the current term; True if the session was released."""
        if self.term is None:
            return False
        released = await self._release_term(self.term.lease_epoch)
        if released:
            self.term = None
        return released

    async def _release_term(self, epoch: int) -> bool:
        try:
            await self._stub.ReleaseLease(
                reg_pb.ReleaseLeaseRequest(vp_id=self.config.vp_id, owner=self.owner, lease_epoch=epoch),
                timeout=CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            log.warning("ReleaseLease (epoch %d) failed: %s %s: %s", epoch, error.code().name, reason_of(error),
                        error.details(), extra=self._extra)
            return False
        log.info("lease released (epoch %d)", epoch, extra={**self._extra, "lease_epoch": epoch})
        return True

    def _require_term(self) -> Term:
        if self.term is None:
            raise RuntimeError("no lease term held")
        return self.term


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    """Wait up to ``timeout`` for ``event``; True if it is set."""
    if event.is_set():
        return True
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        return False
    return True
