"""Rollout evidence (seed 001, sections 5 to 7): a snapshot of a lane's recent
missions and the promotion gates evaluated on it. Pure functions over Mission
messages, so the gates are tested without a server."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from services.common.contracts.vp.v1 import enums_pb2, mission_pb2

TERMINAL = {enums_pb2.MISSION_STATE_COMPLETED, enums_pb2.MISSION_STATE_FAILED, enums_pb2.MISSION_STATE_CANCELLED,
            enums_pb2.MISSION_STATE_TIMED_OUT}
VP_FAILURES = {enums_pb2.MISSION_STATE_FAILED, enums_pb2.MISSION_STATE_TIMED_OUT}


@dataclass(frozen=True)
class Gates:
    max_fallback_rate: float = 0.10
    # "Sustained failures": this many VP failures in a row among the considered missions.
    max_consecutive_failures: int = 3
    # One or two missions prove nothing; the default window is 20 terminal missions.
    min_missions: int = 20
    max_p95_seconds: float | None = None


@dataclass
class Snapshot:
    lane: str
    taken_at: str
    window: int
    missions_considered: int
    delegated: int
    fallbacks: int
    shadow: int
    failures: int
    fallback_rate: float
    delegated_share: float
    p50_latency_seconds: float | None
    p95_latency_seconds: float | None
    longest_failure_run: int
    gates: dict[str, dict] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(g["passed"] for g in self.gates.values())

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def markdown_row(self) -> str:
        def fmt(value):
            return "null" if value is None else f"{value:.3f}"

        verdict = "PASS" if self.passed else "FAIL: " + ", ".join(n for n, g in self.gates.items() if not g["passed"])
        return (f"| {self.taken_at} | {self.lane} | {self.missions_considered} | {self.fallbacks} | "
                f"{self.fallback_rate:.3f} | {fmt(self.p50_latency_seconds)} | {fmt(self.p95_latency_seconds)} | "
                f"{self.failures} | {self.delegated_share:.3f} | {verdict} |")


MARKDOWN_HEADER = ("| taken at (UTC) | lane | missions considered | fallbacks | fallback rate | p50 s | p95 s | "
                   "failures | delegated share | gates |\n|---|---|---|---|---|---|---|---|---|---|")


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def take_snapshot(lane: str, missions: list[mission_pb2.Mission], *, window: int, gates: Gates,
                  now: datetime | None = None) -> Snapshot:
    """Evaluate the last `window` terminal missions requested for `lane` (oldest first)."""
    terminal = [m for m in missions if m.state in TERMINAL and not m.shadow_of_mission_id]
    terminal.sort(key=lambda m: (m.created_at.seconds, m.created_at.nanos))
    considered = terminal[-window:] if window > 0 else terminal
    decision = [m.route.decision for m in considered]
    fallbacks = decision.count(enums_pb2.ROUTE_DECISION_FALLBACK)
    shadow = decision.count(enums_pb2.ROUTE_DECISION_SHADOW)
    delegated = decision.count(enums_pb2.ROUTE_DECISION_DELEGATED)
    vp_failed = [m.route.decision == enums_pb2.ROUTE_DECISION_DELEGATED and m.state in VP_FAILURES
                 for m in considered]
    longest = run = 0
    for failed in vp_failed:
        run = run + 1 if failed else 0
        longest = max(longest, run)
    latencies = [(m.completed_at.ToDatetime() - m.created_at.ToDatetime()).total_seconds() for m in considered
                 if m.state == enums_pb2.MISSION_STATE_COMPLETED and m.route.decision != enums_pb2.ROUTE_DECISION_FALLBACK]
    total = len(considered)
    snapshot = Snapshot(
        lane=lane, taken_at=(now or datetime.now(timezone.utc)).isoformat(timespec="seconds"), window=window,
        missions_considered=total, delegated=delegated, fallbacks=fallbacks, shadow=shadow,
        failures=sum(vp_failed), fallback_rate=round(fallbacks / total, 4) if total else 0.0,
        delegated_share=round(delegated / total, 4) if total else 0.0,
        p50_latency_seconds=_quantile(latencies, 0.5), p95_latency_seconds=_quantile(latencies, 0.95),
        longest_failure_run=longest,
    )
    snapshot.gates = {
        "enough_missions": {"passed": total >= gates.min_missions, "value": total, "limit": gates.min_missions},
        "fallback_rate": {"passed": snapshot.fallback_rate <= gates.max_fallback_rate,
                          "value": snapshot.fallback_rate, "limit": gates.max_fallback_rate},
        "no_sustained_failures": {"passed": longest < gates.max_consecutive_failures, "value": longest,
                                  "limit": gates.max_consecutive_failures},
    }
    if gates.max_p95_seconds is not None:
        p95 = snapshot.p95_latency_seconds
        snapshot.gates["p95_latency"] = {"passed": p95 is not None and p95 <= gates.max_p95_seconds, "value": p95,
                                         "limit": gates.max_p95_seconds}
    return snapshot
