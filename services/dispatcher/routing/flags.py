"""Routing feature flags and their environment variables.

Flags are read once into frozen values so one routing decision never sees a
half-updated configuration.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

CODER_LANE = "vp.coder.primary"
KILL_SWITCH_VAR = "VP_ROUTING_KILL_SWITCH"

# The seeds' rollout plan (seed 000, WS-D) names these; operators' runbooks
# ("Rollback: set UA_CODER_VP_FORCE_FALLBACK=1") must keep working.
LEGACY_CODER_VARS = {
    "enabled": "UA_ENABLE_CODER_VP",
    "shadow": "UA_CODER_VP_SHADOW_MODE",
    "force_fallback": "UA_CODER_VP_FORCE_FALLBACK",
}

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_ENV_ID = re.compile(r"^[A-Z0-9_]+$")


@dataclass(frozen=True)
class LaneFlags:
    enabled: bool = True
    shadow: bool = False
    force_fallback: bool = False


@dataclass(frozen=True)
class RoutingFlags:
    kill_switch: bool = False
    lanes: Mapping[str, LaneFlags] = field(default_factory=dict)
    default: LaneFlags = LaneFlags()

    def for_lane(self, vp_id: str) -> LaneFlags:
        return self.lanes.get(vp_id, self.default)


def env_id(vp_id: str) -> str:
    """vp.coder.primary -> VP_CODER_PRIMARY."""
    ident = vp_id.upper().replace(".", "_").replace("-", "_")
    if not _ENV_ID.match(ident):
        raise ValueError(f"vp_id {vp_id!r} cannot be named in an environment variable")
    return ident


def lane_var(vp_id: str, flag: str) -> str:
    return f"VP_LANE_{env_id(vp_id)}_{flag.upper()}"


def parse_bool(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def _read(env: Mapping[str, str], name: str) -> bool | None:
    # "FOO=" in an env file means "not configured", not a malformed value.
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    return parse_bool(name, raw)


def _check_distinct(lane_ids: Iterable[str]) -> list[str]:
    ids = list(dict.fromkeys(lane_ids))
    seen: dict[str, str] = {}
    for vp_id in ids:
        other = seen.setdefault(env_id(vp_id), vp_id)
        if other != vp_id:
            # Both lanes would silently share one set of variables.
            raise ValueError(f"lanes {other!r} and {vp_id!r} map to the same variables")
    return ids


def _lane_from_env(env: Mapping[str, str], vp_id: str) -> LaneFlags:
    values = {f: _read(env, lane_var(vp_id, f)) for f in ("enabled", "shadow", "force_fallback")}
    if vp_id == CODER_LANE:
        for f, legacy_name in LEGACY_CODER_VARS.items():
            legacy = _read(env, legacy_name)
            if legacy is None:
                continue
            if values[f] is None:
                values[f] = legacy
            # On conflict the more cautious value wins, so a legacy rollback
            # flag cannot be overridden by a stale new-style one (or vice versa).
            elif f == "enabled":
                values[f] = values[f] and legacy
            else:
                values[f] = values[f] or legacy
    defaults = LaneFlags()
    return LaneFlags(**{f: getattr(defaults, f) if v is None else v for f, v in values.items()})


def flags_from_env(env: Mapping[str, str], lane_ids: Iterable[str]) -> RoutingFlags:
    """Read the flags of lane_ids (plus the coder lane when a legacy variable is set)."""
    ids = _check_distinct(lane_ids)
    if CODER_LANE not in ids and any(_read(env, n) is not None for n in LEGACY_CODER_VARS.values()):
        ids.append(CODER_LANE)
    return RoutingFlags(
        kill_switch=bool(_read(env, KILL_SWITCH_VAR)),
        lanes={vp_id: _lane_from_env(env, vp_id) for vp_id in ids},
        default=LaneFlags(),
    )


def describe_env_vars(lane_ids: Iterable[str]) -> list[tuple[str, str]]:
    """(name, help) for every variable flags_from_env reads, for --help output."""
    out = [(KILL_SWITCH_VAR, "true sends every mission to its fallback (reason: disabled)")]
    for vp_id in _check_distinct(lane_ids):
        out += [
            (lane_var(vp_id, "enabled"), f"route missions to {vp_id} (default true)"),
            (lane_var(vp_id, "shadow"), f"run {vp_id} as a shadow copy only (default false)"),
            (lane_var(vp_id, "force_fallback"), f"send all {vp_id} missions to its fallback (default false)"),
        ]
    out += [
        (LEGACY_CODER_VARS["enabled"], f"legacy alias of {lane_var(CODER_LANE, 'enabled')}"),
        (LEGACY_CODER_VARS["shadow"], f"legacy alias of {lane_var(CODER_LANE, 'shadow')}"),
        (LEGACY_CODER_VARS["force_fallback"], f"legacy alias of {lane_var(CODER_LANE, 'force_fallback')}"),
    ]
    return out
