"""docker-compose.yml, the Dockerfile and the Prometheus / Grafana provisioning
agree with the code, checked statically (no Docker engine here): commands are our
console scripts, every environment variable is one the code reads and is
accepted by the service's own argument parser, ports and addresses line up
between services, Prometheus and Grafana find their files through the mounts,
and the healthcheck one-liners really answer (run against real processes)."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pytest

from tests.ops.ops_support import (
    COMPOSE_FILE,
    DASHBOARDS_DIR,
    PROMETHEUS_CONFIG,
    PROVISIONING_DIR,
    ROOT,
    dashboards,
    load_yaml,
    rule_files,
)
from tests.support.e2e import free_port
from tests.support.security import shared_pki

# Our services in compose, and the code that reads their settings.
CREDENTIALS_DIR = "/var/lib/vp/credentials"
OURS = {
    "registry": ("vp-registry", "registry"),
    "dispatcher": ("vp-dispatcher", "dispatcher"),
    "worker-coder": ("vp-worker", "worker"),
    "worker-general": ("vp-worker", "worker"),
}
METRICS_ENV = {"vp-registry": "VP_REGISTRY_METRICS_LISTEN", "vp-dispatcher": "VP_DISPATCHER_METRICS_LISTEN",
               "vp-worker": "VP_WORKER_METRICS_LISTEN"}
GRPC_LISTEN_ENV = {"vp-registry": "VP_REGISTRY_LISTEN", "vp-dispatcher": "VP_DISPATCHER_LISTEN"}
# OTEL_* variables are read by the OpenTelemetry SDK itself, not by our argument
# parsers: OTEL_SERVICE_NAME by Resource.create(), OTEL_EXPORTER_OTLP_ENDPOINT by the
# OTLP exporter, OTEL_TRACES_EXPORTER / _PROTOCOL / OTEL_METRICS_EXPORTER /
# OTEL_LOGS_EXPORTER by the SDK's environment configurator. Allowed when the SDK
# defines the name (a typo is still caught).
SDK_READ_PREFIXES = ("OTEL_",)


def sdk_env_names() -> set[str]:
    import opentelemetry.environment_variables as api_vars
    import opentelemetry.sdk.environment_variables as sdk_vars

    return {value for module in (api_vars, sdk_vars) for value in vars(module).values()
            if isinstance(value, str) and value.startswith(SDK_READ_PREFIXES)}

ENV_ARGUMENT = re.compile(r"""\benv\s*=\s*["']([A-Z][A-Z0-9_]*)["']""")
OS_ENVIRON = re.compile(r"""os\.(?:environ\.get|getenv)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
                        r"""|os\.environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]""")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE_FILE)


def interpolate(value) -> str:
    """Compose's ${VAR:-default} with nothing set in the environment: the default."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: interpolate("" if value is None else value) for name, value in env.items()}


def argv(service: dict, key: str = "command") -> list[str]:
    value = service.get(key) or []
    return value.split() if isinstance(value, str) else [str(v) for v in value]


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def code_env_names(package: str) -> set[str]:
    """Names the code of one service reads: its package and services/common, scanned
    for add_env_argument(env="...") and os.environ / os.getenv lookups."""
    names: set[str] = set()
    for folder in (ROOT / "services" / package, ROOT / "services" / "common"):
        for path in folder.rglob("*.py"):
            if "contracts" in path.parts:
                continue
            text = path.read_text()
            names.update(ENV_ARGUMENT.findall(text))
            for a, b in OS_ENVIRON.findall(text):
                names.add(a or b)
    if package == "dispatcher":
        # The routing flags are named per lane (VP_LANE_<ID>_ENABLED...), so no
        # literal exists to scan: take the list the dispatcher prints in --help.
        from services.dispatcher.routing import default_lanes, describe_env_vars

        names.update(name for name, _ in describe_env_vars(default_lanes()))
    return names


def mounts(service: dict) -> list[tuple[str, str]]:
    """(source, container path) of each bind or named-volume mount (short syntax)."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            out.append((volume["source"], volume["target"]))
        else:
            source, target = volume.split(":")[:2]
            out.append((source, target))
    return out


def host_path(service: dict, container_path: str) -> Path | None:
    """The file on this checkout that container_path of service is, through its bind mounts."""
    wanted = PurePosixPath(container_path)
    for source, target in mounts(service):
        if not source.startswith((".", "/")):
            continue  # a named volume: not in the repository
        target_path = PurePosixPath(target)
        if wanted == target_path or target_path in wanted.parents:
            return (ROOT / source / wanted.relative_to(target_path)).resolve()
    return None


# --- commands and environment -------------------------------------------------------

def test_the_stack_has_every_service(compose):
    assert set(compose["services"]) >= {
        "postgres", "registry", "dispatcher", "worker-coder", "worker-general", "prometheus", "grafana", "jaeger"}


def test_our_services_run_console_scripts_from_pyproject(compose):
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    # The one-shot credentials init runs vpctl, not a service of ours.
    ours = [name for name, service in compose["services"].items()
            if "build" in service and argv(service, "command")[:1] != ["vpctl"]]
    assert sorted(ours) == sorted(OURS), "every service built from our Dockerfile is checked here"
    for name, (script, _) in OURS.items():
        service = compose["services"][name]
        command = argv(service, "entrypoint") or argv(service, "command")
        assert command and command[0] in scripts, f"{name}: {command} is not one of {sorted(scripts)}"
        assert command[0] == script, f"{name} runs {command[0]}, expected {script}"
        # Settings through the environment only.
        assert command == [script] and not argv(service, "entrypoint"), f"{name} passes flags: {command}"


def test_every_environment_variable_is_read_by_the_code(compose):
    problems = []
    sdk = sdk_env_names()
    for name, (_, package) in OURS.items():
        read = code_env_names(package)
        assert len(read) > 5, f"the scan of services/{package} found almost nothing: {read}"
        for variable in environment(compose["services"][name]):
            if variable.startswith(SDK_READ_PREFIXES):
                if variable not in sdk:
                    problems.append(f"{name}: {variable} is no OpenTelemetry SDK variable")
            elif variable not in read:
                problems.append(f"{name}: {variable} is read by no code of services/{package} or services/common")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(OURS))
def test_the_services_own_parser_accepts_the_compose_environment(compose, monkeypatch, name):
    """Every value is valid: the service's build_parser() reads the variables at
    construction, parse_args([]) and the settings step validate them."""
    import importlib
    import os

    env = environment(compose["services"][name])
    for variable in list(os.environ):
        if variable.startswith(("VP_", "UA_", "OTEL_")):
            monkeypatch.delenv(variable)
    # The credentials volume is the one-shot init's output: here, the test CA's files.
    credentials = str(shared_pki().credentials.root)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value.replace(CREDENTIALS_DIR, credentials))
    script, package = OURS[name]
    main = importlib.import_module(f"services.{package}.main")
    parser = main.build_parser()
    args = parser.parse_args([])
    if package == "worker":
        config = main.config_from(args)
        assert config.vp_id == env["VP_WORKER_VP_ID"]
    else:
        main.settings_from(args)
    assert getattr(args, "metrics_listen", None) == env[METRICS_ENV[script]]
    if script in GRPC_LISTEN_ENV:
        assert args.listen == env[GRPC_LISTEN_ENV[script]]


# --- addresses and ports ---------------------------------------------------------------

def test_services_listen_on_all_interfaces_and_find_each_other(compose):
    services = compose["services"]
    listen = {}
    for name, (script, _) in OURS.items():
        env = environment(services[name])
        for variable in (METRICS_ENV[script], GRPC_LISTEN_ENV.get(script)):
            if variable:
                host, _ = host_port(env[variable])
                assert host == "0.0.0.0", f"{name}: {variable}={env[variable]} is unreachable from other containers"
        if script in GRPC_LISTEN_ENV:
            listen[name] = host_port(env[GRPC_LISTEN_ENV[script]])[1]
    for name in ("dispatcher", "worker-coder", "worker-general"):
        env = environment(services[name])
        assert env["VP_REGISTRY_ADDR"] == f"registry:{listen['registry']}", name
        if name.startswith("worker"):
            assert env["VP_DISPATCHER_ADDR"] == f"dispatcher:{listen['dispatcher']}", name
    assert {environment(services[n])["VP_WORKER_VP_ID"] for n in ("worker-coder", "worker-general")} == {
        "vp.coder.primary", "vp.general.primary"}


def test_database_url_matches_the_postgres_service(compose):
    postgres = environment(compose["services"]["postgres"])
    assert compose["services"]["postgres"]["image"].startswith("postgres:16")
    assert "${VP_POSTGRES_PASSWORD:-" in compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    for name in ("registry", "dispatcher"):
        raw = compose["services"][name]["environment"]["VP_DB_URL"]
        assert "${VP_POSTGRES_PASSWORD:-" in raw, f"{name}: the password must come from the same variable"
        url = urlparse(environment(compose["services"][name])["VP_DB_URL"])
        assert url.scheme == "postgresql+psycopg"
        assert (url.hostname, url.port, url.username, url.password, url.path.lstrip("/")) == (
            "postgres", 5432, postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"])


def test_prometheus_scrapes_every_metrics_port_configured_in_compose(compose):
    config = load_yaml(PROMETHEUS_CONFIG)
    targets = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = host_port(target)
                targets[host] = (job["job_name"], port)
    configured = {}
    for name, (script, _) in OURS.items():
        service = compose["services"][name]
        flags = argv(service)
        value = flags[flags.index("--metrics-listen") + 1] if "--metrics-listen" in flags else \
            environment(service).get(METRICS_ENV[script])
        assert value, f"{name} serves no metrics"
        configured[name] = host_port(value)[1]
    for name, port in configured.items():
        assert name in targets, f"Prometheus does not scrape {name}"
        assert targets[name][1] == port, f"Prometheus scrapes {name}:{targets[name][1]}, it serves :{port}"
    assert {"registry": 9101, "dispatcher": 9102, "worker-coder": 9103, "worker-general": 9104} == configured
    for host in set(targets) - {"localhost"}:
        assert host in compose["services"], f"scrape target {host} is no compose service"
    assert len({targets[name][0] for name in configured} - {"vp-worker"}) == 2


def test_prometheus_loads_the_config_and_rules_through_its_mounts(compose):
    service = compose["services"]["prometheus"]
    flags = dict(f.split("=", 1) for f in argv(service) if f.startswith("--") and "=" in f)
    config_path = host_path(service, flags.get("--config.file", "/etc/prometheus/prometheus.yml"))
    assert config_path == PROMETHEUS_CONFIG.resolve()
    loaded = set()
    for pattern in load_yaml(PROMETHEUS_CONFIG)["rule_files"]:
        folder = host_path(service, str(PurePosixPath(pattern).parent))
        assert folder is not None, f"rule_files {pattern} is not mounted"
        loaded |= {p.resolve() for p in folder.glob(PurePosixPath(pattern).name)}
    assert loaded == {p.resolve() for p in rule_files()}, "every rules file, and only those, is loaded"


def test_grafana_provisions_the_datasource_and_the_dashboard(compose):
    service = compose["services"]["grafana"]
    provisioning = host_path(service, "/etc/grafana/provisioning")
    assert provisioning == PROVISIONING_DIR.resolve()
    providers = load_yaml(provisioning / "dashboards" / "vp.yml")["providers"]
    dashboard_files = set()
    for provider in providers:
        folder = host_path(service, provider["options"]["path"])
        assert folder is not None and folder.is_dir(), f"{provider['options']['path']} is not mounted"
        dashboard_files |= {p.name for p in folder.glob("*.json")}
    assert "vp-lane-overview.json" in dashboard_files
    assert (DASHBOARDS_DIR / "vp-lane-overview.json").exists()
    home = environment(service).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert host_path(service, home) == (DASHBOARDS_DIR / "vp-lane-overview.json").resolve()

    datasources = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    prometheus = next(d for d in datasources if d["type"] == "prometheus")
    url = urlparse(prometheus["url"])
    assert url.hostname == "prometheus" and url.port == 9090 and "prometheus" in compose["services"]
    for path, dashboard in dashboards().items():
        variable = next(v for v in dashboard["templating"]["list"] if v["type"] == "datasource")
        assert variable["current"]["value"] == prometheus["uid"], path.name


def test_the_dashboard_has_the_panels_and_the_lane_variable():
    dashboard = dashboards()[DASHBOARDS_DIR / "vp-lane-overview.json"]
    assert dashboard["title"] == "VP lane overview" and dashboard["schemaVersion"] >= 39
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    lane = next(v for v in dashboard["templating"]["list"] if v["name"] == "lane")
    assert lane["type"] == "query" and lane["includeAll"] and lane["multi"]
    text = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for needle in ("vp_sessions", "vp_missions_finished_total", "vp:mission_latency_seconds:p50_5m",
                   "vp:mission_latency_seconds:p95_5m", "vp:mission_fallback_ratio:rate15m",
                   "vp:session_recovery_ratio:increase1h", "vp_lane_queue_depth", "vp_lane_in_flight",
                   "vp_worker_streams", '$lane'):
        assert needle in text, needle


# --- volumes, ordering, healthchecks ----------------------------------------------------------

def test_workspaces_are_shared_between_workers_and_the_dispatcher(compose):
    services = compose["services"]
    dispatcher_mounts = dict((target, source) for source, target in mounts(services["dispatcher"]))
    for name in ("worker-coder", "worker-general"):
        env = environment(services[name])
        worker_mounts = dict((target, source) for source, target in mounts(services[name]))
        root = env["VP_WORKSPACE_ROOT"]
        assert root in worker_mounts and worker_mounts[root] in compose.get("volumes", {}), f"{name}: {root}"
        assert dispatcher_mounts.get(root) == worker_mounts[root], "the dispatcher reads what the workers wrote"
        for allowed in env["VP_ALLOWED_ROOTS"].split(":"):
            assert allowed in worker_mounts, f"{name}: allowed root {allowed} is not on a volume"


def test_startup_order_waits_for_healthy_dependencies(compose):
    services = compose["services"]
    assert services["registry"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("dispatcher", "worker-coder", "worker-general"):
        assert services[name]["depends_on"]["registry"]["condition"] == "service_healthy", name
    for name in ("worker-coder", "worker-general"):
        assert services[name]["depends_on"]["dispatcher"]["condition"] == "service_healthy", name


def test_every_service_of_ours_has_a_healthcheck_on_its_own_port(compose):
    for name, (script, _) in OURS.items():
        service = compose["services"][name]
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
        env = environment(service)
        port = host_port(env[GRPC_LISTEN_ENV[script] if script in GRPC_LISTEN_ENV else METRICS_ENV[script]])[1]
        assert f"127.0.0.1:{port}" in " ".join(test), f"{name}: healthcheck does not probe port {port}"
    assert compose["services"]["postgres"].get("healthcheck")


def _healthcheck(compose, name: str) -> list[str]:
    test = compose["services"][name]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python" and test[2] == "-c", test
    return test[3:]


def _run_probe(code: str) -> int:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=20).returncode


def test_healthchecks_answer_against_the_real_services(compose, ops_stack):
    """The one-liners as written, pointed at the processes of the ops stack."""
    probes = {"registry": ops_stack.registry_address, "dispatcher": ops_stack.dispatcher_address,
              "worker-coder": ops_stack.metrics["worker"]}
    for name, address in probes.items():
        (code,) = _healthcheck(compose, name)
        port = re.search(r"127\.0\.0\.1:(\d+)", code).group(1)
        assert _run_probe(code.replace(f"127.0.0.1:{port}", address)) == 0, f"{name} healthcheck failed"
        # and it fails when nothing answers
        assert _run_probe(code.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}")) != 0, name


# --- the image ----------------------------------------------------------------------------

def _dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.rstrip("/")
        parts = PurePosixPath(path).parts
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(c, pattern) or fnmatch.fnmatch(c, pattern.replace("**/", "")) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerfile_installs_the_package_without_dev_deps_as_non_root():
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.replace("\\\n", " ").splitlines() if line.strip()
             and not line.strip().startswith("#")]
    assert lines[0].split()[:2] == ["FROM", "python:3.11-slim"]
    installs = [line for line in lines if "pip install" in line]
    assert installs and all("pip install ." in line and "[dev]" not in line and "-e " not in line
                            for line in installs), installs
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    copied = [src for line in lines if line.startswith("COPY ") for src in line.split()[1:-1]
              if not src.startswith("--")]
    assert copied
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert pyproject["readme"] in copied, "pip install . needs the readme pyproject.toml names"
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not _dockerignore_excludes(source, patterns), f".dockerignore excludes {source}"
    for path in ("services/registry/main.py", "services/common/store/migrations/env.py"):
        assert not _dockerignore_excludes(path, patterns), path
    for path in (".venv", ".git", "tests/conftest.py", "node_modules"):
        assert _dockerignore_excludes(path, patterns), f"{path} would be sent to the build"
