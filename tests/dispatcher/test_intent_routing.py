"""Intent routing: a mission that names no vp_id goes where the rule for its
mission_type says (each lane's types, a default lane for the rest, or the
configured map), vp_id is optional exactly when a rule maps the type, and the
route's provenance names the rule that chose the lane."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import timedelta

import grpc
import pytest

from services.common.contracts.vp.v1 import enums_pb2 as S
from services.dispatcher.routing import (
    IntentRule,
    LaneState,
    RoutingFlags,
    decide_by_intent,
    default_lanes,
    parse_rules,
    rules_from_lanes,
)
from services.dispatcher.settings import DispatcherSettings
from tests.dispatcher.conftest import CODER, GENERAL, dispatch, envelope
from tests.support.processes import console_script
from tests.support.scripted_worker import ScriptedWorker
from tests.support.stack import fake_clock_stack

LANES = default_lanes()


def test_default_rules_map_each_lanes_types_and_the_rest_to_the_default():
    rules = rules_from_lanes(LANES, GENERAL)
    assert rules.rule_for("code") == IntentRule("mission_type=code", (CODER,))
    assert rules.rule_for("Research") == IntentRule("mission_type=research", (GENERAL,))
    assert rules.rule_for("poetry") == IntentRule("default", (GENERAL,))
    assert rules_from_lanes(LANES).rule_for("poetry") is None


def test_configured_routes_replace_entries_and_are_checked():
    rules = parse_rules(f"code={GENERAL}|{CODER}, *={CODER}", LANES, rules_from_lanes(LANES, GENERAL))
    assert rules.rule_for("code").lanes == (GENERAL, CODER) and rules.rule_for("poetry").lanes == (CODER,)
    assert rules.rule_for("test").lanes == (CODER,)  # untouched entries stay
    for bad in ("code", "code=", "=vp.coder.primary", "code=vp.nobody.primary"):
        with pytest.raises(ValueError, match="intent route"):
            parse_rules(bad, LANES, rules_from_lanes(LANES))


def test_the_first_usable_lane_of_a_rule_wins_and_provenance_names_the_rule():
    rule = IntentRule("mission_type=code", (CODER, GENERAL))
    healthy = {CODER: LaneState(True), GENERAL: LaneState(True)}
    first = decide_by_intent(mission_type="code", rule=rule, lanes=LANES, states=healthy, flags=RoutingFlags())
    assert (first.decision.value, first.lane, first.rule) == ("delegated", CODER, "mission_type=code")
    assert first.provenance == f"intent mission_type=code chose {CODER}; delegated to {CODER}"
    coder_down = {**healthy, CODER: LaneState(False)}
    second = decide_by_intent(mission_type="code", rule=rule, lanes=LANES, states=coder_down, flags=RoutingFlags())
    assert (second.lane, second.requested_vp_id) == (GENERAL, GENERAL)
    # None usable: the first lane is requested and its own fallback applies (the caller).
    nobody = {CODER: LaneState(False), GENERAL: LaneState(False)}
    third = decide_by_intent(mission_type="code", rule=rule, lanes=LANES, states=nobody, flags=RoutingFlags())
    assert (third.decision.value, third.requested_vp_id, third.lane) == ("fallback", CODER, "")
    assert third.provenance.startswith("intent mission_type=code chose vp.coder.primary; fallback to caller")


async def test_dispatch_without_vp_id_routes_by_intent(db_url):
    async with fake_clock_stack(db_url) as stack:
        for vp_id in (CODER, GENERAL):
            await ScriptedWorker(stack, vp_id).acquire()
        coded = await dispatch(stack, vp_id="", mission_type="code")
        assert coded.route.decision == S.ROUTE_DECISION_DELEGATED and coded.route.lane == CODER
        assert coded.route.requested_vp_id == CODER and coded.mission.envelope.vp_id == CODER
        assert coded.route.provenance.startswith("intent mission_type=code chose vp.coder.primary")
        other = await dispatch(stack, vp_id="", mission_type="poetry")
        assert other.route.lane == GENERAL and other.route.provenance.startswith("intent default chose")
        # Replaying the same caller envelope (no vp_id) answers with the same mission.
        env = envelope(vp_id="", mission_type="code", idempotency_key="k-intent")
        first, again = await dispatch(stack, env), await dispatch(stack, env)
        assert again.deduplicated and again.mission.envelope.mission_id == first.mission.envelope.mission_id
        # A named lane still wins over the rule.
        named = await dispatch(stack, vp_id=GENERAL, mission_type="code")
        assert named.route.lane == GENERAL and "intent" not in named.route.provenance


async def test_vp_id_is_required_when_no_rule_maps_the_type(sqlite_url):
    settings = DispatcherSettings(heartbeat_interval=timedelta(seconds=1), health_cache_ttl=timedelta(0),
                                  intent=rules_from_lanes(LANES))  # no default lane
    async with fake_clock_stack(sqlite_url, settings) as stack:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await dispatch(stack, vp_id="", mission_type="poetry")
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "envelope.vp_id" in refused.value.details()
        assert await stack.store.aread(lambda tx: tx.list_missions()) == []


async def test_vpctl_dispatch_without_vp_id(sqlite_url):
    async with fake_clock_stack(sqlite_url) as stack:
        await ScriptedWorker(stack, CODER).acquire()
        process = await asyncio.create_subprocess_exec(
            console_script("vpctl"), "--dispatcher", stack.dispatcher_address, "dispatch", "--type", "refactor",
            "--objective", "tidy", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, **stack.client_env()})
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert "intent mission_type=refactor chose vp.coder.primary" in out.decode()
