"""What every dispatcher part shares: store, clock, registry, connected workers,
and what to do after a transaction commits (wake waiters, push work, relay
cancels)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from services.common.clock import Clock
from services.common.contracts.vp.v1 import mission_pb2
from services.common.contracts.vp.v1 import worker_channel_service_pb2 as wc_pb
from services.common.states import MissionState
from services.common.store.interface import Store
from services.common.store.records import MissionRecord
from services.common.telemetry import tracing
from services.dispatcher import metrics_hooks, registry_blip, transitions
from services.dispatcher.effects import Effects
from services.dispatcher.group_commit import GroupCommit
from services.dispatcher.mission_proto import STATE_TO_PROTO, mission_to_proto
from services.dispatcher.notifier import Notifier
from services.dispatcher.registry_port import Registry
from services.dispatcher.routing import (
    LaneState,
    Reason,
    RoutingDecision,
    decide,
    decide_by_intent,
    route_after_failure,
)
from services.dispatcher.runtime_flags import FlagsView
from services.dispatcher.settings import DispatcherSettings
from services.dispatcher.worker_hub import WorkerConnection, WorkerHub

log = logging.getLogger(__name__)
M = MissionState
T = TypeVar("T")


def span_attributes(record: MissionRecord) -> dict:
    return {"mission_id": record.mission_id, "vp_id": record.lane or record.vp_id, "session_id": record.session_id,
            "run_id": record.run_id, "attempt": record.attempt}


class DispatcherCore:
    def __init__(self, store: Store, clock: Clock, settings: DispatcherSettings, registry: Registry) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.registry = registry
        self.hub = WorkerHub()
        self.notifier = Notifier()
        # Every write of the hot path goes through one group commit per loop turn.
        self.commits = GroupCommit(store)
        # Lanes that may have queued missions (unknown counts as yes), and a
        # generation per lane so a claim that found the queue empty cannot hide
        # a mission queued while it ran: claims happen only when there is work.
        self._maybe_queued: dict[str, bool] = {}
        self._queued_generation: dict[str, int] = {}
        self._background: set[asyncio.Task] = set()
        self._load: dict | None = None
        self._load_at = 0.0
        # Flags and quotas live in the store (seeded from settings.flags at first start).
        self.flags = FlagsView(store, clock, settings.lanes, settings.flags)
        self.intent = settings.intent_rules()
        metrics_hooks.init_lanes(settings.lanes)

    # --- routing inputs ----------------------------------------------------
    async def lane_states(self) -> dict[str, LaneState]:
        """Health and load of every lane. Load is read at most once per
        health_cache_ttl: capacity limits are soft by that much, and a burst of
        dispatches costs one grouped query instead of one per mission."""
        health = registry_blip.bridged(await self.registry.lanes(), self.registry.last_known(), self.hub,
                                       self.clock.now(), self.settings.heartbeat_interval)
        now = time.monotonic()
        if self._load is None or now - self._load_at >= self.settings.health_cache_ttl.total_seconds():
            self._load = await self.store.aread(lambda tx: tx.count_by_lane([M.RUNNING, M.QUEUED]))
            self._load_at = now
        states = {
            lane: LaneState(healthy=lane in health and health[lane].healthy,
                            in_flight=self._load.get(lane, {}).get(M.RUNNING, 0),
                            queued=self._load.get(lane, {}).get(M.QUEUED, 0))
            for lane in self.settings.lanes
        }
        metrics_hooks.lanes_observed(states, {lane: view.lease_live for lane, view in health.items()})
        return states

    async def route(self, vp_id: str, mission_type: str, *, full: frozenset[str] = frozenset()) -> RoutingDecision:
        """Route to vp_id, or by the intent rule of mission_type when vp_id is "".
        full: lanes the dispatch transaction found at their quota (routed as over capacity)."""
        snapshot = await self.flags.current()
        states = await self.lane_states()
        for lane in full:
            states[lane] = LaneState(healthy=states[lane].healthy, in_flight=snapshot.lanes[lane].max_in_flight,
                                     queued=snapshot.lanes[lane].max_queue_depth)
        if not vp_id:
            rule = self.intent.rule_for(mission_type)
            if rule is None:  # envelope validation refuses this before routing
                raise ValueError(f"no intent rule for mission_type {mission_type!r}")
            return decide_by_intent(mission_type=mission_type, rule=rule, lanes=snapshot.lanes, states=states,
                                    flags=snapshot.flags)
        return decide(requested_vp_id=vp_id, mission_type=mission_type, lanes=snapshot.lanes, states=states,
                      flags=snapshot.flags)

    async def failure_decision(self, record: MissionRecord, reason: Reason) -> RoutingDecision:
        """Where a mission goes when its lane gives up (routing.route_after_failure)."""
        lane = metrics_hooks.lane_of(record)
        snapshot = await self.flags.current()
        states = await self.lane_states() if reason != Reason.TIMED_OUT and lane in self.settings.lanes else {}
        return route_after_failure(lane=lane, reason=reason, lanes=snapshot.lanes, states=states,
                                   flags=snapshot.flags, requested_vp_id=record.vp_id)

    async def transact(self, fn: Callable[..., tuple[T, Effects]], *, apply: bool = True):
        """Run fn(tx, routes) -> (result, effects) in one store transaction, then
        apply its effects and return result (with apply=False: return both). If the transition needs a failure route it was not
        given (transitions.NeedsRoute), look it up and run the transaction again:
        lane health is I/O and must not happen inside a transaction."""
        routes: dict[str, RoutingDecision] = {}
        while True:
            try:
                result, effects = await self.commits.run(lambda tx: fn(tx, routes))
            except transitions.NeedsRoute as need:
                if need.record.mission_id in routes:
                    raise RuntimeError(f"route for {need.record.mission_id} asked twice") from need
                routes[need.record.mission_id] = await self.failure_decision(need.record, need.reason)
                continue
            if not apply:
                return result, effects
            self.apply(effects)
            return result

    # --- after commit --------------------------------------------------------
    def apply(self, effects: Effects) -> None:
        metrics_hooks.after_commit(effects)
        for lane in effects.queued_lanes:
            if lane:
                self._queued(lane)
        freed_lanes = set()
        for record in effects.freed:
            connection = self.hub.current(record.lane, record.worker_owner, record.lease_epoch)
            if connection is not None:
                connection.running.pop(record.mission_id, None)
                connection.assigned_at.pop(record.mission_id, None)
                freed_lanes.add(record.lane)
        for record, final_state in effects.cancels:
            self.push_cancel(record, final_state)
        for record in effects.terminal:
            self.notifier.mission_changed(record.mission_id, record)
            if record.shadow_of_mission_id:
                self.notifier.mission_changed(record.shadow_of_mission_id)
            # DEBUG: the event log already has every change; INFO per mission costs the hot path.
            log.debug("mission %s %s", record.mission_id, record.state.value,
                      extra={"mission_id": record.mission_id, "vp_id": record.lane, "attempt": record.attempt})
        for lane in effects.queued_lanes | freed_lanes:
            if lane:
                self.request_pump(lane)
        if effects.events:
            self.notifier.events_appended()

    def streams_changed(self) -> None:
        """A worker stream attached or detached."""
        metrics_hooks.worker_streams(self.hub, self.settings.lanes)

    def push_cancel(self, record: MissionRecord, final_state: MissionState) -> None:
        connection = self.hub.current(record.lane, record.worker_owner, record.lease_epoch)
        if connection is None:
            return  # persisted: re-sent when the worker says hello again
        connection.send(wc_pb.ConnectResponse(cancel=wc_pb.MissionCancel(
            mission_id=record.mission_id, reason=record.cancel_reason or final_state.value,
            final_state=STATE_TO_PROTO[final_state])))

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- pushing work ----------------------------------------------------------
    def _queued(self, lane: str) -> None:
        self._maybe_queued[lane] = True
        self._queued_generation[lane] = self._queued_generation.get(lane, 0) + 1

    def request_pump(self, lane: str, *, look: bool = False) -> None:
        """Assign queued work of a lane to its worker, if it may have any (look:
        claim anyway, e.g. for work queued through another replica). Coalesces:
        while a pump runs, further requests just make it go round once more."""
        if look:
            self._queued(lane)
        connection = self.hub.current(lane)
        if connection is None or connection.free == 0 or not self._maybe_queued.get(lane, True):
            return
        if connection.pump_lock.locked():
            connection.pump_again = True
            return
        self.spawn(self._pump(connection))

    async def _pump(self, connection: WorkerConnection) -> None:
        async with connection.pump_lock:
            while True:
                connection.pump_again = False
                await self._assign(connection)
                if not connection.pump_again:
                    return

    async def _assign(self, connection: WorkerConnection) -> None:
        lane = connection.vp_id
        while connection.free > 0 and self._maybe_queued.get(lane, True):
            limit = connection.free
            generation = self._queued_generation.get(lane, 0)

            def claim(tx):
                return transitions.assign(tx, connection.vp_id, limit, owner=connection.owner,
                                          session_id=connection.session_id, lease_epoch=connection.lease_epoch,
                                          now=self.clock.now(), default_max_duration=self.settings.default_max_duration)

            try:
                assigned, effects = await self.commits.run(claim)
            except Exception:
                log.exception("assigning work on %s failed; the supervisor will retry", connection.vp_id)
                return
            now = self.clock.now()
            for record in assigned:
                connection.running[record.mission_id] = record.attempt
                connection.assigned_at[record.mission_id] = now
                trace_context = record.envelope.get("trace") or {}
                with tracing.span("vp.assign", traceparent=trace_context.get("traceparent", ""),
                                  tracestate=trace_context.get("tracestate", ""),
                                  attributes=span_attributes(record)):
                    traceparent, tracestate = tracing.current_traceparent()
                connection.send(wc_pb.ConnectResponse(assignment=wc_pb.MissionAssignment(
                    mission=mission_to_proto(record), run_id=record.run_id,
                    trace=mission_pb2.TraceContext(traceparent=traceparent, tracestate=tracestate))))
            if effects.events:
                self.notifier.events_appended()
            if len(assigned) < limit:
                if self._queued_generation.get(lane, 0) == generation:
                    self._maybe_queued[lane] = False
                return

    async def close(self) -> None:
        await self.commits.close()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
