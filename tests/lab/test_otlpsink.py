"""Spans exported over OTLP/gRPC land in traces.jsonl in the Collector's file-exporter format."""

import asyncio
import json
import socket

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from services.lab.live.otlpsink import read_spans, start_sink


def test_exported_spans_are_written_as_otlp_json(tmp_path, free_port):
    path = tmp_path / "traces.jsonl"

    async def scenario():
        server, sink = await start_sink(f"127.0.0.1:{free_port}", path)
        provider = TracerProvider(resource=Resource.create({"service.name": "racelab-test",
                                                            "service.instance.id": "t1"}))
        provider.add_span_processor(SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=f"127.0.0.1:{free_port}", insecure=True)))
        tracer = provider.get_tracer("t")

        def make_spans():  # the exporter blocks; the sink must keep serving on the loop
            with tracer.start_as_current_span("parent") as parent:
                with tracer.start_as_current_span("child", attributes={"racelab.plan.generation": 110}):
                    pass
            provider.shutdown()
            return parent
        parent = await asyncio.to_thread(make_spans)
        await server.stop(None)
        sink.close()
        return parent.get_span_context()

    ctx = asyncio.run(scenario())
    line = json.loads(path.read_text().splitlines()[0])
    assert "resourceSpans" in line
    spans = {s["name"]: s for s in read_spans(path)}
    assert set(spans) == {"parent", "child"}
    child = spans["child"]
    assert child["traceId"] == format(ctx.trace_id, "032x")  # hex, as OTLP/JSON requires
    assert child["parentSpanId"] == format(ctx.span_id, "016x")
    assert child["attrs"]["racelab.plan.generation"] == 110
    assert child["service"] == "racelab-test" and child["instance"] == "t1"
    assert isinstance(child["kind"], int)
    assert isinstance(child["startTimeUnixNano"], str)


def test_spans_a_forward_receiver_does_not_take_are_counted(tmp_path, free_port):
    """A receiver that is down loses spans, never the run's own file; the sink counts what it lost."""
    path = tmp_path / "traces.jsonl"
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"

    async def scenario():
        server, sink = await start_sink(f"127.0.0.1:{free_port}", path, forward=[dead])
        provider = TracerProvider(resource=Resource.create({"service.name": "racelab-test"}))
        provider.add_span_processor(SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=f"127.0.0.1:{free_port}", insecure=True)))
        tracer = provider.get_tracer("t")

        def make_spans():
            for name in ("a", "b", "c"):
                with tracer.start_as_current_span(name):
                    pass
            provider.shutdown()
        await asyncio.to_thread(make_spans)
        await server.stop(None)
        sink.close()
        return sink

    sink = asyncio.run(scenario())
    assert sink.forwarding and sink.spans == 3
    assert sink.spans_not_forwarded == 3 and sink.forward_failures == 3
    assert {s["name"] for s in read_spans(path)} == {"a", "b", "c"}


def test_spans_can_be_read_for_some_services_only(tmp_path):
    # The report reads only the race's services from a file that holds every process's spans; a
    # line is skipped by name only if no resource in it is wanted, and a resource is kept only if its
    # own service.name is (not merely one mentioned in an attribute).
    def resource(service, span, mention=""):
        return {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [{"spans": [{"name": span, "attributes": [
                    {"key": "note", "value": {"stringValue": mention}}]}]}]}
    lines = [{"resourceSpans": [resource("racelab-enactor", "batch")]},
             {"resourceSpans": [resource("racelab-dwfm", "check", mention="racelab-enactor")]},
             {"resourceSpans": [resource("racelab-workload", "call"), resource("racelab-authority", "apply")]},
             {"resourceSpans": [resource("racelab-planner", "plan")]}]
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + "\n")
    wanted = read_spans(path, services={"racelab-enactor", "racelab-authority"})
    assert [(s["service"], s["name"]) for s in wanted] == [("racelab-enactor", "batch"),
                                                           ("racelab-authority", "apply")]
    assert len(read_spans(path)) == 5
    assert read_spans(path, services=set()) == []
