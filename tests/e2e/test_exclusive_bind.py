"""Two servers never share a port: a second vp-registry or vp-dispatcher on a
taken port exits at once with status 2 and a message naming the port, and the
first one keeps serving every call (grpc's default SO_REUSEPORT would have let
the kernel split connections between the two)."""

from __future__ import annotations

import socket
import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.grpc_server import EXIT_CANNOT_LISTEN
from tests.support.e2e import free_port
from tests.support.processes import console_script


def _second(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def _serving(e2e, address: str) -> bool:
    with e2e.channel_security("operator").channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("service", ["registry", "dispatcher"])
def test_a_second_server_on_a_taken_port_fails_naming_the_port(e2e, tmp_path, service):
    first = e2e.registry_address if service == "registry" else e2e.dispatcher_address
    argv = [console_script(f"vp-{service}"), "--listen", first, "--db", f"sqlite:///{tmp_path / 'other.db'}",
            "--metrics-listen", "off", *e2e.server_args()]
    if service == "dispatcher":
        argv += ["--registry", e2e.registry_address, *e2e.channel_args("dispatcher")]

    result = _second(argv)

    assert result.returncode == EXIT_CANNOT_LISTEN, result
    assert f"cannot listen on {first}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    # The first server still owns the port: every new connection reaches it.
    for _ in range(5):
        assert _serving(e2e, first)


def test_vpctl_up_on_a_taken_port_stops_before_starting_anything(tmp_path):
    """A second `make run` must not join the first stack: vpctl up checks its ports first."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = f"127.0.0.1:{holder.getsockname()[1]}"
        result = subprocess.run([console_script("vpctl"), "--registry", taken, "--dispatcher", f"127.0.0.1:{free_port()}",
                                 "up", "--data-dir", str(tmp_path / "data"), "--no-demo", "--metrics-base-port", "0"],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result
    assert f"cannot listen on {taken}" in result.stderr
    assert not (tmp_path / "data" / "vp.db").exists()  # nothing was started
