"""Traces over OTLP and metrics over HTTP, set up the same way in every process.

Resource attributes follow DESIGN.md: service.name = racelab-<service>,
service.instance.id = the instance, deployment.environment. Spans are
exported every second: a race that lasts seconds must not hide between exports.
"""

from __future__ import annotations

import contextlib
import logging
import random
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import start_http_server

log = logging.getLogger(__name__)


@dataclass
class Telemetry:
    tracer: trace.Tracer
    provider: TracerProvider
    metrics_port: int | None

    def shutdown(self) -> None:
        self.provider.force_flush(timeout_millis=3000)
        self.provider.shutdown()


def setup_telemetry(service: str, instance: str, *, otlp_endpoint: str | None, metrics_addr: str | None,
                    environment: str = "local") -> Telemetry:
    resource = Resource.create({"service.name": f"racelab-{service}", "service.instance.id": instance,
                                "service.namespace": "racelab", "deployment.environment": environment})
    provider = TracerProvider(resource=resource)
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True),
                                                       schedule_delay_millis=1000))
    trace.set_tracer_provider(provider)
    port = None
    if metrics_addr:
        host, port = split_hostport(metrics_addr)
        start_http_server(port, addr=host)
    return Telemetry(trace.get_tracer(f"racelab.{service}"), provider, port)


def split_hostport(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {addr!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def trace_id_hex(span: trace.Span) -> str:
    """The span's trace id as Prometheus exemplars and Grafana links expect it."""
    return format(span.get_span_context().trace_id, "032x")


def exemplar(span: trace.Span | None = None) -> dict[str, str] | None:
    """The exemplar of `span` (default: the current one) for a histogram observation; None untraced."""
    span = span or trace.get_current_span()
    return {"trace_id": trace_id_hex(span)} if span.get_span_context().is_valid else None


def prometheus_name(otel_name: str) -> str:
    """OpenTelemetry's Prometheus translation of a metric name: dots to underscores (the unit suffix,
    `_seconds` for unit s, is the caller's)."""
    return otel_name.replace(".", "_")


@contextlib.contextmanager
def unsampled():
    """Spans started inside are not recorded: their parent is a non-sampled span, and the SDK's
    default sampler follows the parent. For calls too frequent to trace every one."""
    parent = trace.NonRecordingSpan(trace.SpanContext(random.getrandbits(128) or 1, random.getrandbits(64) or 1,
                                                      is_remote=False, trace_flags=trace.TraceFlags(0)))
    token = otel_context.attach(trace.set_span_in_context(parent))
    try:
        yield
    finally:
        otel_context.detach(token)
