"""Intent routing: which lane(s) serve a mission_type, for callers that leave
vp_id empty (the seeds route "by intent + workload profile + lane capacity").

The map comes from each lane's mission types, plus a default lane for types no
lane lists, and can be overridden by configuration (VP_INTENT_ROUTES). A type may
map to several lanes: routing takes the first of them that is enabled, healthy
and has room, so the order is the preference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.dispatcher.routing.lanes import LaneConfig

DEFAULT_KEY = "*"


@dataclass(frozen=True)
class IntentRule:
    # What matched: "mission_type=code" or "default".
    name: str
    lanes: tuple[str, ...]


@dataclass(frozen=True)
class IntentRules:
    by_type: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default: tuple[str, ...] = ()

    def rule_for(self, mission_type: str) -> IntentRule | None:
        wanted = mission_type.strip().lower()
        if wanted in self.by_type:
            return IntentRule(f"mission_type={wanted}", self.by_type[wanted])
        if self.default:
            return IntentRule("default", self.default)
        return None

    def describe(self) -> str:
        parts = [f"{t}={'|'.join(lanes)}" for t, lanes in sorted(self.by_type.items())]
        if self.default:
            parts.append(f"{DEFAULT_KEY}={'|'.join(self.default)}")
        return ",".join(parts)


def rules_from_lanes(lanes: Mapping[str, LaneConfig], default_lane: str = "") -> IntentRules:
    """Each lane serves the mission types it lists; default_lane the rest ("" none)."""
    by_type: dict[str, tuple[str, ...]] = {}
    for vp_id in sorted(lanes):
        for mission_type in sorted(lanes[vp_id].mission_types):
            by_type.setdefault(mission_type.lower(), ())
            by_type[mission_type.lower()] += (vp_id,)
    return IntentRules(by_type, (default_lane,) if default_lane else ())


def parse_rules(text: str, lanes: Mapping[str, LaneConfig], base: IntentRules) -> IntentRules:
    """'code=vp.coder.primary|vp.general.primary,research=vp.general.primary,*=vp.general.primary':
    entries replace the base's entry for that type ('*': the default). ValueError names the bad entry."""
    by_type, default = dict(base.by_type), base.default
    for entry in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = entry.partition("=")
        key = key.strip().lower()
        targets = tuple(filter(None, (lane.strip() for lane in value.split("|"))))
        if not sep or not key or not targets:
            raise ValueError(f"intent route {entry!r}: expected TYPE=LANE[|LANE...] or *=LANE")
        unknown = [lane for lane in targets if lane not in lanes]
        if unknown:
            raise ValueError(f"intent route {entry!r}: unknown lane(s) {', '.join(unknown)}")
        if key == DEFAULT_KEY:
            default = targets
        else:
            by_type[key] = targets
    return IntentRules(by_type, default)
