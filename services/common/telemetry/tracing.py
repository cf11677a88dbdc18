"""OpenTelemetry tracing: one trace per mission, across processes.

Off by default, at no cost: unless OTEL_TRACES_EXPORTER names an exporter (or
VP_TRACE_FILE is set) no tracer provider is installed, spans are the API's
non-recording no-ops and no context is written anywhere. The context travels
in gRPC metadata (W3C traceparent) and is kept in the envelope's TraceContext,
so it survives the queue and re-queues.

Settings, all read by the SDK or here: OTEL_TRACES_EXPORTER (otlp | console |
none), OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_EXPORTER_OTLP_* variables,
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES; VP_TRACE_FILE writes finished spans
as JSON lines (tests, debugging).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER_NAME = "vp-mission-control"
_enabled = False


class JsonLinesSpanExporter:
    """Writes each finished span as one JSON line (a SpanExporter)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence) -> object:
        from opentelemetry.sdk.trace.export import SpanExportResult

        lines = []
        for span in spans:
            parent = span.parent
            lines.append(json.dumps({
                "name": span.name, "service": span.resource.attributes.get("service.name", ""),
                "resource": {k: v for k, v in span.resource.attributes.items() if isinstance(v, str)},
                "trace_id": f"{span.context.trace_id:032x}", "span_id": f"{span.context.span_id:016x}",
                "parent_span_id": f"{parent.span_id:016x}" if parent is not None else "",
                "kind": span.kind.name, "attributes": dict(span.attributes or {}),
                "start_ns": span.start_time, "end_ns": span.end_time,
            }))
        with self._lock, open(self.path, "a") as handle:
            handle.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def configure_tracing(service_name: str, env: Mapping[str, str] | None = None) -> bool:
    """Install a tracer provider when an exporter is configured; returns whether tracing is on."""
    global _enabled
    env = os.environ if env is None else env
    exporter_name = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    trace_file = env.get("VP_TRACE_FILE", "").strip()
    if not trace_file and exporter_name in ("", "none"):
        return False
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    provider = TracerProvider(resource=resource_for(service_name))
    if trace_file:
        # Synchronous: a test reads the file as soon as the work is done.
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(trace_file)))
    if exporter_name == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter_name == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    _enabled = True
    return True


def resource_for(service_name: str):
    """The process's resource: service_name is only the default. The standard
    OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win (Resource.create alone lets
    the code's attributes override them, so two workers looked like one service)."""
    from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource

    return Resource.create({SERVICE_NAME: service_name}).merge(OTELResourceDetector().detect())


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()


def enabled() -> bool:
    return _enabled


def _context_from(traceparent: str, tracestate: str = ""):
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier)


@contextmanager
def span(name: str, *, traceparent: str = "", tracestate: str = "", metadata=None,
         kind: trace.SpanKind = trace.SpanKind.INTERNAL, attributes: Mapping[str, object] | None = None
         ) -> Iterator[trace.Span]:
    """A span whose parent is, in order: the given traceparent, the gRPC metadata's
    traceparent, or the current span."""
    if not _enabled:
        yield trace.INVALID_SPAN
        return
    parent = _context_from(traceparent, tracestate)
    if parent is None and metadata is not None:
        parent = _PROPAGATOR.extract({key: value for key, value in metadata if isinstance(value, str)})
    tracer = trace.get_tracer(_TRACER_NAME)
    clean = {k: v for k, v in (attributes or {}).items() if v not in (None, "")}
    with tracer.start_as_current_span(name, context=parent, kind=kind, attributes=clean) as current:
        yield current


def current_traceparent() -> tuple[str, str]:
    """(traceparent, tracestate) of the current span, or ("", "") when none is recording."""
    if not _enabled:
        return "", ""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=otel_context.get_current())
    return carrier.get("traceparent", ""), carrier.get("tracestate", "")


def outgoing_metadata() -> list[tuple[str, str]]:
    traceparent, tracestate = current_traceparent()
    if not traceparent:
        return []
    return [("traceparent", traceparent)] + ([("tracestate", tracestate)] if tracestate else [])
