"""Static lane configuration and the live state the policy decides on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

CODER = "vp.coder.primary"
GENERAL = "vp.general.primary"


@dataclass(frozen=True)
class FallbackTarget:
    kind: Literal["lane", "caller"]
    vp_id: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("lane", "caller"):
            raise ValueError(f"unknown fallback target kind {self.kind!r}")
        if self.kind == "lane" and not self.vp_id:
            raise ValueError("a lane fallback target needs a vp_id")
        if self.kind == "caller" and self.vp_id:
            raise ValueError("a caller fallback target has no vp_id")

    @classmethod
    def caller(cls) -> FallbackTarget:
        return cls("caller")

    @classmethod
    def lane(cls, vp_id: str) -> FallbackTarget:
        return cls("lane", vp_id)


@dataclass(frozen=True)
class LaneConfig:
    vp_id: str
    mission_types: frozenset[str]
    fallback: FallbackTarget = FallbackTarget.caller()
    max_in_flight: int = 8
    max_queue_depth: int = 1000


@dataclass(frozen=True)
class LaneState:
    # healthy: a live, non-stale, non-paused session exists for the lane.
    healthy: bool
    in_flight: int = 0
    queued: int = 0


def default_lanes(*, coder_falls_back_to_general: bool = False) -> dict[str, LaneConfig]:
    """The two primary lanes. The coder lane falls back to the caller by default
    because the caller's own path (the seeds' `code-writer`) is the
    always-available fallback; re-routing to the general lane is opt-in."""
    coder_fallback = (
        FallbackTarget.lane(GENERAL) if coder_falls_back_to_general else FallbackTarget.caller()
    )
    return {
        CODER: LaneConfig(CODER, frozenset({"code", "coding", "refactor", "test"}), coder_fallback),
        GENERAL: LaneConfig(GENERAL, frozenset({"task", "research", "writing", "general"})),
    }


def lane_for_intent(mission_type: str, lanes: Mapping[str, LaneConfig]) -> str | None:
    """The lane serving mission_type, for callers that leave vp_id empty.
    Ties go to the lowest vp_id so the answer never depends on dict order."""
    wanted = mission_type.strip().lower()
    matches = sorted(
        vp_id for vp_id, cfg in lanes.items() if wanted in {t.lower() for t in cfg.mission_types}
    )
    return matches[0] if matches else None


def validate_lanes(lanes: Mapping[str, LaneConfig]) -> None:
    """Startup check; decide() tolerates these mistakes but they hide lanes."""
    owner: dict[str, str] = {}
    for key, cfg in lanes.items():
        if key != cfg.vp_id:
            raise ValueError(f"lane key {key!r} does not match its vp_id {cfg.vp_id!r}")
        if cfg.max_in_flight < 0 or cfg.max_queue_depth < 0:
            raise ValueError(f"lane {key!r} has a negative capacity limit")
        if cfg.fallback.kind == "lane" and cfg.fallback.vp_id not in lanes:
            raise ValueError(f"lane {key!r} falls back to unknown lane {cfg.fallback.vp_id!r}")
        for t in cfg.mission_types:
            other = owner.setdefault(t.lower(), key)
            if other != key:
                raise ValueError(f"mission type {t!r} is served by both {other!r} and {key!r}")
