"""The manifests and the code agree: every setting, port, address and file a manifest gives a
process is one the code reads, every setting the code requires is set, the image runs services
that exist, and the observability overlay deploys the very files a local run uses."""

from __future__ import annotations

import argparse
import ipaddress
import re
import runpy
import tomllib
from pathlib import Path

import pytest
import yaml

from k8s_render import ROOT

ENV_IN_HELP = re.compile(r"\(env (RACELAB_[A-Z0-9_]+)")
REQUIRED_IN_SOURCE = re.compile(r"\(or (RACELAB_[A-Z0-9_]+)\) is required")
REQUIRE_CALL = re.compile(r"require\(\w+(?:\.args)?, \"([a-z-]+)\"\)")
# Read straight from the environment by every process (services/runtime/service.py), not a flag.
RUNTIME_ENV = {"RACELAB_LOG_LEVEL"}
ADDRESS_SETTINGS = ("RACELAB_PLANNER", "RACELAB_AUTHORITY", "RACELAB_DIRECTOR", "RACELAB_OTLP_ENDPOINT",
                    "RACELAB_DWFM", "RACELAB_NETMGR", "RACELAB_NLB", "RACELAB_WORKLOAD")


# ---- what the code reads ----

def service_parser(service: str, monkeypatch) -> argparse.ArgumentParser:
    """The parser `python -m services.<service>` builds, caught as it is handed to runtime.service.run."""
    import services.runtime.service as runtime
    caught = []
    monkeypatch.setattr(runtime, "run", lambda name, p, main, argv=None: caught.append(p) or 0)
    with pytest.raises(SystemExit):
        runpy.run_module(f"services.{service}", run_name="__main__")
    monkeypatch.undo()
    [p] = caught
    return p


def settings_of(service: str, monkeypatch) -> tuple[set[str], set[str]]:
    """(every environment setting the service reads, the ones it requires)."""
    p = service_parser(service, monkeypatch)
    known = {m for a in p._actions for m in ENV_IN_HELP.findall(a.help or "")} | RUNTIME_ENV
    required = {env for _, env in p.get_default("_required")}
    flags = {a.option_strings[0][2:]: ENV_IN_HELP.findall(a.help or "") for a in p._actions if a.help}
    sources = list((ROOT / "services" / service).glob("*.py")) + list((ROOT / "services/runtime").glob("*.py"))
    for src in sources:
        text = src.read_text()
        required |= set(REQUIRED_IN_SOURCE.findall(text))
        if src.parent.name == service:
            required |= {flags[f][0] for f in REQUIRE_CALL.findall(text) if flags.get(f)}
    return known, required


# ---- what the manifests say ----

def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def racelab_containers(docs: list[dict]):
    """(workload, pod spec, container) for every container running the racelab image."""
    for w in workloads(docs):
        spec = w["spec"]["template"]["spec"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            if c["image"].split(":")[0] == "racelab":
                yield w, spec, c


def configmap(docs: list[dict], name: str) -> dict:
    return next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name)


def env_of(docs: list[dict], c: dict) -> dict[str, str | None]:
    """Every variable a container gets: its own (None when from the downward API) and its envFrom ConfigMaps'."""
    env: dict[str, str | None] = {}
    for ref in c.get("envFrom", []):
        env.update(configmap(docs, ref["configMapRef"]["name"])["data"])
    env.update({e["name"]: e.get("value") for e in c.get("env", [])})
    return env


def port_of(addr: str) -> int:
    return int(addr.rpartition(":")[2])


def service_containers(docs: list[dict]):
    for w, spec, c in racelab_containers(docs):
        if c["args"][0] != "racelab":
            yield w, spec, c


def lab_args(c: dict) -> argparse.Namespace:
    """A `racelab ...` container's arguments, parsed by the racelab command itself."""
    from services.lab.cli import _parser
    return _parser().parse_args(c["args"][1:])


# ---- the tests ----

def test_every_service_a_container_runs_exists_and_the_image_runs_it(docs):
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    assert 'ENTRYPOINT ["racelab-service"]' in dockerfile
    assert "COPY deploy/entrypoint.sh /usr/local/bin/racelab-service" in dockerfile
    assert 'exec python -m "services.$name" "$@"' in (ROOT / "deploy/entrypoint.sh").read_text()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    seen = set()
    for w, _, c in racelab_containers(docs["scaled"]):
        assert c["image"] == f"racelab:{version}", (w["metadata"]["name"], c["image"])
        if c["args"][0] == "racelab":
            seen.add(lab_args(c).command)
        else:
            assert (ROOT / "services" / c["args"][0] / "__main__.py").exists(), c["args"]
            seen.add(c["args"][0])
    assert {"authority", "planner", "director", "enactor", "dynamodb", "workload", "follow", "wait-dns"} <= seen


def test_other_images_are_pinned():
    for overlay in ("observability",):
        for f in (ROOT / "deploy/k8s/overlays" / overlay).glob("*.yaml"):
            for image in re.findall(r"image: (\S+)", f.read_text()):
                assert ":" in image and not image.endswith(":latest"), (f.name, image)
    kind = yaml.safe_load((ROOT / "deploy/kind/cluster.yaml").read_text())
    assert all(re.fullmatch(r"kindest/node:v1\.32\.\d+@sha256:[0-9a-f]{64}", n["image"]) for n in kind["nodes"])
    # The base a Docker build gets by default (make image-local passes a local one instead).
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11\.\d+-slim-bookworm$", dockerfile, re.M)
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]


def test_every_setting_a_manifest_gives_is_read_and_every_required_one_is_set(docs, monkeypatch):
    checked = set()
    for w, _, c in service_containers(docs["observability"]):
        service = c["args"][0]
        known, required = settings_of(service, monkeypatch)
        env = env_of(docs["observability"], c)
        unread = set(env) - known
        assert not unread, f"{w['metadata']['name']}: {sorted(unread)} are read by no code of services.{service}"
        missing = required - set(env)
        assert not missing, f"{w['metadata']['name']}: the code requires {sorted(missing)}"
        checked.add(service)
    assert checked >= {"authority", "planner", "director", "enactor", "dynamodb", "workload"}


def test_racelab_commands_take_their_arguments(docs):
    for w, _, c in racelab_containers(docs["base"]):
        if c["args"][0] == "racelab":
            lab_args(c)  # argparse exits on an unknown or missing argument


def test_ports_a_process_listens_on_are_the_containers_ports_and_annotations(docs):
    for w, spec, c in service_containers(docs["base"]):
        env, name = env_of(docs["base"], c), w["metadata"]["name"]
        ports = {p["name"]: p for p in c.get("ports", [])}
        expected = {"metrics": env["RACELAB_METRICS_ADDR"]}
        if "RACELAB_LISTEN" in env:
            expected["grpc"] = env["RACELAB_LISTEN"]
        if "RACELAB_DNS_LISTEN" in env:
            expected["dns-udp"] = expected["dns-tcp"] = env["RACELAB_DNS_LISTEN"]
        if c["args"][0] == "dynamodb":
            expected["grpc"] = f"0.0.0.0:{env['RACELAB_LB_PORT']}"
        for port_name, addr in expected.items():
            assert addr.startswith("0.0.0.0:"), f"{name}: {addr} is not reachable from other pods"
            assert ports[port_name]["containerPort"] == port_of(addr), (name, port_name)
        assert set(ports) == set(expected), (name, set(ports), set(expected))
        annotations = w["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port_of(env["RACELAB_METRICS_ADDR"])), name
        probe = c["readinessProbe"]
        if "grpc" in ports:  # a gRPC server answers the standard health service
            assert probe["grpc"]["port"] == ports["grpc"]["containerPort"] == c["livenessProbe"]["grpc"]["port"]
        else:
            assert probe["httpGet"]["port"] == "metrics"
        assert c["resources"]["requests"] and c["resources"]["limits"], name


def _pod_ports(docs: list[dict], selector: dict) -> dict:
    """name -> port and number -> port of the containers of the pods a Service selects."""
    found = {}
    for w in workloads(docs):
        labels = w["spec"]["template"]["metadata"].get("labels", {})
        if selector.items() <= labels.items():
            for c in w["spec"]["template"]["spec"]["containers"]:
                for p in c.get("ports", []):
                    found[p["name"]] = found[p["containerPort"]] = p
    return found


def _service_port(docs: list[dict], host: str, port: int, protocol: str = "TCP") -> dict:
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    svc = services.get(host) or next((s for s in services.values() if s["spec"].get("clusterIP") == host), None)
    assert svc is not None, f"no Service {host}"
    [sp] = [p for p in svc["spec"]["ports"] if p["port"] == port and p.get("protocol", "TCP") == protocol] or [None]
    assert sp is not None, f"Service {host} has no {protocol} port {port}"
    target = _pod_ports(docs, svc["spec"]["selector"]).get(sp["targetPort"])
    assert target is not None and target.get("protocol", "TCP") == protocol, \
        f"Service {host}:{port}/{protocol}: no selected pod listens on {sp['targetPort']}"
    return sp


def test_every_address_a_process_is_given_reaches_a_process_that_listens_there(docs):
    for overlay in ("base", "observability"):
        d = docs[overlay]
        for w, _, c in service_containers(d):
            env = env_of(d, c)
            for setting in ADDRESS_SETTINGS:
                if setting in env:
                    host, _, port = env[setting].rpartition(":")
                    _service_port(d, host, int(port))
            if "RACELAB_AUTHORITY_DNS" in env:
                ip, _, port = env["RACELAB_AUTHORITY_DNS"].rpartition(":")
                ipaddress.ip_address(ip)  # c-ares takes an address, never a name
                for proto in ("UDP", "TCP"):
                    _service_port(d, ip, int(port), proto)
            if c["args"][0] == "workload":  # clients connect to the LB pods on the port they serve
                assert _pod_ports(d, {"app.kubernetes.io/name": "dynamodb-lb"})["grpc"]["containerPort"] == \
                    int(env["RACELAB_LB_PORT"])
        for w, _, c in racelab_containers(d):
            if c["args"][0] == "racelab":
                args = lab_args(c)
                addr = getattr(args, "director", None) or args.authority_dns
                host, _, port = addr.rpartition(":")
                _service_port(d, host, int(port), "UDP" if args.command == "wait-dns" else "TCP")


def _mount_source(spec: dict, c: dict, path: str) -> tuple[dict, str]:
    """The volume a file or directory path of the container lies on, and the path inside it."""
    best = max((m for m in c.get("volumeMounts", []) if path == m["mountPath"] or
                path.startswith(m["mountPath"].rstrip("/") + "/")), key=lambda m: len(m["mountPath"]), default=None)
    assert best is not None, f"{c['name']}: nothing is mounted at {path}"
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    return volumes.get(best["name"], {"name": best["name"]}), path[len(best["mountPath"]):].lstrip("/")


def test_every_file_a_process_is_told_about_is_mounted(docs):
    base = docs["base"]
    scenario_text = (ROOT / "services/scenarios/oct-2025.yaml").read_text()
    claims = {w["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] for w in workloads(base)
              if w["kind"] == "StatefulSet" and w["spec"].get("volumeClaimTemplates")}
    secret_keys = set(next(d for d in base if d["kind"] == "Secret")["data"])
    for w, spec, c in racelab_containers(base):
        env = env_of(base, c)
        files = {"RACELAB_SCENARIO": env.get("RACELAB_SCENARIO"), "RACELAB_TOKEN_FILE": env.get("RACELAB_TOKEN_FILE"),
                 "RACELAB_ACL_FILE": env.get("RACELAB_ACL_FILE")}
        if c["args"][0] == "racelab" and lab_args(c).command == "follow":
            files = {"RACELAB_SCENARIO": lab_args(c).scenario, "RACELAB_TOKEN_FILE": lab_args(c).token_file}
        for setting, path in files.items():
            if path is None:
                continue
            volume, inside = _mount_source(spec, c, path)
            if setting == "RACELAB_SCENARIO":
                data = configmap(base, volume["configMap"]["name"])["data"]
                assert data[inside] == scenario_text  # the very scenario file, not a copy
            else:
                items = {i["path"]: i["key"] for i in volume["secret"]["items"]}
                assert items[inside] in secret_keys, (w["metadata"]["name"], path)
        if "RACELAB_STATE_DIR" in env:
            volume, inside = _mount_source(spec, c, env["RACELAB_STATE_DIR"])
            assert inside == "" and ("emptyDir" in volume or volume["name"] in claims), w["metadata"]["name"]
        # Each pod holds only its own token (and the ACL it checks callers against).
        for v in spec.get("volumes", []):
            if "secret" in v:
                tokens = [i["key"] for i in v["secret"]["items"] if i["key"].endswith(".token")]
                assert len(tokens) == 1, (w["metadata"]["name"], tokens)


def test_durable_state_lives_on_volumes_that_outlive_a_pod(docs):
    kinds = {w["metadata"]["name"]: w for w in workloads(docs["base"])}
    for name in ("authority", "planner"):
        w = kinds[name]
        assert w["kind"] == "StatefulSet" and w["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "state"


def test_instance_labels_name_the_instance_each_process_reports_as(docs):
    for w, _, c in service_containers(docs["base"]):
        labels = w["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == c["args"][0]
        value = {e["name"]: e for e in c["env"]}["RACELAB_INSTANCE"]
        if "racelab.io/instance" in labels:
            assert value["value"] == labels["racelab.io/instance"]
        else:  # instance = the pod's name, which Prometheus also falls back to
            assert value["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_the_lb_fleet_is_the_scenarios_and_each_pod_one_numbered_lb(docs):
    from services.runtime.scenario import load_scenario
    fleet = load_scenario("oct-2025").fleet
    [lbs] = [w for w in workloads(docs["base"]) if w["metadata"]["name"] == "dynamodb-lb"]
    assert lbs["spec"]["replicas"] == fleet.load_balancers
    env = {e["name"]: e for e in lbs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RACELAB_LB_COUNT"]["value"] == "1"
    assert env["RACELAB_LB_ADVERTISE"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["RACELAB_LB_ORDINAL"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.labels['apps.kubernetes.io/pod-index']"
    [scaled] = [w for w in workloads(docs["scaled"]) if w["metadata"]["name"] == "dynamodb-lb"]
    assert scaled["spec"]["replicas"] == load_scenario("oct-2025-scale").fleet.load_balancers


def test_the_scaled_overlay_runs_the_scale_scenario_everywhere(docs):
    """Every process of the scaled overlay, the scenario Job's `racelab follow` too, reads the scale
    scenario, and the scenario ConfigMap holds it (and oct-2025, which it extends, is built in)."""
    config = {d["metadata"]["name"].rsplit("-", 1)[0]: d for d in docs["scaled"] if d["kind"] == "ConfigMap"}
    path = config["racelab-common"]["data"]["RACELAB_SCENARIO"]
    assert path == "/etc/racelab/scenario/oct-2025-scale.yaml"
    assert "extends: oct-2025" in config["racelab-scenario"]["data"]["oct-2025-scale.yaml"]
    [job] = [d for d in docs["scaled"] if d["kind"] == "Job"]
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--scenario") + 1] == path


def test_enactors_one_per_zone_and_the_kind_cluster_has_those_zones(docs):
    from services.runtime.scenario import load_scenario
    zones = {}
    for w, spec, c in service_containers(docs["base"]):
        if c["args"][0] == "enactor":
            [term] = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
                "nodeSelectorTerms"]
            [expr] = term["matchExpressions"]
            assert expr["key"] == "topology.kubernetes.io/zone"
            zones[w["metadata"]["name"]] = expr["values"][0]
    assert sorted(zones) == ["enactor-az1", "enactor-az2", "enactor-az3"]
    assert sorted(zones.values()) == sorted(load_scenario("oct-2025").fleet.availability_zones)
    kind = yaml.safe_load((ROOT / "deploy/kind/cluster.yaml").read_text())
    assert sorted(n["labels"]["topology.kubernetes.io/zone"] for n in kind["nodes"] if n["role"] == "worker") == \
        sorted(zones.values())


def test_kind_serves_the_authoritys_address_and_maps_the_dashboards(docs):
    kind = yaml.safe_load((ROOT / "deploy/kind/cluster.yaml").read_text())
    assert kind["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    services = {d["metadata"]["name"]: d for d in docs["observability"] if d["kind"] == "Service"}
    subnet = ipaddress.ip_network(kind["networking"]["serviceSubnet"])
    assert ipaddress.ip_address(services["authority"]["spec"]["clusterIP"]) in subnet
    mapped = {m["containerPort"]: m["hostPort"] for n in kind["nodes"] for m in n.get("extraPortMappings", [])}
    for name, host_port in (("grafana", 3000), ("prometheus", 9090), ("jaeger", 16686)):
        [node_port] = [p["nodePort"] for p in services[name]["spec"]["ports"] if "nodePort" in p]
        assert mapped[node_port] == host_port, name


def _generator_files(overlay: str) -> dict[str, list[Path]]:
    """configMapGenerator name -> the files it reads, resolved from the real overlay directory."""
    here = ROOT / "deploy/k8s/overlays" / overlay
    kust = yaml.safe_load((here / "kustomization.yaml").read_text())
    return {g["name"]: [(here / f.split("=")[-1]).resolve() for f in g.get("files", [])]
            for g in kust["configMapGenerator"]}


def test_prometheus_and_grafana_get_the_very_files_of_a_local_run(docs):
    files = _generator_files("observability")
    prom, graf = ROOT / "deploy/prometheus", ROOT / "grafana"
    assert files["prometheus-config"] == [prom / "prometheus-kubernetes.yml"]
    # Every rule file and dashboard is deployed, none missing, none extra (kustomize has no globs).
    assert sorted(files["prometheus-rules"]) == sorted((prom / "rules").glob("*.yml"))
    assert sorted(files["grafana-dashboards"]) == sorted((graf / "dashboards").glob("*.json"))
    assert files["grafana-datasources"] == sorted((graf / "provisioning/datasources").glob("*.yml"))
    assert files["grafana-dashboard-providers"] == sorted((graf / "provisioning/dashboards").glob("*.yml"))
    assert files["otel-collector-config"] == [ROOT / "deploy/otel-collector/config.yaml"]
    # No copy of them anywhere under deploy/k8s.
    names = {p.name for paths in files.values() for p in paths}
    assert not [p for p in (ROOT / "deploy/k8s").rglob("*") if p.name in names]
    rendered = {d["metadata"]["name"].rsplit("-", 1)[0]: d["data"] for d in docs["observability"]
                if d["kind"] == "ConfigMap"}
    for name, paths in files.items():
        for p in paths:
            key = "prometheus.yml" if name == "prometheus-config" else p.name
            assert rendered[name][key] == p.read_text(), (name, p)


def test_pods_carry_what_the_kubernetes_scrape_config_reads(docs):
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus-kubernetes.yml").read_text())
    sources = {s for job in config["scrape_configs"] for r in job.get("relabel_configs", [])
               for s in r.get("source_labels", [])}
    keep = [r for job in config["scrape_configs"] for r in job.get("relabel_configs", [])
            if r.get("action") == "keep"]
    grafana = next(w for w in workloads(docs["observability"]) if w["metadata"]["name"] == "grafana")
    grafana_env = {e["name"] for e in grafana["spec"]["template"]["spec"]["containers"][0]["env"]}
    datasources = "".join(p.read_text() for p in (ROOT / "grafana/provisioning/datasources").glob("*.yml"))
    assert set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", datasources)) <= grafana_env
    for w, _, c in service_containers(docs["base"]):
        meta = w["spec"]["template"]["metadata"]
        have = {"__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-z0-9]", "_", k): v
                for k, v in meta.get("annotations", {}).items()}
        have |= {"__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9]", "_", k): v
                 for k, v in meta["labels"].items()}
        for rule in keep:
            [label] = rule["source_labels"]
            assert re.fullmatch(rule["regex"], have.get(label, "")), (w["metadata"]["name"], label)
        assert "__meta_kubernetes_pod_label_app_kubernetes_io_component" in sources & have.keys()


def test_the_image_pins_every_package_as_pyproject_does():
    pins = dict(line.split("==") for line in (ROOT / "deploy/requirements-image.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    norm = {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in pins.items()}
    for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        name, version = dep.split("==")
        assert norm.get(re.sub(r"[-_.]+", "-", name).lower()) == version, dep
