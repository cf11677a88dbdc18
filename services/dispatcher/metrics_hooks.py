"""The dispatcher's Prometheus metrics, observed from what it already knows.

Counters and histograms are observed only after a transaction commits
(DispatcherCore.apply over the transaction's Effects): the store may run a
transaction function more than once, and a retried attempt must not count twice.
Shadow copies are comparisons, not missions of record: they are left out of the
mission counters. Labels are lanes (configured vp_ids), never mission ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from services.common.store.records import MissionRecord
from services.common.telemetry.metrics import (
    AGENT_COST,
    AGENT_TOKENS,
    FALLBACK_REASONS,
    FALLBACKS,
    LANE_IN_FLIGHT,
    LANE_LIVE_SESSION,
    LANE_QUEUE_DEPTH,
    MISSION_DURATION,
    MISSION_QUEUE_WAIT,
    MISSIONS_DISPATCHED,
    MISSIONS_FINISHED,
    OUTCOMES,
    REQUEUE_REASONS,
    REQUEUES,
    ROUTES,
    WORKER_STREAMS,
)

from services.dispatcher.effects import Effects

if TYPE_CHECKING:
    from services.dispatcher.routing import LaneState
    from services.dispatcher.worker_hub import WorkerHub


def lane_of(record: MissionRecord) -> str:
    return record.lane or record.vp_id


def init_lanes(lanes: Iterable[str]) -> None:
    """Create the zero series of every configured lane, so rate() panels and
    alerts have a series before the first event. Histograms are left alone: an
    empty one would give every lane a NaN latency quantile."""
    for lane in lanes:
        for route in ROUTES:
            MISSIONS_DISPATCHED.labels(lane, route)
        for reason in FALLBACK_REASONS:
            FALLBACKS.labels(lane, reason)
        for reason in REQUEUE_REASONS:
            REQUEUES.labels(lane, reason)
        for outcome in OUTCOMES:
            MISSIONS_FINISHED.labels(lane, outcome)
        for gauge in (WORKER_STREAMS, LANE_IN_FLIGHT, LANE_QUEUE_DEPTH, LANE_LIVE_SESSION):
            gauge.labels(lane).set(0)


def after_commit(effects: Effects) -> None:
    for lane, route in effects.dispatched:
        MISSIONS_DISPATCHED.labels(lane, route).inc()
    for lane, reason in effects.fallbacks:
        FALLBACKS.labels(lane, reason).inc()
    for lane, reason in effects.requeues:
        REQUEUES.labels(lane, reason).inc()
    for record in effects.terminal:
        finished(record)
    for lane, report in effects.usage:
        agent_usage(lane, report)


def agent_usage(lane: str, report) -> None:
    """Tokens and cost an accepted result reported (agent protocol v1), by lane and model."""
    model = report.model or "unknown"
    for kind, value in (("input", report.input_tokens), ("output", report.output_tokens),
                        ("cached_input", report.cached_input_tokens)):
        if value:
            AGENT_TOKENS.labels(lane, model, kind).inc(value)
    if report.cost_usd:
        AGENT_COST.labels(lane, model).inc(report.cost_usd)


def finished(record: MissionRecord) -> None:
    """A mission reached a terminal state (or BLOCKED)."""
    if record.shadow_of_mission_id:
        return
    lane, outcome = lane_of(record), record.state.value
    MISSIONS_FINISHED.labels(lane, outcome).inc()
    end = record.completed_at or record.updated_at
    if record.created_at is not None and end is not None:
        MISSION_DURATION.labels(lane, outcome).observe(max(0.0, (end - record.created_at).total_seconds()))
    if record.queue_wait_seconds is not None and record.started_at is not None:
        MISSION_QUEUE_WAIT.labels(lane, outcome).observe(max(0.0, record.queue_wait_seconds))


def lanes_observed(states: Mapping[str, LaneState], live: Mapping[str, bool]) -> None:
    """Load and health of every configured lane, as routing just read them."""
    for lane, state in states.items():
        LANE_IN_FLIGHT.labels(lane).set(state.in_flight)
        LANE_QUEUE_DEPTH.labels(lane).set(state.queued)
        LANE_LIVE_SESSION.labels(lane).set(1 if live.get(lane) else 0)


def worker_streams(hub: WorkerHub, lanes: Iterable[str]) -> None:
    """Connected streams per configured lane, from the hub (0 or 1: one stream per lane)."""
    for lane in lanes:
        connection = hub.connections.get(lane)
        WORKER_STREAMS.labels(lane).set(1 if connection is not None and not connection.closed else 0)
