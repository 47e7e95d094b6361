"""The generated code in racelab/v1/ matches proto/racelab/v1/*.proto."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto" / "racelab" / "v1"


def test_generated_code_is_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_proto.py"), "--check"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _source_pool(tmp_dir: Path) -> tuple[descriptor_pool.DescriptorPool, list[str]]:
    """Compile the .proto sources (not the generated code) into a fresh descriptor pool."""
    out = tmp_dir / "racelab.desc"
    names = sorted(f"racelab/v1/{p.name}" for p in PROTO_DIR.glob("*.proto"))
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT / "proto"),
         "--include_imports", f"--descriptor_set_out={out}", *names],
        check=True, cwd=ROOT,
    )
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for fdp in fds.file:
        pool.Add(fdp)
    return pool, names


def _declared_services():
    """(proto file, service descriptor) for every service declared in the sources."""
    with tempfile.TemporaryDirectory() as tmp:
        pool, names = _source_pool(Path(tmp))
    return [
        pytest.param(name, service, id=service.full_name)
        for name in names
        for service in pool.FindFileByName(name).services_by_name.values()
    ]


SERVICES = _declared_services()


def test_one_service_per_proto_file():
    files = [param.values[0] for param in SERVICES]
    assert len(files) == len(set(files)), files
    assert len(SERVICES) >= 8


@pytest.mark.parametrize(("proto_name", "service"), SERVICES)
def test_generated_stub_has_every_rpc(proto_name: str, service):
    module_base = "racelab.v1." + Path(proto_name).stem
    pb2 = importlib.import_module(module_base + "_pb2")
    grpc_mod = importlib.import_module(module_base + "_pb2_grpc")

    # The generated module describes the same service as the source.
    generated = pb2.DESCRIPTOR.services_by_name[service.name]
    assert generated.full_name == service.full_name == f"racelab.v1.{service.name}"
    assert [m.name for m in generated.methods] == [m.name for m in service.methods]

    servicer_cls = getattr(grpc_mod, f"{service.name}Servicer")
    stub_cls = getattr(grpc_mod, f"{service.name}Stub")
    add_to_server = getattr(grpc_mod, f"add_{service.name}Servicer_to_server")

    with grpc.insecure_channel("localhost:1") as channel:  # never connected
        stub = stub_cls(channel)
        for method in service.methods:
            assert callable(getattr(servicer_cls, method.name)), method.full_name
            assert callable(getattr(stub, method.name)), method.full_name
            gen = generated.methods_by_name[method.name]
            assert gen.input_type.full_name == method.input_type.full_name
            assert gen.output_type.full_name == method.output_type.full_name
            assert (gen.client_streaming, gen.server_streaming) == (
                method.client_streaming, method.server_streaming)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    try:
        add_to_server(servicer_cls(), server)
    finally:
        server.stop(None)
