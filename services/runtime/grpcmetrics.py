"""RED metrics for every gRPC call, on both sides.

The OpenTelemetry gRPC instrumentation (0.66b2) gives spans, in the old RPC conventions, and no
metrics. These interceptors record:

- servers: racelab_grpc_server_handled_total and racelab_grpc_server_handling_seconds in the
  go-grpc-prometheus shape the dashboards query (grpc_type, grpc_service, grpc_method, grpc_code);
- servers and clients: the current OpenTelemetry conventions' `rpc.server.call.duration` and
  `rpc.client.call.duration` (semantic conventions 1.40+, seconds), exported to Prometheus under
  OpenTelemetry's own name translation: rpc_server_call_duration_seconds{rpc_system_name,
  rpc_method, rpc_response_status_code, error_type}.

Every label is bounded by the servers' own methods and gRPC's status codes. The interceptors run
inside the tracing interceptor, so each duration carries its span's trace id as an exemplar.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Awaitable, Callable

import grpc
from opentelemetry.semconv._incubating.attributes.rpc_attributes import (RPC_METHOD, RPC_RESPONSE_STATUS_CODE,
                                                                         RPC_SYSTEM_NAME)
from opentelemetry.semconv._incubating.metrics.rpc_metrics import RPC_CLIENT_CALL_DURATION, RPC_SERVER_CALL_DURATION
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from prometheus_client import Counter, Histogram

from services.runtime.telemetry import exemplar, prometheus_name

BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)


SEMCONV_LABELS = [prometheus_name(a) for a in (RPC_SYSTEM_NAME, RPC_METHOD, RPC_RESPONSE_STATUS_CODE, ERROR_TYPE)]
SERVER_CALL = Histogram(prometheus_name(RPC_SERVER_CALL_DURATION) + "_seconds",
                        f"{RPC_SERVER_CALL_DURATION}: time a server took to handle an RPC (OpenTelemetry semantic "
                        "conventions 1.40+)", SEMCONV_LABELS, buckets=BUCKETS)
CLIENT_CALL = Histogram(prometheus_name(RPC_CLIENT_CALL_DURATION) + "_seconds",
                        f"{RPC_CLIENT_CALL_DURATION}: time from a client's call to its answer (OpenTelemetry semantic "
                        "conventions 1.40+)", SEMCONV_LABELS, buckets=BUCKETS)

HANDLED = Counter("racelab_grpc_server_handled_total", "RPCs completed on the server, by status code",
                  ["grpc_type", "grpc_service", "grpc_method", "grpc_code"])
HANDLING = Histogram("racelab_grpc_server_handling_seconds", "Time to handle an RPC (wall seconds)",
                     ["grpc_type", "grpc_service", "grpc_method"], buckets=BUCKETS)


def observe_call(histogram: Histogram, method: str, code: str, seconds: float) -> None:
    """One call under the current conventions: `method` fully qualified ("racelab.v1.Authority/ApplyBatch"),
    the status code by name, error.type the code when it is not OK (empty, so absent, when it is)."""
    histogram.labels("grpc", method, code, "" if code == "OK" else code).observe(seconds, exemplar=exemplar())


def _rpc_type(handler: grpc.RpcMethodHandler) -> str:
    if handler.request_streaming:
        return "bidi_stream" if handler.response_streaming else "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


def _code_name(context: grpc.aio.ServicerContext, exc: BaseException | None) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # grpc.aio keeps the code as its integer value
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    return "UNKNOWN" if exc is not None else "OK"


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times every RPC a grpc.aio server handles."""

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable],
                                details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        if handler is None:  # unknown method: gRPC answers UNIMPLEMENTED itself
            return None
        full = details.method.lstrip("/")
        service, _, method = full.rpartition("/")
        labels = (_rpc_type(handler), service, method)

        def done(started: float, context, exc: BaseException | None) -> None:
            seconds, code = time.perf_counter() - started, _code_name(context, exc)
            HANDLED.labels(*labels, code).inc()
            HANDLING.labels(*labels).observe(seconds, exemplar=exemplar())
            observe_call(SERVER_CALL, full, code, seconds)

        if handler.response_streaming:
            behavior = handler.unary_stream or handler.stream_stream

            async def streaming(request, context):
                started, exc = time.perf_counter(), None
                try:
                    responses = behavior(request, context)
                    if inspect.isawaitable(responses):  # a handler that writes with context.write()
                        await responses
                    else:
                        async for response in responses:
                            yield response
                except BaseException as error:
                    exc = error
                    raise
                finally:
                    done(started, context, exc)
            wrapped = streaming
        else:
            behavior = handler.unary_unary or handler.stream_unary

            async def unary(request, context):
                started, exc = time.perf_counter(), None
                try:
                    return await behavior(request, context)
                except BaseException as error:
                    exc = error
                    raise
                finally:
                    done(started, context, exc)
            wrapped = unary

        make = {(False, False): grpc.unary_unary_rpc_method_handler,
                (False, True): grpc.unary_stream_rpc_method_handler,
                (True, False): grpc.stream_unary_rpc_method_handler,
                (True, True): grpc.stream_stream_rpc_method_handler}[(handler.request_streaming,
                                                                      handler.response_streaming)]
        return make(wrapped, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)


# ---- clients ----

def _client_code(call_or_error: object) -> str:
    if isinstance(call_or_error, asyncio.CancelledError):
        return "CANCELLED"
    if isinstance(call_or_error, grpc.RpcError) and isinstance(call_or_error.code(), grpc.StatusCode):
        return call_or_error.code().name
    return "UNKNOWN"


class _ClientUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):
        method, started = _method_name(details.method), time.perf_counter()
        try:
            call = await continuation(details, request)
            response = await call  # the answer, or the status as an RpcError
        except BaseException as exc:
            observe_call(CLIENT_CALL, method, _client_code(exc), time.perf_counter() - started)
            raise
        observe_call(CLIENT_CALL, method, "OK", time.perf_counter() - started)
        return response


pending: set[asyncio.Future] = set()  # keeps the recording tasks alive until they ran


class _ClientUnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    """A stream's call lasts until it ends: timed from the call to its final status."""

    async def intercept_unary_stream(self, continuation, details, request):
        method, started = _method_name(details.method), time.perf_counter()
        call = await continuation(details, request)

        async def record(done_call) -> None:
            try:
                code = await done_call.code()  # aio's code() is a coroutine, even once the call is done
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
            observe_call(CLIENT_CALL, method, code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN", seconds)

        def finished(done_call) -> None:
            nonlocal seconds
            seconds = time.perf_counter() - started
            pending.add(task := asyncio.ensure_future(record(done_call)))
            task.add_done_callback(pending.discard)

        seconds = 0.0
        call.add_done_callback(finished)
        return call


def _method_name(method: str | bytes) -> str:
    return (method.decode() if isinstance(method, bytes) else method).lstrip("/")


def client_interceptors() -> list:
    """grpc.aio client interceptors recording rpc.client.call.duration (put them after the tracing
    interceptor, so the exemplar is the client span's trace)."""
    return [_ClientUnaryUnary(), _ClientUnaryStream()]
