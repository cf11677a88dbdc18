"""Shared by the ops tests: the deploy/ files, PromQL name extraction, the
services started as real processes with their /metrics endpoints, and the
Prometheus / promtool binaries from Debian's prometheus package."""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from google.protobuf.duration_pb2 import Duration
from prometheus_client.parser import text_string_to_metric_families

from tests.support.e2e import free_port
from tests.support.processes import ServiceProcess, console_script

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
RULES_DIR = DEPLOY / "prometheus" / "rules"
RULE_TESTS_DIR = DEPLOY / "prometheus" / "tests"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARDS_DIR = DEPLOY / "grafana" / "dashboards"
PROVISIONING_DIR = DEPLOY / "grafana" / "provisioning"

CODER, GENERAL = "vp.coder.primary", "vp.general.primary"

# Metric names of ours (vp_...) and recording rules (vp:...). A lookbehind, not
# \b: "vp:x_vp_y" must not yield "vp_y" as a metric.
METRIC_NAME = re.compile(r"(?<![A-Za-z0-9_:])vp_[a-z0-9_]+")
RECORDING_NAME = re.compile(r"(?<![A-Za-z0-9_:])vp:[a-z0-9_:]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# metric{label op "value", ...} directly in an expression (templating values such
# as "$lane" are skipped by the callers).
SELECTOR = re.compile(r"(?<![A-Za-z0-9_:])(vp_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')

METRICS_LINE = re.compile(r"metrics on http://(\S+:\d+)/metrics")


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def need_binary(name: str, fallback: str | None = None) -> str:
    """Path of a Prometheus tool; FAIL in CI (make test installs it), skip elsewhere."""
    path = shutil.which(name) or (fallback if fallback and Path(fallback).exists() else None)
    if path:
        return path
    message = (f"{name} is not installed: `make promtool-test` installs Debian's prometheus package "
               "(apt-get install prometheus)")
    if in_ci():
        pytest.fail(f"{message}; CI must not skip it")
    pytest.skip(message)


# --- the deploy/ files ------------------------------------------------------------

def load_yaml(path: Path):
    with path.open() as handle:
        return yaml.safe_load(handle)


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def rules() -> list[dict]:
    return [rule for path in rule_files() for group in load_yaml(path)["groups"] for rule in group["rules"]]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def dashboards() -> dict[Path, dict]:
    return {path: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))}


def _walk_panels(panels: list[dict]):
    for panel in panels:
        yield panel
        yield from _walk_panels(panel.get("panels", []))


def dashboard_expressions(dashboard: dict) -> list[str]:
    """Every PromQL text in a dashboard: panel targets and templating queries."""
    out = [target["expr"] for panel in _walk_panels(dashboard.get("panels", []))
           for target in panel.get("targets", []) if target.get("expr")]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        out.append(query.get("query", "") if isinstance(query, dict) else str(query or ""))
        if variable.get("definition"):
            out.append(variable["definition"])
    return out


def metric_names(expression: str) -> set[str]:
    return set(METRIC_NAME.findall(expression))


def recording_names(expression: str) -> set[str]:
    return set(RECORDING_NAME.findall(expression))


def base_name(name: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def selectors(expression: str) -> list[tuple[str, str, str, str]]:
    """(metric, label, operator, value) of every matcher written on one of our metrics."""
    return [(metric, label, op, value)
            for metric, body in SELECTOR.findall(expression)
            for label, op, value in MATCHER.findall(body)]


# --- the services as processes, with /metrics ---------------------------------------

@dataclass
class Scrape:
    """What one /metrics page declares: families (with their type) and samples."""

    types: dict[str, str] = field(default_factory=dict)
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def add(self, text: str) -> None:
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples.append((sample.name, dict(sample.labels), sample.value))

    @property
    def exported(self) -> set[str]:
        """Names a query can use: family names as exposed (counters with _total)
        and every sample name."""
        names = set()
        for name, kind in self.types.items():
            names.add(f"{name}_total" if kind == "counter" else name)
        names.update(name for name, _, _ in self.samples)
        return names

    def label_values(self, metric: str, label: str) -> set[str]:
        """Values of label on the samples of metric (a family name or a sample name)."""
        wanted = {metric, f"{metric}_total", *(f"{metric}{s}" for s in HISTOGRAM_SUFFIXES)}
        return {labels[label] for name, labels, _ in self.samples if name in wanted and label in labels}

    def label_names(self, metric: str) -> set[str]:
        wanted = {metric, f"{metric}_total", *(f"{metric}{s}" for s in HISTOGRAM_SUFFIXES)}
        return {label for name, labels, _ in self.samples if name in wanted for label in labels} - {"le"}


def fetch_metrics(address: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=timeout) as response:
        return response.read().decode()


class OpsStack:
    """vp-registry, vp-dispatcher and one vp-worker (vp.coder.primary, noop executor)
    as real processes on one SQLite file, each serving /metrics on a free port.
    vp.general.primary has no worker, so missions sent there fall back."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db_url = f"sqlite:///{root / 'vp.db'}"
        self.processes: dict[str, ServiceProcess] = {}
        self.metrics: dict[str, str] = {}
        self.registry_address = ""
        self.dispatcher_address = ""

    def _start(self, name: str, argv: list[str], ready: str | re.Pattern | None = None) -> ServiceProcess:
        process = ServiceProcess([*argv, "--metrics-listen", "127.0.0.1:0"])
        self.processes[name] = process
        self.metrics[name] = process.wait_for_line(METRICS_LINE, timeout=20).group(1)
        if ready is not None:
            process.wait_for_line(ready, timeout=30)
        return process

    def start(self) -> None:
        handoff = self.root / "handoff"
        handoff.mkdir(parents=True, exist_ok=True)
        registry = self._start("registry", [
            console_script("vp-registry"), "--listen", "127.0.0.1:0", "--db", self.db_url, "--lease-ttl", "2",
            "--sweep-interval", "0.5", "--workspace-root", str(self.root / "workspaces"), "--insecure"])
        self.registry_address = registry.address()
        port = free_port()
        self.dispatcher_address = f"127.0.0.1:{port}"
        dispatcher = self._start("dispatcher", [
            console_script("vp-dispatcher"), "--listen", self.dispatcher_address, "--db", self.db_url,
            "--registry", self.registry_address, "--heartbeat-interval", "0.3", "--supervise-interval", "0.2",
            "--allowed-roots", str(handoff), "--insecure"])
        dispatcher.address()
        self._start("worker", [
            console_script("vp-worker"), "--dispatcher", self.dispatcher_address, "--registry",
            self.registry_address, "--vp-id", CODER, "--workspace-root", str(self.root / "workspaces"),
            "--executor", "noop", "--lease-ttl", "2", "--allowed-root", str(handoff), "--insecure"], ready=r"connected to")

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.kill()

    def scrape(self) -> Scrape:
        scrape = Scrape()
        for address in self.metrics.values():
            scrape.add(fetch_metrics(address))
        return scrape

    def run_missions(self, delegated: int, fallback: int) -> list:
        """Dispatch `delegated` missions to the coder lane (its worker runs them)
        and `fallback` to the general lane (no worker: falls back to the caller);
        wait for every one to end. Returns the final Mission messages."""
        import grpc

        from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
        from services.common.contracts.vp.v1 import mission_control_service_pb2_grpc as mc_grpc
        from services.common.contracts.vp.v1 import mission_pb2

        with grpc.insecure_channel(self.dispatcher_address) as channel:
            stub = mc_grpc.MissionControlStub(channel)
            ids = []
            for vp_id, mission_type, count in ((CODER, "code", delegated), (GENERAL, "task", fallback)):
                for i in range(count):
                    reply = stub.DispatchMission(mc_pb.DispatchMissionRequest(envelope=mission_pb2.MissionEnvelope(
                        vp_id=vp_id, mission_type=mission_type, objective=f"ops test {vp_id} #{i}")), timeout=10)
                    ids.append(reply.mission.envelope.mission_id)
            return [stub.WaitMission(mc_pb.WaitMissionRequest(mission_id=mission_id, timeout=Duration(seconds=20)),
                                     timeout=25).mission for mission_id in ids]
