"""Routing policy of the dispatcher: pure decisions, no I/O.

proto helpers (to_route_proto) live in routing.proto and are re-exported here;
the policy modules themselves never import generated code.
"""

from services.dispatcher.routing.flags import (
    KILL_SWITCH_VAR,
    LEGACY_CODER_VARS,
    LaneFlags,
    RoutingFlags,
    describe_env_vars,
    env_id,
    flags_from_env,
    lane_var,
    parse_bool,
)
from services.dispatcher.routing.lanes import (
    CODER,
    GENERAL,
    FallbackTarget,
    LaneConfig,
    LaneState,
    default_lanes,
    lane_for_intent,
    validate_lanes,
)
from services.dispatcher.routing.intent import IntentRule, IntentRules, parse_rules, rules_from_lanes
from services.dispatcher.routing.policy import (
    FAILURE_REASONS,
    Decision,
    Reason,
    RoutingDecision,
    decide,
    decide_by_intent,
    decide_after_failure,
    route_after_failure,
    to_caller,
)
from services.dispatcher.routing.proto import route_dict, to_fallback_target_proto, to_route_proto

__all__ = [
    "IntentRule",
    "IntentRules",
    "decide_by_intent",
    "parse_rules",
    "rules_from_lanes",
    "CODER",
    "FAILURE_REASONS",
    "GENERAL",
    "KILL_SWITCH_VAR",
    "LEGACY_CODER_VARS",
    "Decision",
    "FallbackTarget",
    "LaneConfig",
    "LaneFlags",
    "LaneState",
    "Reason",
    "RoutingDecision",
    "RoutingFlags",
    "decide",
    "decide_after_failure",
    "default_lanes",
    "describe_env_vars",
    "env_id",
    "flags_from_env",
    "lane_for_intent",
    "lane_var",
    "parse_bool",
    "route_after_failure",
    "route_dict",
    "to_caller",
    "to_fallback_target_proto",
    "to_route_proto",
    "validate_lanes",
]
