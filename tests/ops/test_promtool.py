"""promtool on the rules, their unit tests and the Prometheus config (the same as
`make promtool-test`, so plain `pytest` covers them too). promtool comes from
Debian's prometheus package; missing, the tests skip, except in CI, where they fail."""

from __future__ import annotations

import subprocess

from tests.ops.ops_support import PROMETHEUS_CONFIG, RULE_TESTS_DIR, need_binary, rule_files


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([need_binary("promtool"), *args], capture_output=True, text=True, timeout=60)


def test_rules_are_valid():
    files = [str(p) for p in rule_files()]
    assert files
    result = promtool("check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass():
    tests = sorted(str(p) for p in RULE_TESTS_DIR.glob("*.yml"))
    assert tests
    result = promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_prometheus_config_is_valid():
    # --syntax-only: the rule_files glob names the container path (/etc/prometheus/rules).
    result = promtool("check", "config", "--syntax-only", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
