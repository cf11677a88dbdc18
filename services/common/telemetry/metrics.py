"""The metric catalogue: every Prometheus metric the services export, in one
place, so dashboards, rules and tests name the same things.

Conventions: base units (seconds), counters end in _total, labels are bounded
sets (lane = a configured vp_id, never a mission id).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Mission latencies span milliseconds (no-op benchmarks) to hours (real agents).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
                   7200, 14400)
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# --- dispatcher ----------------------------------------------------------------
MISSIONS_DISPATCHED = Counter(
    "vp_missions_dispatched_total", "Missions accepted by DispatchMission, by requested lane and route decision.",
    ["lane", "route"])
MISSIONS_FINISHED = Counter(
    "vp_missions_finished_total", "Missions that reached a terminal state (or BLOCKED), by lane and outcome.",
    ["lane", "outcome"])
MISSION_DURATION = Histogram(
    "vp_mission_duration_seconds", "Dispatch to terminal state, by lane and outcome.", ["lane", "outcome"],
    buckets=LATENCY_BUCKETS)
MISSION_QUEUE_WAIT = Histogram(
    "vp_mission_queue_wait_seconds", "Dispatch (or re-queue) to assignment, by lane and final outcome.",
    ["lane", "outcome"], buckets=LATENCY_BUCKETS)
FALLBACKS = Counter(
    "vp_mission_fallbacks_total", "Fallbacks, by the lane that fell back and the reason.", ["lane", "reason"])
REQUEUES = Counter("vp_mission_requeues_total", "Missions put back in the queue, by lane and reason.",
                   ["lane", "reason"])
# Agent protocol v1: what agents spent, from accepted results. `model` is what the agent
# reported (a bounded set in practice: the models a deployment configures; "unknown" if none).
AGENT_TOKENS = Counter("vp_agent_tokens_total", "Tokens agents reported, by lane, model and kind "
                       "(input, output, cached_input; cached_input is part of input).", ["lane", "model", "kind"])
AGENT_COST = Counter("vp_agent_cost_usd_total", "Cost in USD agents reported, by lane and model.", ["lane", "model"])
LANE_IN_FLIGHT = Gauge("vp_lane_in_flight", "Missions RUNNING on a lane.", ["lane"])
LANE_QUEUE_DEPTH = Gauge("vp_lane_queue_depth", "Missions QUEUED on a lane.", ["lane"])
LANE_LIVE_SESSION = Gauge("vp_lane_live_session", "1 when the lane has a live, non-stale session.", ["lane"])
WORKER_STREAMS = Gauge("vp_worker_streams", "Connected WorkerChannel streams, by lane.", ["lane"])

# --- registry --------------------------------------------------------------------
SESSIONS = Gauge("vp_sessions", "Sessions by effective status.", ["effective_status"])
SESSIONS_ORPHANED = Gauge("vp_sessions_orphaned",
                          "Sessions whose lease expired without a release and nobody took over "
                          "(DEGRADED or RECOVERING).")
LEASE_EXPIRATIONS = Counter("vp_lease_expirations_total", "Leases the sweeper found expired (ACTIVE -> DEGRADED).",
                            ["lane"])
SESSION_RECOVERIES = Counter(
    "vp_session_recoveries_total",
    "Degraded or recovering sessions brought back to ACTIVE, by how (taken_over, resumed, renewed).", ["outcome"])

# --- every gRPC server -------------------------------------------------------------
RPC_DURATION = Histogram("vp_rpc_duration_seconds", "Server-side RPC latency, by service, method and status code.",
                         ["service", "method", "code"], buckets=RPC_BUCKETS)

# Denials at the edge (services/common/auth/gate.py). reason is a bounded set
# (gate.DENIAL_REASONS); the principal goes to the log, never into a label.
AUTH_DENIALS = Counter("vp_auth_denials_total", "Calls refused as UNAUTHENTICATED or PERMISSION_DENIED, by service, "
                       "method and reason.", ["service", "method", "reason"])

# "shadow": a lane in shadow mode sends the result of record to its fallback (vp.mission.fallback, no reason).
FALLBACK_REASONS = ("disabled", "forced", "unhealthy", "over_capacity", "timed_out", "failed", "worker_lost",
                    "shadow")
ROUTES = ("delegated", "shadow", "fallback")
OUTCOMES = ("completed", "failed", "cancelled", "timed_out", "blocked")
# Why a mission went back to the queue: a failed attempt with attempts left, a
# worker gone (lease superseded / ended, run not reported after a restart), or a
# failure routed to another lane ("fallback:<reason>").
REQUEUE_REASONS = ("failed", "lease_superseded", "worker_lease_ended", "not_reported_by_worker",
                   "fallback:failed", "fallback:timed_out", "fallback:worker_lost")
