"""Every path of the dispatcher's routing policy, without I/O."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.common.contracts.vp.v1 import enums_pb2
from services.common.timeutil import NaiveDatetimeError
from services.dispatcher.routing import (
    CODER,
    GENERAL,
    Decision,
    FallbackTarget,
    LaneConfig,
    LaneFlags,
    LaneState,
    Reason,
    RoutingFlags,
    decide,
    decide_after_failure,
    default_lanes,
    describe_env_vars,
    flags_from_env,
    lane_for_intent,
    to_route_proto,
    validate_lanes,
)

HEALTHY = LaneState(healthy=True)
SICK = LaneState(healthy=False)
ON = RoutingFlags()


def flags(kill_switch: bool = False, **lanes: LaneFlags) -> RoutingFlags:
    by_id = {"coder": CODER, "general": GENERAL}
    return RoutingFlags(kill_switch=kill_switch, lanes={by_id[k]: v for k, v in lanes.items()})


def route(lanes=None, states=None, fl=ON, vp_id=CODER, mission_type="code"):
    return decide(
        requested_vp_id=vp_id,
        mission_type=mission_type,
        lanes=default_lanes() if lanes is None else lanes,
        states={CODER: HEALTHY, GENERAL: HEALTHY} if states is None else states,
        flags=fl,
    )


def rerouting():
    return default_lanes(coder_falls_back_to_general=True)


# --- first-pass decisions -------------------------------------------------


def test_healthy_lane_is_delegated():
    d = route()
    assert d.decision == Decision.DELEGATED == "delegated"
    assert (d.lane, d.requested_vp_id, d.reason) == (CODER, CODER, None)
    assert d.fallback_target is None and d.shadow_lane is None
    assert d.hops == (CODER,)
    assert d.provenance == "delegated to vp.coder.primary"


def test_intent_is_advisory_requested_lane_wins():
    d = route(vp_id=GENERAL, mission_type="code")
    assert (d.decision, d.lane) == (Decision.DELEGATED, GENERAL)


def test_unknown_lane_is_refused():
    with pytest.raises(ValueError, match="vp.nope"):
        route(vp_id="vp.nope")
    with pytest.raises(ValueError):
        route(vp_id="")


@pytest.mark.parametrize(
    ("fl", "reason"),
    [
        (flags(coder=LaneFlags(enabled=False)), Reason.DISABLED),
        (flags(kill_switch=True), Reason.DISABLED),
        (flags(coder=LaneFlags(force_fallback=True)), Reason.FORCED),
    ],
    ids=["lane-disabled", "kill-switch", "forced"],
)
def test_operator_switches_fall_back_to_caller(fl, reason):
    d = route(fl=fl)
    assert d.decision == Decision.FALLBACK
    assert (d.lane, d.reason) == ("", reason)
    assert d.fallback_target == FallbackTarget.caller()
    assert d.provenance == f"fallback to caller: {reason}"


def test_kill_switch_covers_every_lane_and_beats_other_flags():
    fl = flags(kill_switch=True, coder=LaneFlags(shadow=True), general=LaneFlags())
    for vp_id in (CODER, GENERAL):
        d = route(fl=fl, vp_id=vp_id)
        assert (d.decision, d.reason, d.lane) == (Decision.FALLBACK, Reason.DISABLED, "")
    # Even with a re-route target, the kill switch leaves no lane usable.
    d = route(lanes=rerouting(), fl=fl)
    assert (d.lane, d.hops) == ("", (CODER, GENERAL))


def test_unhealthy_lane_falls_back():
    d = route(states={CODER: SICK, GENERAL: HEALTHY})
    assert (d.decision, d.lane, d.reason) == (Decision.FALLBACK, "", Reason.UNHEALTHY)
    assert d.provenance == "fallback to caller: unhealthy"


def test_lane_without_state_counts_as_unhealthy():
    assert route(states={}).reason == Reason.UNHEALTHY


def test_over_capacity_needs_full_slots_and_full_queue():
    cfg = LaneConfig(CODER, frozenset({"code"}), max_in_flight=2, max_queue_depth=3)
    lanes = {CODER: cfg}
    full = route(lanes=lanes, states={CODER: LaneState(True, in_flight=2, queued=3)})
    assert (full.decision, full.reason) == (Decision.FALLBACK, Reason.OVER_CAPACITY)
    assert full.provenance == "fallback to caller: over_capacity"
    # Slots busy but the queue has room: the mission waits on the lane.
    queued = route(lanes=lanes, states={CODER: LaneState(True, in_flight=2, queued=2)})
    assert queued.decision == Decision.DELEGATED


def test_operator_switch_wins_over_bad_health():
    d = route(states={CODER: SICK}, fl=flags(coder=LaneFlags(force_fallback=True)))
    assert d.reason == Reason.FORCED


# --- shadow -----------------------------------------------------------------


def test_shadow_runs_copy_on_lane_and_result_from_caller():
    d = route(fl=flags(coder=LaneFlags(shadow=True)))
    assert d.decision == Decision.SHADOW
    assert (d.lane, d.shadow_lane, d.reason) == ("", CODER, None)
    assert d.fallback_target == FallbackTarget.caller()
    assert d.provenance == "shadow on vp.coder.primary; result of record from caller"


def test_shadow_result_of_record_can_come_from_fallback_lane():
    d = route(lanes=rerouting(), fl=flags(coder=LaneFlags(shadow=True)))
    assert (d.decision, d.lane, d.shadow_lane) == (Decision.SHADOW, GENERAL, CODER)
    assert d.provenance == "shadow on vp.coder.primary; result of record from vp.general.primary"


def test_shadow_skipped_when_lane_unhealthy():
    d = route(states={CODER: SICK}, fl=flags(coder=LaneFlags(shadow=True)))
    assert (d.decision, d.reason, d.shadow_lane) == (Decision.FALLBACK, Reason.UNHEALTHY, None)


def test_shadow_skipped_when_lane_full():
    lanes = {CODER: LaneConfig(CODER, frozenset(), max_in_flight=1, max_queue_depth=0)}
    d = route(lanes=lanes, states={CODER: LaneState(True, 1, 0)}, fl=flags(coder=LaneFlags(shadow=True)))
    assert (d.decision, d.reason) == (Decision.FALLBACK, Reason.OVER_CAPACITY)


def test_forced_fallback_beats_shadow():
    d = route(fl=flags(coder=LaneFlags(shadow=True, force_fallback=True)))
    assert (d.decision, d.reason, d.shadow_lane) == (Decision.FALLBACK, Reason.FORCED, None)


# --- re-routing chains ----------------------------------------------------


def test_reroute_to_healthy_fallback_lane():
    d = route(lanes=rerouting(), fl=flags(coder=LaneFlags(force_fallback=True)))
    assert (d.decision, d.lane, d.reason) == (Decision.FALLBACK, GENERAL, Reason.FORCED)
    assert d.fallback_target == FallbackTarget.lane(GENERAL)
    assert d.hops == (CODER, GENERAL)
    assert d.provenance == "fallback to vp.general.primary: forced"


def test_reroute_chain_dead_end_goes_to_caller_with_first_reason():
    d = route(lanes=rerouting(), states={CODER: SICK, GENERAL: SICK})
    assert (d.lane, d.reason, d.hops) == ("", Reason.UNHEALTHY, (CODER, GENERAL))
    assert d.fallback_target == FallbackTarget.caller()
    assert d.provenance == "fallback to caller: unhealthy"


def test_reroute_skips_lanes_that_are_forced_or_in_shadow():
    third = "vp.third.primary"
    lanes = {
        CODER: LaneConfig(CODER, frozenset(), FallbackTarget.lane(GENERAL)),
        GENERAL: LaneConfig(GENERAL, frozenset(), FallbackTarget.lane(third)),
        third: LaneConfig(third, frozenset()),
    }
    states = {CODER: SICK, GENERAL: HEALTHY, third: HEALTHY}
    d = route(lanes=lanes, states=states, fl=flags(general=LaneFlags(shadow=True)))
    assert (d.lane, d.reason, d.hops) == (third, Reason.UNHEALTHY, (CODER, GENERAL, third))


def test_cycle_in_fallback_chain_ends_at_caller():
    lanes = {
        CODER: LaneConfig(CODER, frozenset(), FallbackTarget.lane(GENERAL)),
        GENERAL: LaneConfig(GENERAL, frozenset(), FallbackTarget.lane(CODER)),
    }
    d = route(lanes=lanes, states={CODER: SICK, GENERAL: SICK})
    assert (d.decision, d.lane, d.reason) == (Decision.FALLBACK, "", Reason.UNHEALTHY)
    assert d.hops == (CODER, GENERAL)


def test_self_loop_and_unknown_fallback_lane_end_at_caller():
    loop = {CODER: LaneConfig(CODER, frozenset(), FallbackTarget.lane(CODER))}
    assert route(lanes=loop, states={CODER: SICK}).lane == ""
    dangling = {CODER: LaneConfig(CODER, frozenset(), FallbackTarget.lane("vp.gone"))}
    d = route(lanes=dangling, states={CODER: SICK})
    assert (d.lane, d.hops) == ("", (CODER,))


# --- after failure --------------------------------------------------------


@pytest.mark.parametrize("reason", ["timed_out", "failed", "worker_lost"])
def test_after_failure_goes_to_caller(reason):
    d = decide_after_failure(
        lane=CODER, reason=reason, lanes=default_lanes(), states={CODER: HEALTHY}, flags=ON
    )
    assert (d.decision, d.lane, d.reason) == (Decision.FALLBACK, "", Reason(reason))
    assert d.requested_vp_id == CODER
    assert d.provenance == f"fallback to caller: {reason}"


def test_after_failure_reroutes_to_healthy_lane():
    d = decide_after_failure(
        lane=CODER, reason="timed_out", lanes=rerouting(), states={GENERAL: HEALTHY}, flags=ON
    )
    assert (d.lane, d.reason, d.hops) == (GENERAL, Reason.TIMED_OUT, (CODER, GENERAL))
    assert d.provenance == "fallback to vp.general.primary: timed_out"


def test_after_failure_of_a_fallback_lane_does_not_return_to_tried_lanes():
    lanes = {
        CODER: LaneConfig(CODER, frozenset(), FallbackTarget.lane(GENERAL)),
        GENERAL: LaneConfig(GENERAL, frozenset(), FallbackTarget.lane(CODER)),
    }
    d = decide_after_failure(
        lane=GENERAL,
        reason="worker_lost",
        lanes=lanes,
        states={CODER: HEALTHY, GENERAL: HEALTHY},
        flags=ON,
        requested_vp_id=CODER,
        tried=(CODER,),
    )
    assert (d.lane, d.requested_vp_id, d.hops) == ("", CODER, (CODER, GENERAL))


@pytest.mark.parametrize("reason", ["unhealthy", "disabled", "bogus"])
def test_after_failure_refuses_non_failure_reasons(reason):
    with pytest.raises(ValueError):
        decide_after_failure(lane=CODER, reason=reason, lanes=default_lanes(), states={}, flags=ON)


def test_after_failure_refuses_unknown_lane():
    with pytest.raises(ValueError):
        decide_after_failure(lane="vp.x", reason="failed", lanes=default_lanes(), states={}, flags=ON)


# --- lanes ----------------------------------------------------------------


def test_lane_for_intent():
    lanes = default_lanes()
    assert lane_for_intent("refactor", lanes) == CODER
    assert lane_for_intent(" Research ", lanes) == GENERAL
    assert lane_for_intent("dance", lanes) is None


def test_default_lanes_fall_back_to_caller_unless_rerouting_requested():
    assert default_lanes()[CODER].fallback == FallbackTarget.caller()
    assert rerouting()[CODER].fallback == FallbackTarget.lane(GENERAL)
    assert default_lanes()[GENERAL].fallback == FallbackTarget.caller()
    validate_lanes(default_lanes())
    validate_lanes(rerouting())


def test_validate_lanes_catches_config_mistakes():
    with pytest.raises(ValueError, match="unknown lane"):
        validate_lanes({CODER: LaneConfig(CODER, frozenset(), FallbackTarget.lane("vp.gone"))})
    with pytest.raises(ValueError, match="served by both"):
        validate_lanes(
            {CODER: LaneConfig(CODER, frozenset({"code"})), GENERAL: LaneConfig(GENERAL, frozenset({"Code"}))}
        )
    with pytest.raises(ValueError, match="does not match"):
        validate_lanes({GENERAL: LaneConfig(CODER, frozenset())})


def test_fallback_target_shape_is_checked():
    with pytest.raises(ValueError):
        FallbackTarget("lane")
    with pytest.raises(ValueError):
        FallbackTarget("caller", CODER)
    with pytest.raises(ValueError):
        FallbackTarget("elsewhere")  # type: ignore[arg-type]


# --- flags from the environment ----------------------------------------------


def test_env_defaults_are_enabled_without_shadow_or_force():
    fl = flags_from_env({}, [CODER, GENERAL])
    assert not fl.kill_switch
    assert fl.for_lane(CODER) == fl.for_lane(GENERAL) == LaneFlags(True, False, False)
    assert fl.for_lane("vp.unlisted") == LaneFlags(True, False, False)


def test_env_generalised_names_per_lane():
    env = {
        "VP_LANE_VP_CODER_PRIMARY_ENABLED": "off",
        "VP_LANE_VP_GENERAL_PRIMARY_SHADOW": "YES",
        "VP_LANE_VP_GENERAL_PRIMARY_FORCE_FALLBACK": "1",
        "VP_LANE_VP_OPS_CANARY_ENABLED": "false",
        "VP_ROUTING_KILL_SWITCH": "On",
    }
    fl = flags_from_env(env, [CODER, GENERAL, "vp.ops-canary"])
    assert fl.kill_switch
    assert fl.for_lane(CODER) == LaneFlags(enabled=False)
    assert fl.for_lane(GENERAL) == LaneFlags(shadow=True, force_fallback=True)
    assert fl.for_lane("vp.ops-canary") == LaneFlags(enabled=False)


def test_env_legacy_aliases_apply_to_coder_lane():
    env = {"UA_ENABLE_CODER_VP": "0", "UA_CODER_VP_SHADOW_MODE": "true", "UA_CODER_VP_FORCE_FALLBACK": "1"}
    fl = flags_from_env(env, [GENERAL])  # coder lane added because a legacy name is set
    assert fl.for_lane(CODER) == LaneFlags(enabled=False, shadow=True, force_fallback=True)
    assert fl.for_lane(GENERAL) == LaneFlags()


def test_env_legacy_rollback_flag_is_not_overridden_by_new_name():
    env = {"UA_CODER_VP_FORCE_FALLBACK": "1", "VP_LANE_VP_CODER_PRIMARY_FORCE_FALLBACK": "0"}
    assert flags_from_env(env, [CODER]).for_lane(CODER).force_fallback
    env = {"UA_ENABLE_CODER_VP": "1", "VP_LANE_VP_CODER_PRIMARY_ENABLED": "0"}
    assert not flags_from_env(env, [CODER]).for_lane(CODER).enabled


def test_env_empty_value_means_unset():
    assert flags_from_env({"VP_ROUTING_KILL_SWITCH": " "}, [CODER]).kill_switch is False


@pytest.mark.parametrize(
    "name", ["VP_ROUTING_KILL_SWITCH", "VP_LANE_VP_CODER_PRIMARY_SHADOW", "UA_ENABLE_CODER_VP"]
)
def test_env_bad_boolean_names_the_variable(name):
    with pytest.raises(ValueError, match=name):
        flags_from_env({name: "maybe"}, [CODER])


def test_env_lane_ids_that_collide_are_refused():
    with pytest.raises(ValueError, match="same variables"):
        flags_from_env({}, ["vp.a-b", "vp.a.b"])


def test_env_flags_drive_decide():
    fl = flags_from_env({"UA_CODER_VP_FORCE_FALLBACK": "1"}, [CODER, GENERAL])
    assert route(fl=fl).provenance == "fallback to caller: forced"


def test_describe_env_vars_lists_every_name_read():
    names = [n for n, _ in describe_env_vars([CODER, GENERAL])]
    assert names[0] == "VP_ROUTING_KILL_SWITCH"
    for expected in (
        "VP_LANE_VP_CODER_PRIMARY_ENABLED",
        "VP_LANE_VP_CODER_PRIMARY_SHADOW",
        "VP_LANE_VP_CODER_PRIMARY_FORCE_FALLBACK",
        "VP_LANE_VP_GENERAL_PRIMARY_FORCE_FALLBACK",
        "UA_ENABLE_CODER_VP",
        "UA_CODER_VP_SHADOW_MODE",
        "UA_CODER_VP_FORCE_FALLBACK",
    ):
        assert expected in names
    assert all(help_text for _, help_text in describe_env_vars([CODER]))


# --- protobuf mapping ---------------------------------------------------------

NOW = datetime(2026, 2, 20, 12, 0, tzinfo=timezone.utc)


def test_proto_delegated():
    r = to_route_proto(route(), NOW)
    assert r.decision == enums_pb2.ROUTE_DECISION_DELEGATED
    assert (r.lane, r.requested_vp_id, r.provenance) == (CODER, CODER, "delegated to vp.coder.primary")
    assert r.fallback_reason == enums_pb2.FALLBACK_REASON_UNSPECIFIED
    assert not r.HasField("fallback_target")
    assert r.decided_at.ToDatetime(tzinfo=timezone.utc) == NOW


def test_proto_fallback_to_lane_and_caller():
    r = to_route_proto(route(lanes=rerouting(), states={CODER: SICK, GENERAL: HEALTHY}), NOW)
    assert r.decision == enums_pb2.ROUTE_DECISION_FALLBACK
    assert r.fallback_reason == enums_pb2.FALLBACK_REASON_UNHEALTHY
    assert r.fallback_target.kind == enums_pb2.FALLBACK_TARGET_KIND_LANE
    assert (r.fallback_target.vp_id, r.lane) == (GENERAL, GENERAL)
    r = to_route_proto(route(fl=flags(kill_switch=True)), NOW)
    assert r.fallback_target.kind == enums_pb2.FALLBACK_TARGET_KIND_CALLER
    assert (r.fallback_target.vp_id, r.lane) == ("", "")
    assert r.fallback_reason == enums_pb2.FALLBACK_REASON_DISABLED


def test_proto_shadow():
    r = to_route_proto(route(fl=flags(coder=LaneFlags(shadow=True))), NOW)
    assert r.decision == enums_pb2.ROUTE_DECISION_SHADOW
    assert r.fallback_target.kind == enums_pb2.FALLBACK_TARGET_KIND_CALLER


@pytest.mark.parametrize("reason", list(Reason))
def test_proto_maps_every_reason(reason):
    d = route(states={CODER: SICK})
    d = type(d)(**{**d.__dict__, "reason": reason})
    assert enums_pb2.FallbackReason.Name(to_route_proto(d, NOW).fallback_reason) == (
        "FALLBACK_REASON_" + reason.name
    )


def test_proto_refuses_naive_decided_at():
    with pytest.raises(NaiveDatetimeError):
        to_route_proto(route(), NOW.replace(tzinfo=None))
    assert to_route_proto(route(), NOW + timedelta(seconds=1)).decided_at.seconds > 0
