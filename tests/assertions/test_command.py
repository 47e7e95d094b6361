"""`racelab assert`: files, run directories, a growing file, an OTLP/gRPC receiver, and the run sink's copy to it."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from spanfactory import T0, otlp_line, span, write_traces

from services.lab.cli import main
from services.lab.live.otlpsink import start_sink
from services.runtime.clock import SimClock
from services.runtime.scenario import parse_scenario, scenario_text

SPEC = """
name: demo
checks:
  - name: generation-never-goes-back
    select: {name: flip}
    monotonic: {value: racelab.plan.generation}
    say: "generation {racelab.plan.generation} after {that.racelab.plan.generation}"
  - name: some-flips
    select: {name: flip}
    exists: true
"""


def flips(*generations: int, start: float = 0.0) -> list:
    return [span("flip", start + i, attrs={"racelab.plan.generation": g}) for i, g in enumerate(generations)]


@pytest.fixture
def spec(tmp_path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return path


def test_exit_codes_and_the_report(tmp_path, spec, capsys):
    good = write_traces(tmp_path / "good.jsonl", flips(110, 111, 112))
    bad = write_traces(tmp_path / "bad.jsonl", flips(110, 145, 111))
    assert main(["assert", str(spec), "--traces", str(good)]) == 0
    assert "0 failed, 2 passed" in capsys.readouterr().out
    assert main(["assert", str(spec), "--traces", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  generation-never-goes-back" in out and "generation 111 after 145" in out
    assert main(["assert", str(spec), "--traces", str(bad), "--json", "--check", "some-flips"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in data["checks"]] == ["some-flips"] and data["ok"]


@pytest.mark.parametrize("args, message", [
    (["--traces", "missing.jsonl"], "no such file"),
    (["--traces", "{notjson}"], "not OTLP/JSON"),
    (["--traces", "{good}", "--check", "nope"], "no check named 'nope'"),
    (["--live", "{good}", "--follow"], "--follow reads a file"),
    (["--live", "nonsense"], "--live: expected HOST:PORT"),
    (["--traces", "{empty}"], "no spans in"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, spec, capsys, args, message):
    (tmp_path / "notjson.jsonl").write_text(otlp_line(flips(1)) + "\n{not json\n")
    write_traces(tmp_path / "good.jsonl", flips(1))
    (tmp_path / "empty.jsonl").write_text("")
    args = [a.format(notjson=tmp_path / "notjson.jsonl", good=tmp_path / "good.jsonl", empty=tmp_path / "empty.jsonl")
            for a in args]
    assert main(["assert", str(spec), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    if "OTLP" in message:
        assert "notjson.jsonl:2:" in err  # the file and line


def test_bad_spec_exit_2(tmp_path, capsys):
    (tmp_path / "spec.yaml").write_text("- {name: x, select: {nme: a}, exists: true}")
    write_traces(tmp_path / "t.jsonl", flips(1))
    assert main(["assert", str(tmp_path / "spec.yaml"), "--traces", str(tmp_path / "t.jsonl")]) == 2
    assert "unknown selector key 'nme'" in capsys.readouterr().err


def test_a_run_directory_gives_simulated_pdt_times(tmp_path, spec, capsys):
    text, _ = scenario_text("oct-2025")
    (tmp_path / "scenario.yaml").write_text(text)
    wall_start = T0 / 1e9
    (tmp_path / "summary.json").write_text(json.dumps({"wall_start": wall_start}))
    write_traces(tmp_path / "traces.jsonl", [span("flip", 0, attrs={"racelab.plan.generation": 145}),
                                             span("flip", 30, attrs={"racelab.plan.generation": 111})])
    assert main(["assert", str(spec), "--traces", str(tmp_path)]) == 1
    scenario = parse_scenario(text)
    expected = SimClock(scenario.schedule, scenario.epoch, wall_start).pdt(scenario.schedule.sim_at(30.0))
    assert f"{expected}  generation 111 after 145" in capsys.readouterr().out


def racelab_assert(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "services.lab.cli", "assert", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_follow_reports_a_failure_as_soon_as_it_shows_then_the_whole_report(tmp_path, spec):
    path = tmp_path / "traces.jsonl"
    path.write_text(otlp_line(flips(110, 111)) + "\n")
    proc = racelab_assert(str(spec), "--traces", str(path), "--follow", "--idle", "3", "--interval", "0.3")
    time.sleep(2)
    with path.open("a") as f:  # the stale write arrives while it watches, split across two writes
        line = otlp_line(flips(145, 112, start=5))
        f.write(line[:40])
        f.flush()
        time.sleep(0.5)
        f.write(line[40:] + "\n")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    early, _, report = out.partition("2 checks over 4 spans")
    assert "FAIL so far  generation-never-goes-back: generation 112 after 145" in early
    assert "FAIL  generation-never-goes-back" in report


def export(endpoint: str, generations: list[int]) -> None:
    """What a racelab process does: spans over OTLP/gRPC."""
    provider = TracerProvider(resource=Resource.create({"service.name": "racelab-test",
                                                        "service.instance.id": "t1"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    tracer = provider.get_tracer("t")
    for g in generations:
        with tracer.start_as_current_span("flip", attributes={"racelab.plan.generation": g}):
            time.sleep(0.01)
    provider.shutdown()


def another_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    assert "receiving OTLP/gRPC" in line, line + proc.stderr.read()


def test_live_receiver_gets_spans_over_otlp_and_judges_them(spec, free_port):
    proc = racelab_assert(str(spec), "--live", f"127.0.0.1:{free_port}", "--idle", "2", "--interval", "0.5")
    wait_listening(proc)
    export(f"127.0.0.1:{free_port}", [110, 145, 111])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "generation 111 after 145" in out and "2 checks over 3 spans" in out


def test_the_run_sink_forwards_to_a_live_receiver_and_both_see_the_same(tmp_path, spec, free_port):
    # racelab run's sink writes traces.jsonl and, given RACELAB_OTLP_FORWARD, copies each export to
    # `racelab assert --live`: the same spec then judges the same spans live and from the file.
    live = f"127.0.0.1:{free_port}"
    proc = racelab_assert(str(spec), "--live", live, "--idle", "2", "--interval", "0.5", "--json")
    assert "receiving OTLP/gRPC" in proc.stderr.readline()
    path = tmp_path / "traces.jsonl"

    async def sink_run() -> None:
        sink_address = f"127.0.0.1:{another_free_port()}"
        server, sink = await start_sink(sink_address, path, forward=[live])
        await asyncio.to_thread(export, sink_address, [110, 145, 111, 146])
        await server.stop(grace=1.0)
        sink.close()
        assert sink.forward_failures == 0
    asyncio.run(sink_run())
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    from_file = subprocess.run([sys.executable, "-m", "services.lab.cli", "assert", str(spec), "--traces", str(path),
                                "--json"], capture_output=True, text=True)
    assert from_file.returncode == 1
    assert json.loads(out) == json.loads(from_file.stdout)
