"""Where a mission goes: the requested lane, a fallback lane, or back to the caller.

Pure functions of (configuration, live state, flags) so every path can be
tested without a registry, a database or a clock, and so the same inputs
always give the same route (seed 000: "deterministic fallback").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from services.dispatcher.routing.flags import RoutingFlags
from services.dispatcher.routing.intent import IntentRule
from services.dispatcher.routing.lanes import FallbackTarget, LaneConfig, LaneState


class Decision(StrEnum):
    DELEGATED = "delegated"
    SHADOW = "shadow"
    FALLBACK = "fallback"


class Reason(StrEnum):
    DISABLED = "disabled"
    FORCED = "forced"
    UNHEALTHY = "unhealthy"
    OVER_CAPACITY = "over_capacity"
    TIMED_OUT = "timed_out"
    FAILED = "failed"
    WORKER_LOST = "worker_lost"


FAILURE_REASONS = frozenset({Reason.TIMED_OUT, Reason.FAILED, Reason.WORKER_LOST})

Lanes = Mapping[str, LaneConfig]
States = Mapping[str, LaneState]


@dataclass(frozen=True)
class RoutingDecision:
    decision: Decision
    # Lane producing the result of record; "" when the caller handles it.
    lane: str
    requested_vp_id: str
    reason: Reason | None
    # Where the result of record went instead of the requested lane; None when delegated.
    fallback_target: FallbackTarget | None
    # Lane running the comparison copy; only set for Decision.SHADOW.
    shadow_lane: str | None
    hops: tuple[str, ...]
    provenance: str
    # The intent rule that chose the requested lane ("" when the caller named it).
    rule: str = ""


def _gate(vp_id: str, flags: RoutingFlags) -> Reason | None:
    """Operator switches: these win over shadow mode and over lane health."""
    lane_flags = flags.for_lane(vp_id)
    if flags.kill_switch or not lane_flags.enabled:
        return Reason.DISABLED
    if lane_flags.force_fallback:
        return Reason.FORCED
    return None


def over_capacity(cfg: LaneConfig, in_flight: int, queued: int) -> bool:
    """A busy lane still accepts work while its queue has room."""
    return in_flight >= cfg.max_in_flight and queued >= cfg.max_queue_depth


def _load(cfg: LaneConfig, state: LaneState | None) -> Reason | None:
    # No state means the registry knows no live session: treat as unhealthy
    # rather than sending work to a lane nobody is watching.
    if state is None or not state.healthy:
        return Reason.UNHEALTHY
    if over_capacity(cfg, state.in_flight, state.queued):
        return Reason.OVER_CAPACITY
    return None


def _usable_for_record(vp_id: str, lanes: Lanes, states: States, flags: RoutingFlags) -> bool:
    # A lane in shadow mode is not trusted for results of record, even as a
    # fallback; the chain moves past it.
    return (
        _gate(vp_id, flags) is None
        and not flags.for_lane(vp_id).shadow
        and _load(lanes[vp_id], states.get(vp_id)) is None
    )


def _walk_fallbacks(origin: str, hops: list[str], lanes: Lanes, states: States, flags: RoutingFlags) -> str:
    """Follow origin's fallback chain; return the first usable lane or "" (caller).
    hops collects every lane visited, which also stops cycles."""
    target = lanes[origin].fallback
    while target.kind == "lane":
        nxt = target.vp_id
        if nxt in hops or nxt not in lanes:
            break
        hops.append(nxt)
        if _usable_for_record(nxt, lanes, states, flags):
            return nxt
        target = lanes[nxt].fallback
    return ""


def _provenance(decision: Decision, lane: str, reason: Reason | None, shadow_lane: str | None) -> str:
    where = lane or "caller"
    if decision is Decision.DELEGATED:
        return f"delegated to {lane}"
    if decision is Decision.SHADOW:
        return f"shadow on {shadow_lane}; result of record from {where}"
    return f"fallback to {where}: {reason}"


def _away_from(
    origin: str,
    *,
    requested_vp_id: str,
    reason: Reason | None,
    shadow_lane: str | None,
    tried: Sequence[str],
    lanes: Lanes,
    states: States,
    flags: RoutingFlags,
) -> RoutingDecision:
    hops = list(dict.fromkeys([*tried, origin]))
    lane = _walk_fallbacks(origin, hops, lanes, states, flags)
    decision = Decision.SHADOW if shadow_lane else Decision.FALLBACK
    return RoutingDecision(
        decision=decision,
        lane=lane,
        requested_vp_id=requested_vp_id,
        reason=reason,
        fallback_target=FallbackTarget.lane(lane) if lane else FallbackTarget.caller(),
        shadow_lane=shadow_lane,
        hops=tuple(hops),
        provenance=_provenance(decision, lane, reason, shadow_lane),
    )


def decide(
    *,
    requested_vp_id: str,
    mission_type: str,
    lanes: Mapping[str, LaneConfig],
    states: Mapping[str, LaneState],
    flags: RoutingFlags,
) -> RoutingDecision:
    """Route a new mission. mission_type is advisory: the requested lane is
    honoured even if it does not list the type (see lane_for_intent)."""
    del mission_type  # kept in the signature so intent-based rules can land without API churn
    if requested_vp_id not in lanes:
        raise ValueError(f"unknown lane {requested_vp_id!r}")
    common = dict(requested_vp_id=requested_vp_id, tried=(), lanes=lanes, states=states, flags=flags)

    reason = _gate(requested_vp_id, flags) or _load(lanes[requested_vp_id], states.get(requested_vp_id))
    if reason is not None:
        # Includes a shadow lane that is unhealthy or full: the copy is skipped.
        return _away_from(requested_vp_id, reason=reason, shadow_lane=None, **common)
    if flags.for_lane(requested_vp_id).shadow:
        return _away_from(requested_vp_id, reason=None, shadow_lane=requested_vp_id, **common)
    return RoutingDecision(
        decision=Decision.DELEGATED,
        lane=requested_vp_id,
        requested_vp_id=requested_vp_id,
        reason=None,
        fallback_target=None,
        shadow_lane=None,
        hops=(requested_vp_id,),
        provenance=_provenance(Decision.DELEGATED, requested_vp_id, None, None),
    )


def decide_by_intent(
    *,
    mission_type: str,
    rule: IntentRule,
    lanes: Mapping[str, LaneConfig],
    states: Mapping[str, LaneState],
    flags: RoutingFlags,
) -> RoutingDecision:
    """Route a mission that names no lane: the first of the rule's lanes that is
    enabled, healthy and has room is the requested lane; when none is, the first
    one, whose fallback chain then applies. The provenance names the rule."""
    candidates = [lane for lane in rule.lanes if lane in lanes]
    if not candidates:
        raise ValueError(f"intent rule {rule.name} names no configured lane")
    chosen = next((lane for lane in candidates
                   if _gate(lane, flags) is None and _load(lanes[lane], states.get(lane)) is None), candidates[0])
    decision = decide(requested_vp_id=chosen, mission_type=mission_type, lanes=lanes, states=states, flags=flags)
    return replace(decision, rule=rule.name,
                   provenance=f"intent {rule.name} chose {chosen}; {decision.provenance}")


def decide_after_failure(
    *,
    lane: str,
    reason: str,
    lanes: Mapping[str, LaneConfig],
    states: Mapping[str, LaneState],
    flags: RoutingFlags,
    requested_vp_id: str = "",
    tried: Sequence[str] = (),
) -> RoutingDecision:
    """Re-route a mission whose result-of-record run on `lane` timed out, failed
    or lost its worker with no attempts left. Pass the original requested_vp_id
    and the lanes already tried when `lane` was itself a fallback, so the chain
    does not return to them. Shadow copies never come here: they are not of record."""
    failure = Reason(reason)
    if failure not in FAILURE_REASONS:
        raise ValueError(f"{reason!r} is not a failure reason; expected one of {sorted(FAILURE_REASONS)}")
    if lane not in lanes:
        raise ValueError(f"unknown lane {lane!r}")
    return _away_from(
        lane,
        requested_vp_id=requested_vp_id or lane,
        reason=failure,
        shadow_lane=None,
        tried=tried,
        lanes=lanes,
        states=states,
        flags=flags,
    )


def to_caller(*, lane: str, requested_vp_id: str, reason: Reason) -> RoutingDecision:
    """Hand the result of record back to the caller."""
    return RoutingDecision(decision=Decision.FALLBACK, lane="", requested_vp_id=requested_vp_id, reason=reason,
                           fallback_target=FallbackTarget.caller(), shadow_lane=None, hops=(lane,),
                           provenance=f"fallback to caller: {reason.value}")


def route_after_failure(
    *,
    lane: str,
    reason: Reason,
    lanes: Mapping[str, LaneConfig],
    states: Mapping[str, LaneState],
    flags: RoutingFlags,
    requested_vp_id: str,
) -> RoutingDecision:
    """Where a mission goes when its lane gives up. A timeout always goes back
    to the caller: the deadline is absolute, another lane cannot meet it either.
    A lane no longer configured has no fallback chain: the caller too."""
    if reason == Reason.TIMED_OUT or lane not in lanes:
        return to_caller(lane=lane, requested_vp_id=requested_vp_id, reason=reason)
    return decide_after_failure(lane=lane, reason=reason, lanes=lanes, states=states, flags=flags,
                                requested_vp_id=requested_vp_id)
