"""The real console scripts as processes: registry, dispatcher, workers."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from services.common.contracts.vp.v1 import mission_control_service_pb2_grpc as mc_grpc
from services.common.security import ChannelSecurity
from tests.support.processes import ServiceProcess, console_script
from tests.support.security import Pki, channel_for, shared_pki


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class E2EStack:
    db_url: str
    root: Path
    # 4 s, not less: the worker trusts its term for TTL minus a margin of at least 1 s,
    # and a 1 s window lapses under a loaded CI machine, adding a spurious attempt.
    lease_ttl: float = 4.0
    registry: ServiceProcess | None = None
    dispatcher: ServiceProcess | None = None
    workers: dict[str, ServiceProcess] = field(default_factory=dict)
    dispatcher_port: int = 0
    registry_address: str = ""
    # Secure by default: TLS with mTLS identities from the test CA. False: every process
    # gets --insecure (plaintext, no authentication).
    secure: bool = True

    @property
    def pki(self) -> Pki | None:
        return shared_pki() if self.secure else None

    def server_args(self) -> list[str]:
        return self.pki.server_args() if self.secure else ["--insecure"]

    def channel_args(self, identity: str) -> list[str]:
        return self.pki.channel_args(identity) if self.secure else ["--insecure"]

    def worker_args(self, vp_id: str) -> list[str]:
        return self.channel_args(f"worker-{vp_id}")

    def channel_security(self, identity: str = "client") -> ChannelSecurity:
        return channel_for(self.pki, identity)

    def client_env(self, identity: str = "client") -> dict[str, str]:
        """Environment for a client process (vpctl, vp-mcp) speaking as identity."""
        return self.pki.client_env(identity) if self.secure else {"VP_INSECURE": "1"}

    def start_registry(self, *extra: str) -> None:
        self.registry = ServiceProcess([
            console_script("vp-registry"), "--listen", "127.0.0.1:0", "--db", self.db_url,
            "--lease-ttl", str(self.lease_ttl), "--sweep-interval", "0.5",
            "--workspace-root", str(self.root / "workspaces"), *self.server_args(), *extra])
        self.registry_address = self.registry.address()

    def start_dispatcher(self, *extra: str) -> None:
        self.dispatcher_port = self.dispatcher_port or free_port()
        self.dispatcher = ServiceProcess([
            console_script("vp-dispatcher"), "--listen", f"127.0.0.1:{self.dispatcher_port}", "--db", self.db_url,
            "--registry", self.registry_address, "--heartbeat-interval", "0.3", "--supervise-interval", "0.2",
            "--allowed-roots", str(self.root / "handoff"), *self.server_args(), *self.channel_args("dispatcher"),
            *extra])
        self.dispatcher.address()

    @property
    def dispatcher_address(self) -> str:
        return f"127.0.0.1:{self.dispatcher_port}"

    def start_worker(self, vp_id: str, *extra: str, executor: str = "demo") -> ServiceProcess:
        worker = ServiceProcess([
            console_script("vp-worker"), "--dispatcher", self.dispatcher_address, "--registry",
            self.registry_address, "--vp-id", vp_id, "--workspace-root", str(self.root / "workspaces"),
            "--executor", executor, "--lease-ttl", str(self.lease_ttl), "--allowed-root", str(self.root / "handoff"),
            *self.worker_args(vp_id), *extra])
        self.workers[vp_id] = worker
        worker.wait_for_line(r"connected to", timeout=30)
        return worker

    def missions(self) -> tuple[grpc.Channel, mc_grpc.MissionControlStub]:
        channel = self.channel_security("client").channel(self.dispatcher_address)
        return channel, mc_grpc.MissionControlStub(channel)

    def stop(self) -> None:
        for process in [*self.workers.values(), self.dispatcher, self.registry]:
            if process is not None:
                process.kill()
