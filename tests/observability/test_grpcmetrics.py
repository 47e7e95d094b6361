"""The gRPC server interceptor counts every RPC by status code and times it with the span's trace id."""

from __future__ import annotations

import asyncio
import re

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from prometheus_client.openmetrics.exposition import generate_latest

from services.runtime.grpcmetrics import MetricsInterceptor
from services.runtime.service import start_grpc_server

HEALTH = "grpc.health.v1.Health"


def handled(method: str, code: str, rpc_type: str = "unary") -> float:
    return REGISTRY.get_sample_value("racelab_grpc_server_handled_total", {
        "grpc_type": rpc_type, "grpc_service": HEALTH, "grpc_method": method, "grpc_code": code}) or 0.0


async def health_calls(target: str, open_channel=grpc.aio.insecure_channel) -> None:
    async with open_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        assert (await stub.Check(health_pb2.HealthCheckRequest(service=""))).status == 1  # SERVING
        try:
            await stub.Check(health_pb2.HealthCheckRequest(service="no-such-service"))
            raise AssertionError("an unknown service must be NOT_FOUND")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() is grpc.StatusCode.NOT_FOUND
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == 1
        watch.cancel()
    await asyncio.sleep(0.2)  # the server sees the cancelled stream end


def test_every_rpc_is_counted_by_code_and_timed_with_its_trace_id(free_port):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    target = f"127.0.0.1:{free_port}"
    before = {code: handled("Check", code) for code in ("OK", "NOT_FOUND")}
    cancelled_before = handled("Watch", "CANCELLED", "server_stream")

    async def main():
        server = grpc.aio.server(interceptors=[aio_server_interceptor(tracer_provider=provider),
                                               MetricsInterceptor()])
        health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        server.add_insecure_port(target)
        await server.start()
        await health.set("", health_pb2.HealthCheckResponse.SERVING)
        try:
            await health_calls(target)
        finally:
            await server.stop(0)

    asyncio.run(main())
    assert handled("Check", "OK") == before["OK"] + 1
    assert handled("Check", "NOT_FOUND") == before["NOT_FOUND"] + 1
    assert handled("Watch", "CANCELLED", "server_stream") == cancelled_before + 1
    trace_ids = {format(s.context.trace_id, "032x") for s in exporter.get_finished_spans()}
    exposition = generate_latest(REGISTRY).decode()
    exemplars = set(re.findall(r'racelab_grpc_server_handling_seconds_bucket\{[^}]*grpc_method="Check"[^}]*\} '
                               r'\S+ # \{trace_id="([0-9a-f]{32})"\}', exposition))
    assert exemplars & trace_ids, (exemplars, trace_ids)


def test_every_racelab_server_has_the_metrics(free_port):
    target = f"127.0.0.1:{free_port}"
    before = handled("Check", "OK")

    async def main():
        server, _ = await start_grpc_server(target, lambda s: None, ["racelab.v1.Test"])
        try:
            await health_calls(target)
        finally:
            await server.stop(0)

    asyncio.run(main())
    assert handled("Check", "OK") == before + 1


def call_duration(side: str, method: str, code: str) -> float:
    """Calls recorded under the current OpenTelemetry conventions (rpc.{side}.call.duration, seconds)."""
    return REGISTRY.get_sample_value(f"rpc_{side}_call_duration_seconds_count", {
        "rpc_system_name": "grpc", "rpc_method": f"{HEALTH}/{method}", "rpc_response_status_code": code,
        "error_type": "" if code == "OK" else code}) or 0.0


def test_server_and_client_calls_are_timed_under_the_current_conventions(free_port):
    """rpc.server.call.duration and rpc.client.call.duration (semantic conventions 1.40+): fully
    qualified rpc.method, the status code by name, error.type on failures; a stream is timed to its end."""
    from services.runtime.service import channel
    target = f"127.0.0.1:{free_port}"
    cases = [("server", "Check", "OK"), ("server", "Check", "NOT_FOUND"), ("client", "Check", "OK"),
             ("client", "Check", "NOT_FOUND"), ("client", "Watch", "CANCELLED")]
    before = {case: call_duration(*case) for case in cases}

    async def main():
        server, _ = await start_grpc_server(target, lambda s: None, ["racelab.v1.Test"])
        try:
            await health_calls(target, channel)
        finally:
            await server.stop(0)

    asyncio.run(main())
    assert {case: call_duration(*case) - before[case] for case in cases} == {case: 1.0 for case in cases}
