"""Bootstrap shared by every gRPC service: an exclusive bind (port 0 works),
health checking, reflection, and graceful shutdown on SIGTERM/SIGINT.

Shutdown drains in three steps, so load balancers and clients see it coming:
health turns NOT_SERVING for ``drain_window`` seconds while calls are still
served (a readiness poller sees it and stops sending); then long calls end with
UNAVAILABLE + ErrorInfo DRAINING + RetryInfo (services.common.drain); then the
listeners close and short calls get ``grace`` seconds to finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.cli_config import EnvArgumentParser
from services.common.drain import DrainInterceptor, DrainSignal
from services.common.edge.interceptor import EdgeInterceptor, Gate
from services.common.grpc_options import SERVER_OPTIONS
from services.common.telemetry.rpc_metrics import RpcMetricsInterceptor

log = logging.getLogger(__name__)

DEFAULT_DRAIN_WINDOW = 2.0
#: Exit status of a service that could not bind its listen address (a configuration error).
EXIT_CANNOT_LISTEN = 2


class BindError(OSError):
    """The listen address cannot be bound (usually: another process holds the port)."""


def add_drain_argument(parser: EnvArgumentParser) -> None:
    parser.add_env_argument("--drain-window", env="VP_DRAIN_WINDOW_SECONDS", default=DEFAULT_DRAIN_WINDOW,
                            type=float, metavar="SECONDS",
                            help="on SIGTERM/SIGINT, seconds health reports NOT_SERVING (calls still served) "
                                 "before long calls end with DRAINING and the listeners close")


@dataclass
class RunningServer:
    server: grpc.aio.Server
    address: str
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]
    drain: DrainSignal
    _stopping: bool = field(default=False, repr=False)

    async def stop(self, grace: float = 5.0, drain_window: float = 0.0) -> None:
        if self._stopping:
            return
        self._stopping = True
        # Tell load balancers first and give their pollers time to notice.
        for name in (*self.service_names, ""):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if drain_window > 0:
            log.info("draining %s: NOT_SERVING for %.1fs before closing", self.address, drain_window)
            await asyncio.sleep(drain_window)
        self.drain.set()
        await self.server.stop(grace)


async def start_server(
    listen: str,
    register: Callable[[grpc.aio.Server], Iterable[str]],
    *,
    interceptors: Iterable[grpc.aio.ServerInterceptor] = (),
    rpc_metrics: bool = True,
    gate: Gate | None = None,
    long_unary_methods: Iterable[str] = (),
    credentials: grpc.ServerCredentials | None = None,
) -> RunningServer:
    """Start an aio server on listen ("HOST:PORT"); register adds servicers and
    returns their full service names. Logs the address actually bound.
    rpc_metrics times every call into vp_rpc_duration_seconds (outermost interceptor); then
    every request passes the edge (safe decoding, range checks, and gate, the caller's
    authentication and authorization) before a servicer sees it.
    Streaming methods and long_unary_methods ("/pkg.Service/Method") end with
    DRAINING when the server drains. BindError if the address is taken: the bind
    is exclusive (no SO_REUSEPORT), so two servers never split one port. credentials: TLS
    (services/common/security.py); None listens in plaintext."""
    drain = DrainSignal()
    chain = [RpcMetricsInterceptor()] if rpc_metrics else []
    chain.append(EdgeInterceptor(gate))
    chain.append(DrainInterceptor(drain, long_unary_methods))
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=[*chain, *interceptors])
    names = tuple(register(server))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    host = listen.rsplit(":", 1)[0]
    try:
        port = server.add_secure_port(listen, credentials) if credentials else server.add_insecure_port(listen)
    except RuntimeError as error:  # grpc's "Failed to bind to address ..."
        raise BindError(f"cannot listen on {listen}: address already in use or not available") from error
    if port == 0:
        raise BindError(f"cannot listen on {listen}: address already in use or not available")
    await server.start()
    for name in (*names, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    address = f"{host}:{port}"
    return RunningServer(server=server, address=address, health=health_servicer, service_names=names, drain=drain)


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
    drain_window: float = 0.0,
) -> None:
    tasks = [asyncio.create_task(job()) for job in background]
    try:
        await wait_for_shutdown_signal()
        log.info("shutting down %s", running.address)
    finally:
        # Background jobs (sweeps, supervision) keep running through the drain
        # window: the server is still serving calls that depend on them.
        await running.stop(grace, drain_window)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if on_stop is not None:
            await on_stop()
