"""vpctl up: the embedded default. Starts the registry, the dispatcher and one
demo worker each for vp.coder.primary and vp.general.primary, all on SQLite
under --data-dir, runs a demo mission so the work is visible, and stays up
until Ctrl-C, which stops everything cleanly (workers drain first).

Secure by default: on first run it creates a local CA, certificates and tokens
under the data dir (services/common/auth/datadir.py) and starts every process
with TLS and mTLS identities; vpctl and the Python client find them there.
--insecure runs everything in plaintext without authentication (with a warning)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.cli import exit_codes
from services.client import SyncMissionControlClient, SyncSessionsClient, is_terminal, mission_state_name
from services.common.auth.datadir import Credentials, worker_identity
from services.common.security import INSECURE_CHANNEL, INSECURE_WARNING, ChannelSecurity

LANES = ("vp.coder.primary", "vp.general.primary")
METRICS_HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen


def _spawn(name: str, module: str, *args: str) -> Child:
    process = subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def relay() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stderr.write(f"[{name}] {line}")

    threading.Thread(target=relay, daemon=True).start()
    return Child(name, process)


class PortTaken(RuntimeError):
    """A port of the stack is held by another process: a configuration error (exit 2, as the services)."""


def _check_free(address: str) -> None:
    """Refuse to start on a port another process holds. The services fail on it
    too, but a health check could reach the other process before ours exits."""
    host, _, port = address.rpartition(":")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are no conflict
        try:
            probe.bind((host.strip("[]"), int(port)))
        except OSError as error:
            raise PortTaken(f"cannot listen on {address}: {error.strerror or error} (is another stack "
                            "running? choose other ports with --registry / --dispatcher)") from None


def _wait_healthy(address: str, service: str, child: Child, security: ChannelSecurity) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with security.channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.process.returncode}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"{child.name} did not become healthy on {address} within {READY_TIMEOUT_S:.0f}s")


def _wait_lanes(registry: str, children: list[Child], security: ChannelSecurity) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with SyncSessionsClient(registry, security=security) as sessions:
        while time.monotonic() < deadline:
            for child in children:
                if child.process.poll() is not None:
                    raise RuntimeError(f"{child.name} exited with {child.process.returncode}")
            live = {s.vp_id for s in sessions.list_sessions(stale=False) if s.lease_owner}
            if set(LANES) <= live:
                return
            time.sleep(0.2)
    raise RuntimeError("workers did not acquire their leases in time")


DEMO_OBJECTIVE = "Write a short poem about missions that always finish. May it rhyme?"
DEMO_ANSWER = "yes"


def _demo(dispatcher: str, security: ChannelSecurity) -> None:
    with SyncMissionControlClient(dispatcher, security=security) as missions:
        # The objective ends with "?": the demo agent asks first (agent protocol v1), so the
        # default shows a question, its answer (ResumeMission) and the usage reported.
        mission, route, _ = missions.dispatch("vp.general.primary", "task", DEMO_OBJECTIVE)
        mission_id = mission.envelope.mission_id
        print(f"demo mission {mission_id}: {route.provenance}", flush=True)
        for event in missions.events(mission_id=mission_id, follow=True):
            detail = event.payload["message"] if "message" in event.payload else ""
            print(f"  {event.event_type} {detail}".rstrip(), flush=True)
            if event.event_type == "vp.mission.input_required":
                print(f"demo mission asks: {event.payload['question']}\n  answering {DEMO_ANSWER!r} "
                      f"(vpctl resume {mission_id} --answer {DEMO_ANSWER})", flush=True)
                missions.resume(mission_id, DEMO_ANSWER)
            if event.event_type in {"vp.mission.completed", "vp.mission.failed", "vp.mission.cancelled",
                                    "vp.mission.timed_out"}:
                break
        final = missions.get(mission_id)
        print(f"demo mission {mission_state_name(final.state)}; artifacts in {final.result_ref}", flush=True)
        if final.HasField("usage"):
            print(f"demo mission usage: {final.usage.total_tokens} tokens, {final.usage.cost_usd:.4f} USD "
                  f"({final.usage.model})", flush=True)
        if is_terminal(final.state) and final.result_ref:
            result = missions.read_artifacts(mission_id, "result.md")
            print(result.get("result.md", b"").decode(errors="replace"), flush=True)


def _stop(children: list[Child]) -> None:
    for child in reversed(children):  # workers drain first, the registry goes last
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
            try:
                child.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()


def _metrics_addresses(base_port: int) -> list[str]:
    """Registry, dispatcher, then one per lane: base, base+1, ... (0: every one picks a free port)."""
    count = 2 + len(LANES)
    return [f"{METRICS_HOST}:{base_port + i if base_port else 0}" for i in range(count)]


def run_up(args) -> int:
    data = Path(args.data_dir).resolve()
    metrics_base_port = getattr(args, "metrics_base_port", 0)
    metrics = _metrics_addresses(metrics_base_port)
    (data / "handoff").mkdir(parents=True, exist_ok=True)
    registry, dispatcher = args.registry, args.dispatcher
    credentials = Credentials(data)
    if getattr(args, "insecure", False):
        print(f"vpctl up: WARNING: {INSECURE_WARNING}", file=sys.stderr, flush=True)
        server_args = channel_args = worker_args = lambda *_: ["--insecure"]  # noqa: E731
        client = INSECURE_CHANNEL
    else:
        if credentials.ensure(lanes=LANES):
            print(f"created a local CA, certificates and tokens under {credentials.root}", flush=True)
        server_args = lambda: credentials.server_args()  # noqa: E731
        channel_args = credentials.channel_args
        worker_args = lambda vp_id: credentials.channel_args(worker_identity(vp_id))  # noqa: E731
        client = credentials.channel_security("client")
    # A signal handler must not take locks the interrupted code may hold
    # (Event.set inside Event.wait deadlocks): it only flips a flag.
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    # One store file for the registry and the dispatcher: the registry's
    # vp.session.* events land in the same event log StreamMissionEvents reads.
    db = f"sqlite:///{data / 'vp.db'}"
    children: list[Child] = []
    try:
        for address in (registry, dispatcher):
            _check_free(address)
        children.append(_spawn("registry", "services.registry.main", "--listen", registry,
                               "--db", db, "--metrics-listen", metrics[0],
                               "--workspace-root", str(data / "workspaces"), "--drain-window", "0", *server_args()))
        _wait_healthy(registry, "vp.v1.SessionRegistry", children[-1], client)
        children.append(_spawn("dispatcher", "services.dispatcher.main", "--listen", dispatcher,
                               "--db", db, "--registry", registry,
                               "--allowed-roots", str(data / "handoff"), "--metrics-listen", metrics[1],
                               "--drain-window", "0", *server_args(), *channel_args("dispatcher")))
        _wait_healthy(dispatcher, "vp.v1.MissionControl", children[-1], client)
        for vp_id, metrics_listen in zip(LANES, metrics[2:]):
            children.append(_spawn(vp_id, "services.worker.main", "--dispatcher", dispatcher, "--registry",
                                   registry, "--vp-id", vp_id, "--workspace-root", str(data / "workspaces"),
                                   "--executor", "demo", "--allowed-root", str(data / "handoff"),
                                   "--metrics-listen", metrics_listen, *worker_args(vp_id)))
        _wait_lanes(registry, children, client)
        print(f"VP Mission Control is up: registry {registry}, dispatcher {dispatcher}, data in {data}",
              flush=True)
        if metrics_base_port:
            print("metrics: " + ", ".join(f"{name} http://{address}/metrics" for name, address in
                                          zip(("registry", "dispatcher", *LANES), metrics)), flush=True)
        if not args.no_demo:
            _demo(dispatcher, client)
        print("Press Ctrl-C to stop.", flush=True)
        while not stopping:
            time.sleep(0.2)
            dead = [c for c in children if c.process.poll() is not None]
            if dead:
                print(f"vpctl up: {dead[0].name} exited with {dead[0].process.returncode}; stopping",
                      file=sys.stderr)
                return exit_codes.ERROR
        print("stopping...", flush=True)
        return exit_codes.OK
    except PortTaken as error:
        print(f"vpctl up: {error}", file=sys.stderr)
        return exit_codes.USAGE
    except RuntimeError as error:
        print(f"vpctl up: {error}", file=sys.stderr)
        return exit_codes.UNAVAILABLE
    finally:
        _stop(children)


def run_credentials(args) -> int:
    """vpctl credentials init: what `vpctl up` creates, for deployments that mount them
    (docker compose secrets). Existing files are kept."""
    credentials = Credentials(Path(args.out))
    created = credentials.ensure(lanes=[*LANES, *args.lane], hosts=args.host)
    print(f"{'created' if created else 'kept'} credentials under {credentials.root.resolve()}", flush=True)
    return exit_codes.OK
