"""RED metrics for every gRPC server: requests, errors (by status code) and durations.

The OpenTelemetry gRPC instrumentation gives spans, not Prometheus series; this
interceptor adds the series, in the go-grpc-prometheus shape (grpc_type,
grpc_service, grpc_method, grpc_code: all bounded by the servers' own methods).
It runs inside the tracing interceptor, so each duration carries the trace id
of its span as an exemplar.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Awaitable, Callable

import grpc
from opentelemetry import trace
from prometheus_client import Counter, Histogram

HANDLED = Counter("racelab_grpc_server_handled_total", "RPCs completed on the server, by status code",
                  ["grpc_type", "grpc_service", "grpc_method", "grpc_code"])
HANDLING = Histogram("racelab_grpc_server_handling_seconds", "Time to handle an RPC (wall seconds)",
                     ["grpc_type", "grpc_service", "grpc_method"],
                     buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))


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
        service, _, method = details.method.lstrip("/").rpartition("/")
        labels = (_rpc_type(handler), service, method)

        def done(started: float, context, exc: BaseException | None) -> None:
            HANDLED.labels(*labels, _code_name(context, exc)).inc()
            span = trace.get_current_span().get_span_context()
            exemplar = {"trace_id": format(span.trace_id, "032x")} if span.is_valid else None
            HANDLING.labels(*labels).observe(time.perf_counter() - started, exemplar=exemplar)

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
