"""The Prometheus /metrics endpoint every service can serve (--metrics-listen).

A plain HTTP server on its own daemon thread (prometheus-client's exporter), so
scraping never waits for the event loop. Port 0 picks a free port; the log line
"metrics on http://HOST:PORT/metrics" names the port actually bound.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

import prometheus_client

from services.common.cli_config import EnvArgumentParser, host_port

log = logging.getLogger(__name__)

OFF = ("", "off")


@dataclass
class MetricsServer:
    address: str
    _server: object
    _thread: object

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def metrics_listen(value: str) -> str:
    """HOST:PORT, or "" / "off" for no endpoint."""
    if value.strip().lower() in OFF:
        return ""
    return host_port(value)


def add_metrics_argument(parser: EnvArgumentParser, *, env: str, default: str) -> None:
    """--metrics-listen. Unset means the service default, which is skipped with a
    warning if its port is busy; an address given by flag or environment must bind."""
    when_unset = f"{default}, skipped with a warning if that port is busy" if default else "off"
    # SUPPRESS: no attribute at all unless the flag or the variable is given.
    parser.add_env_argument("--metrics-listen", env=env, default=argparse.SUPPRESS, type=metrics_listen,
                            metavar="HOST:PORT",
                            help="serve Prometheus metrics at http://HOST:PORT/metrics; port 0 picks a free port, "
                                 f"'off' turns it off (when unset: {when_unset})")


def start_metrics_server(listen: str) -> MetricsServer:
    """Serve the default registry on listen ("HOST:PORT"); raises OSError if it cannot bind."""
    host, _, port = listen.rpartition(":")
    bind_host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    server, thread = prometheus_client.start_http_server(int(port), addr=bind_host)
    address = f"{host}:{server.server_address[1]}"
    log.info("metrics on http://%s/metrics", address, extra={"address": address})
    return MetricsServer(address, server, thread)


def serve_metrics(args: argparse.Namespace, default: str) -> MetricsServer | None:
    """Start the endpoint --metrics-listen asks for (None: the service default).
    OSError when an explicitly requested address cannot be bound."""
    requested = getattr(args, "metrics_listen", None)
    listen = default if requested is None else requested
    if not listen:
        return None
    try:
        return start_metrics_server(listen)
    except OSError as error:
        if requested is not None:
            raise OSError(f"cannot serve metrics on {listen}: {error.strerror or error}") from error
        log.warning("metrics endpoint off: cannot bind the default %s (%s); set --metrics-listen", listen, error)
        return None
