"""A gRPC health probe for container healthchecks that speaks whatever the
service speaks: credentials resolve like every client's (VP_TLS_CA and
VP_TLS_CLIENT_CERT/KEY in the container's environment, else plaintext).

    python -c "import sys; from services.common.healthcheck import main; sys.exit(main('127.0.0.1:50051'))"
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.auth.datadir import resolve_client_security


def main(address: str, service: str = "", timeout: float = 3.0) -> int:
    """0 when the server answers SERVING, 1 otherwise."""
    try:
        with resolve_client_security().channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                              timeout=timeout)
    except (grpc.RpcError, ValueError):
        return 1
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1
