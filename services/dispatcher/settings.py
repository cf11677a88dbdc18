"""Dispatcher settings: limits, timings and lanes. Validated once at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from services.dispatcher.routing import GENERAL, IntentRules, LaneConfig, RoutingFlags, default_lanes, rules_from_lanes


@dataclass(frozen=True)
class EnvelopeLimits:
    objective_bytes: int = 32 * 1024
    constraints_bytes: int = 64 * 1024
    envelope_bytes: int = 256 * 1024
    labels: int = 32
    label_key_chars: int = 63
    label_value_chars: int = 256
    idempotency_key_chars: int = 256
    mission_type_chars: int = 64
    priority_range: tuple[int, int] = (-1000, 1000)
    max_attempts: int = 10
    max_duration: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class DispatcherSettings:
    lanes: dict[str, LaneConfig] = field(default_factory=default_lanes)
    flags: RoutingFlags = field(default_factory=RoutingFlags)
    # mission_type -> lane(s) for missions that name no vp_id; None: each lane's
    # mission types, and the general lane for the rest (intent_rules()).
    intent: IntentRules | None = None
    allowed_roots: tuple[Path, ...] = ()
    protected_roots: tuple[Path, ...] = ()
    limits: EnvelopeLimits = field(default_factory=EnvelopeLimits)
    default_max_attempts: int = 3
    # Per-attempt run time when the envelope's budget gives none.
    default_max_duration: timedelta = timedelta(hours=1)
    heartbeat_interval: timedelta = timedelta(seconds=5)
    # How often deadlines, lost workers and unreported missions are checked.
    supervise_interval: timedelta = timedelta(milliseconds=500)
    # How long lane health read from the registry is trusted.
    health_cache_ttl: timedelta = timedelta(seconds=1)
    wait_cap: timedelta = timedelta(seconds=300)

    def intent_rules(self) -> IntentRules:
        if self.intent is not None:
            return self.intent
        return rules_from_lanes(self.lanes, GENERAL if GENERAL in self.lanes else "")

    def __post_init__(self) -> None:
        if not 1 <= self.default_max_attempts <= self.limits.max_attempts:
            raise ValueError(f"default_max_attempts must be within 1..{self.limits.max_attempts}")
        if self.heartbeat_interval <= timedelta(0) or self.supervise_interval <= timedelta(0):
            raise ValueError("heartbeat and supervise intervals must be positive")
        for root in (*self.allowed_roots, *self.protected_roots):
            if not root.is_absolute():
                raise ValueError(f"root {root} must be an absolute path")
