"""The real Prometheus (Debian's /usr/bin/prometheus) scraping the services as
processes every second and evaluating deploy/prometheus/rules every second:
after delegated and fallback missions, the recording rules hold the values those
missions imply, every rule evaluates without error, and the alerts the general
lane's fallbacks should raise are pending. Skips without
Prometheus; fails in CI (make test installs it)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from tests.ops.ops_support import CODER, GENERAL, need_binary, rule_files
from tests.support.e2e import free_port

JOBS = {"registry": "vp-registry", "dispatcher": "vp-dispatcher", "worker": "vp-worker"}


class Prometheus:
    def __init__(self, binary: str, tmp_path, targets: dict[str, str]) -> None:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files()],
            "scrape_configs": [{"job_name": JOBS[name], "static_configs": [{"targets": [address]}]}
                               for name, address in targets.items()],
        }
        config_file = tmp_path / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.address = f"127.0.0.1:{free_port()}"
        self.log = (tmp_path / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config_file}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address={self.address}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.log_path = tmp_path / "prometheus.log"

    def get(self, path: str, **params) -> dict:
        url = f"http://{self.address}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read().decode())

    def query(self, expr: str) -> dict[str, float]:
        """Instant query: {lane or "" : value}."""
        data = self.get("/api/v1/query", query=expr)["data"]
        return {item["metric"].get("lane", ""): float(item["value"][1]) for item in data["result"]}

    def wait(self, condition, what: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                last = condition()
            except (OSError, ValueError, KeyError) as error:  # not up yet, or an empty result
                last = error
            else:
                if last:
                    return last
            time.sleep(0.25)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})\n"
                             f"{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


@pytest.fixture
def prometheus(ops_stack, tmp_path):
    binary = need_binary("prometheus", "/usr/bin/prometheus")
    server = Prometheus(binary, tmp_path, ops_stack.metrics)
    try:
        server.wait(lambda: urllib.request.urlopen(f"http://{server.address}/-/ready", timeout=2).status == 200,
                    "prometheus to be ready")
        yield server
    finally:
        server.stop()


def test_recording_rules_hold_the_values_real_missions_imply(ops_stack, prometheus):
    # Every target up, and the counters seen once before the missions: rate()
    # only counts what happens between two samples.
    prometheus.wait(lambda: prometheus.query("count(up == 1)").get("") == len(JOBS), "every service to be scraped")
    prometheus.wait(lambda: prometheus.query('vp_missions_dispatched_total{route="delegated"}'),
                    "a first sample of the dispatch counters")

    delegated, fallback = 4, 2
    missions = ops_stack.run_missions(delegated=delegated, fallback=fallback)
    from services.common.contracts.vp.v1 import enums_pb2 as S

    assert [m.state for m in missions] == [S.MISSION_STATE_COMPLETED] * delegated + \
        [S.MISSION_STATE_FAILED] * fallback, "coder missions complete, general ones fall back to the caller"

    def settled():
        # the values once a scrape after the missions has been evaluated
        share = prometheus.query("vp:mission_delegated_share:rate15m")
        fallback_ratio = prometheus.query("vp:mission_fallback_ratio:rate15m")
        overall = prometheus.query("vp:mission_delegated_share_overall:rate15m")
        done = prometheus.query(f'sum by (lane) (vp_missions_finished_total{{lane="{CODER}"}})')
        if share.get(CODER) == 1 and fallback_ratio.get(GENERAL) == 1 and overall and \
                done.get(CODER, 0) >= delegated + 1 and 0.5 < overall[""] < 0.8:
            return share, fallback_ratio, overall
        return None

    share, fallback_ratio, overall = prometheus.wait(settled, "the recording rules to take the missions in")

    # The coder lane took all its missions itself; the general lane (no worker) none.
    assert share == {CODER: 1.0, GENERAL: 0.0}
    assert fallback_ratio == {CODER: 0.0, GENERAL: 1.0}
    # 4 of the 6 missions since the first scrape were delegated; rate()'s
    # extrapolation differs a little between series that started at 0 and at 1.
    assert overall[""] == pytest.approx(delegated / (delegated + fallback), abs=0.1)
    fallback_overall = prometheus.query("vp:mission_fallback_ratio_overall:rate15m")
    assert fallback_overall[""] == pytest.approx(fallback / (delegated + fallback), abs=0.1)
    # A fallback to the caller ends the mission FAILED: the failure ratio counts it.
    assert prometheus.query("vp:mission_failure_ratio:rate15m") == {CODER: 0.0, GENERAL: 1.0}

    # Latency quantiles of the coder lane are those of no-op missions; the general
    # lane completed nothing, so it has none (its instant fallbacks are not latency).
    p50 = prometheus.query("vp:mission_latency_seconds:p50_5m")
    p95 = prometheus.query("vp:mission_latency_seconds:p95_5m")
    assert set(p50) == set(p95) == {CODER}, (p50, p95)
    assert 0 < p50[CODER] <= p95[CODER] < 5, (p50, p95)

    # The gauges behind the no-live-session alert: coder served, general not, nothing queued.
    # Gauges are sampled: the dispatcher refreshes them every supervision tick
    # (its load view may be up to a second old) and Prometheus scrapes every
    # second, so a scrape taken while the last mission was still queued can be
    # the latest sample for a moment. Wait for the state, then hold it.
    gauges = {"vp_lane_live_session": {CODER: 1.0, GENERAL: 0.0}, "vp_lane_queue_depth": {CODER: 0.0, GENERAL: 0.0}}
    prometheus.wait(lambda: all(prometheus.query(name) == want for name, want in gauges.items()),
                    "the lane gauges to show the served, drained lanes")

    # Every rule loaded and evaluated without error, and no alert fires.
    groups = prometheus.get("/api/v1/rules")["data"]["groups"]
    loaded = [rule for group in groups for rule in group["rules"]]
    expected = sum(len(group["rules"]) for path in rule_files() for group in yaml.safe_load(path.read_text())["groups"])
    assert len(loaded) == expected
    errors = {rule["name"]: rule.get("lastError") for rule in loaded if rule["health"] != "ok"}
    assert not errors, errors

    # The general lane's alerts are pending on real data (they fire only after
    # their `for:`); the coder lane raises none.
    def pending():
        alerts = prometheus.get("/api/v1/alerts")["data"]["alerts"]
        assert all(alert["state"] == "pending" for alert in alerts), alerts
        return {(alert["labels"]["alertname"], alert["labels"].get("lane")) for alert in alerts} == {
            ("VPLaneFallbackRateHigh", GENERAL), ("VPLaneMissionFailuresSustained", GENERAL)}

    prometheus.wait(pending, "the general lane's fallback and failure alerts to be pending")
