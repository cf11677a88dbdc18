"""Bootstrap shared by every gRPC service: bind (port 0 works), health checking,
reflection, and graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.edge.interceptor import EdgeInterceptor, Gate
from services.common.grpc_options import SERVER_OPTIONS
from services.common.telemetry.rpc_metrics import RpcMetricsInterceptor

log = logging.getLogger(__name__)


@dataclass
class RunningServer:
    server: grpc.aio.Server
    address: str
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]
    _stopping: bool = field(default=False, repr=False)

    async def stop(self, grace: float = 5.0) -> None:
        if self._stopping:
            return
        self._stopping = True
        # Tell load balancers first, then let in-flight calls finish.
        for name in (*self.service_names, ""):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)


async def start_server(
    listen: str,
    register: Callable[[grpc.aio.Server], Iterable[str]],
    *,
    interceptors: Iterable[grpc.aio.ServerInterceptor] = (),
    rpc_metrics: bool = True,
    gate: Gate | None = None,
) -> RunningServer:
    """Start an aio server on listen ("HOST:PORT"); register adds servicers and
    returns their full service names. Logs the address actually bound.
    rpc_metrics times every call into vp_rpc_duration_seconds (outermost interceptor); then
    every request passes the edge (safe decoding, range checks, and gate, the caller's
    authentication and authorization) before a servicer sees it."""
    chain = [RpcMetricsInterceptor()] if rpc_metrics else []
    chain.append(EdgeInterceptor(gate))
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=[*chain, *interceptors])
    names = tuple(register(server))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    host = listen.rsplit(":", 1)[0]
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"could not bind {listen}")
    await server.start()
    for name in (*names, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    address = f"{host}:{port}"
    return RunningServer(server=server, address=address, health=health_servicer, service_names=names)


async def wait_for_shutdown_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def serve_until_signal(
    running: RunningServer,
    *,
    background: Iterable[Callable[[], Awaitable[None]]] = (),
    on_stop: Callable[[], Awaitable[None]] | None = None,
    grace: float = 5.0,
) -> None:
    tasks = [asyncio.create_task(job()) for job in background]
    try:
        await wait_for_shutdown_signal()
        log.info("shutting down %s", running.address)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await running.stop(grace)
        if on_stop is not None:
            await on_stop()
