"""The Prometheus rules and the Grafana dashboards name only what the services
really export: every vp_* metric in every expression is on the /metrics pages of
the running services (started as processes, after real missions), every vp:*
recording rule they use is defined, and every label matcher written on one of
our metrics names a label that metric has and a value it really takes once
missions ran (so a panel cannot filter on "DELEGATED" while the label says "delegated")."""

from __future__ import annotations

import re

import pytest

from tests.ops.ops_support import (
    base_name,
    dashboard_expressions,
    dashboards,
    metric_names,
    recorded_names,
    recording_names,
    rules,
    selectors,
)


def _all_expressions() -> list[tuple[str, str]]:
    """(where, expression) for every rule and every dashboard query."""
    out = [(f"rule {rule.get('record') or rule.get('alert')}", rule["expr"]) for rule in rules()]
    for path, dashboard in dashboards().items():
        out += [(f"dashboard {path.name}", expr) for expr in dashboard_expressions(dashboard)]
    return out


def test_the_files_reference_our_metrics_at_all():
    # Guards the extraction itself: an empty set would make the checks below vacuous.
    assert dashboards(), "no dashboard under deploy/grafana/dashboards"
    referenced = {name for _, expr in _all_expressions() for name in metric_names(expr)}
    assert {"vp_missions_dispatched_total", "vp_mission_duration_seconds_bucket", "vp_lane_queue_depth",
            "vp_sessions_orphaned"} <= referenced
    assert metric_names('vp:sessions_orphaned:ratio + vp_lane_in_flight{lane="x"}') == {"vp_lane_in_flight"}


@pytest.fixture(scope="module")
def scrape(ops_stack):
    return ops_stack.scrape()


def test_every_metric_in_rules_and_dashboards_is_exported(scrape):
    exported = scrape.exported
    missing = {}
    for where, expr in _all_expressions():
        for name in metric_names(expr):
            if name not in exported and base_name(name) not in exported:
                missing.setdefault(name, []).append(where)
    assert not missing, f"referenced but exported by no service: {missing}\nexported: {sorted(exported)}"


def test_histogram_suffixes_are_used_only_on_histograms(scrape):
    for where, expr in _all_expressions():
        for name in metric_names(expr):
            if base_name(name) != name:
                assert scrape.types.get(base_name(name)) == "histogram", f"{where}: {name} is not a histogram"


def test_every_recording_rule_used_is_defined():
    defined = recorded_names()
    assert defined, "no recording rules"
    for where, expr in _all_expressions():
        undefined = recording_names(expr) - defined
        assert not undefined, f"{where} uses undefined recording rules {undefined}"


def test_every_recording_rule_is_read_by_a_dashboard_or_an_alert():
    readers = [expr for dashboard in dashboards().values() for expr in dashboard_expressions(dashboard)]
    readers += [rule["expr"] for rule in rules() if "alert" in rule]
    used = set().union(*(recording_names(expr) for expr in readers))
    assert not recorded_names() - used, f"recording rules nobody reads: {recorded_names() - used}"


def test_label_matchers_name_real_labels_and_values(scrape, ops_stack):
    from services.common.telemetry import metrics as catalogue

    declared = {}
    for value in vars(catalogue).values():
        name = getattr(value, "_name", None)
        if name and hasattr(value, "_labelnames"):
            declared[name] = set(value._labelnames)
            declared[f"{name}_total"] = set(value._labelnames)
    problems = []
    for where, expr in _all_expressions():
        for metric, label, op, value in selectors(expr):
            base = base_name(metric)
            known = scrape.label_names(metric) or scrape.label_names(base) or declared.get(base, set())
            if label not in known:
                problems.append(f"{where}: {metric} has no label {label!r} (labels: {sorted(known)})")
                continue
            if "$" in value:
                continue  # a Grafana variable
            seen = scrape.label_values(metric, label) | scrape.label_values(base, label)
            if not seen:
                continue  # no sample yet (e.g. requeues): the label name check above is all we can do
            # Negative matchers too: code!="OK" must name the value successful calls really carry.
            pattern = re.compile(value if op in ("=~", "!~") else re.escape(value))
            if not any(pattern.fullmatch(v) for v in seen):
                problems.append(f"{where}: {metric}{{{label}{op}{value!r}}} matches none of {sorted(seen)}")
    assert not problems, "\n".join(problems)
