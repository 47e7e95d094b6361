#!/usr/bin/env python3
"""The manifests' pods under podman, started the way a kubelet would start them, on one machine.

    python deploy/podman/kubelet.py up RENDERED.yaml --workdir DIR    # play every pod, wait until ready
    python deploy/podman/kubelet.py logs --workdir DIR [--follow] POD [CONTAINER]
    python deploy/podman/kubelet.py down --workdir DIR                # remove the pods and the network

There is no control plane: every workload of a rendered kustomization (`kubectl kustomize`) becomes
one Pod per replica, played with `podman kube play` on a podman network of its own, one address each
(docs/kubernetes.md, "Pods under podman"):

- Pods and Deployments as they are; a StatefulSet's template once per ordinal (`name-0`, `name-1`,
  with the `apps.kubernetes.io/pod-index` label); a Job's template once (with `job-name`).
- ConfigMaps go to podman as they are (`--configmap`) for envFrom; configMap volumes are written here.
- What podman 4.3 does not do is done here, before a pod is played, as a kubelet would: the downward
  API (metadata.name, labels, status.podIP: the address given to the pod), Secret and ConfigMap
  volumes (files written per pod with their items and modes, group fsGroup, mounted read-only:
  podman 4.3's Secret volumes neither decode nor pick items, and it rewrites a configMap volume, one
  named volume shared by every pod, on each play, under pods already reading it), volume claims (a directory per pod), `runAsNonRoot` (refused if the
  container would run as root), Service names (hostAliases: a Service's names -> its pods' addresses).
- kube-proxy's part: an `ADDRESS:PORT` of a Service in an env value or an argument (its ClusterIP or
  name) is rewritten to the selected pod's address and target port, since no virtual IP exists here.
- Readiness probes are run from here against the pod's address (gRPC health, HTTP GET, TCP); they
  tell when a pod is ready and never restart anything: every pod is played with restartPolicy Never,
  so a container that exits is seen, not hidden by a restart.
"""

from __future__ import annotations

import argparse
import base64
import copy
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

WORKLOADS = ("Pod", "Deployment", "StatefulSet", "Job")
FIELD_LABEL = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")
# podman's settings for this machine (runc, explicit ulimits): deploy/podman/containers.conf.
CONTAINERS_CONF = Path(__file__).with_name("containers.conf")
STATE_FILE = "kubelet.json"


class KubeletError(Exception):
    """A manifest this kubelet cannot start, said in one line (as a kubelet's event would)."""


@dataclass
class PodPlan:
    """One pod to start: its Kubernetes name and labels, its owner and a copy of its template's spec."""

    name: str
    namespace: str
    owner: str  # e.g. "StatefulSet/dynamodb-lb"
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: dict
    ip: str = ""
    played: dict = field(default_factory=dict)  # the Pod handed to podman

    @property
    def podman_name(self) -> str:
        return f"{self.namespace}-{self.name}"

    def container_names(self) -> list[str]:
        return [c["name"] for c in self.spec.get("containers", [])]

    def podman_container(self, container: str) -> str:
        return f"{self.podman_name}-{container}"


@dataclass
class Cluster:
    """A rendered kustomization, split by kind."""

    pods: list[PodPlan]
    services: list[dict]
    configmaps: dict[str, dict]
    secrets: dict[str, dict]
    ready_at: dict[str, float] = field(default_factory=dict)  # pod -> Unix time its readiness probes passed

    @classmethod
    def from_yaml(cls, text: str, default_namespace: str = "default") -> "Cluster":
        docs = [d for d in yaml.safe_load_all(text) if d]
        pods, services, configmaps, secrets = [], [], {}, {}
        for doc in docs:
            kind, meta = doc.get("kind"), doc.get("metadata", {})
            if kind == "Service":
                services.append(doc)
            elif kind == "ConfigMap":
                configmaps[meta["name"]] = doc
            elif kind == "Secret":
                secrets[meta["name"]] = doc
            elif kind in WORKLOADS:
                pods += pods_of(doc, meta.get("namespace", default_namespace))
        return cls(pods, services, configmaps, secrets)

    def pod(self, name: str) -> PodPlan:
        for p in self.pods:
            if p.name == name:
                return p
        raise KubeletError(f"no pod {name!r} (pods: {', '.join(p.name for p in self.pods)})")


def pods_of(workload: dict, namespace: str) -> list[PodPlan]:
    """The pods a controller would create for one workload."""
    kind, meta = workload["kind"], workload["metadata"]
    name = meta["name"]
    if kind == "Pod":
        return [PodPlan(name, namespace, f"Pod/{name}", dict(meta.get("labels", {})),
                        dict(meta.get("annotations", {})), copy.deepcopy(workload["spec"]))]
    template = workload["spec"]["template"]
    labels = dict(template.get("metadata", {}).get("labels", {}))
    annotations = dict(template.get("metadata", {}).get("annotations", {}))
    spec = copy.deepcopy(template["spec"])
    replicas = workload["spec"].get("replicas", 1)
    if kind == "Deployment":
        # A ReplicaSet would add a random suffix; a stable name per replica keeps runs comparable.
        names = [name] if replicas == 1 else [f"{name}-{i}" for i in range(replicas)]
        return [PodPlan(n, namespace, f"Deployment/{name}", dict(labels), dict(annotations), copy.deepcopy(spec))
                for n in names]
    if kind == "StatefulSet":
        plans = []
        for i in range(replicas):
            pod_labels = dict(labels, **{"apps.kubernetes.io/pod-index": str(i),
                                         "statefulset.kubernetes.io/pod-name": f"{name}-{i}"})
            pod_spec = copy.deepcopy(spec)
            pod_spec["_claims"] = copy.deepcopy(workload["spec"].get("volumeClaimTemplates", []))
            plans.append(PodPlan(f"{name}-{i}", namespace, f"StatefulSet/{name}", pod_labels,
                                 dict(annotations), pod_spec))
        return plans
    # Job: one pod, as with completions 1 and parallelism 1.
    return [PodPlan(name, namespace, f"Job/{name}", dict(labels, **{"job-name": name}), dict(annotations), spec)]


# ---- addresses: each pod its own, Services by name, ClusterIPs as kube-proxy would ----------------

def assign_addresses(cluster: Cluster, subnet: str) -> None:
    hosts = ipaddress.ip_network(subnet).hosts()
    next(hosts)  # the first address is the network's gateway (the host)
    for plan in cluster.pods:
        try:
            plan.ip = str(next(hosts))
        except StopIteration:
            raise KubeletError(f"subnet {subnet} has too few addresses for {len(cluster.pods)} pods") from None


def selected(service: dict, cluster: Cluster) -> list[PodPlan]:
    selector = service.get("spec", {}).get("selector") or {}
    if not selector:
        return []
    return [p for p in cluster.pods if all(p.labels.get(k) == v for k, v in selector.items())]


def target_port(port: dict, pod: PodPlan) -> int:
    target = port.get("targetPort", port["port"])
    if isinstance(target, int):
        return target
    for c in pod.spec.get("containers", []):
        for p in c.get("ports", []):
            if p.get("name") == target and p.get("protocol", "TCP") == port.get("protocol", "TCP"):
                return p["containerPort"]
    raise KubeletError(f"Service {port}: pod {pod.name} has no container port named {target!r}")


def service_names(service: dict, namespace: str) -> list[str]:
    name = service["metadata"]["name"]
    return [name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"]


def host_aliases(cluster: Cluster) -> list[dict]:
    """Every Service's names -> the addresses of the pods it selects (what cluster DNS would answer)."""
    by_ip: dict[str, list[str]] = {}
    for svc in cluster.services:
        namespace = svc["metadata"].get("namespace", "default")
        for pod in selected(svc, cluster):
            by_ip.setdefault(pod.ip, []).extend(service_names(svc, namespace))
    return [{"ip": ip, "hostnames": names} for ip, names in by_ip.items()]


def proxy_rules(cluster: Cluster) -> dict[str, str]:
    """`ADDRESS:PORT` of a Service -> `POD_IP:TARGET_PORT` (or `NAME:TARGET_PORT`): kube-proxy's DNAT, ahead of time."""
    rules: dict[str, str] = {}
    for svc in cluster.services:
        spec, namespace = svc.get("spec", {}), svc["metadata"].get("namespace", "default")
        pods = selected(svc, cluster)
        if not pods:
            continue
        pod = pods[0]  # every Service here selects one pod; a headless one is never addressed by port
        for port in spec.get("ports", []):
            target = target_port(port, pod)
            if spec.get("clusterIP") not in (None, "None"):
                rules[f"{spec['clusterIP']}:{port['port']}"] = f"{pod.ip}:{target}"
            if target != port["port"]:
                for name in service_names(svc, namespace):
                    rules[f"{name}:{port['port']}"] = f"{name}:{target}"
    return rules


def proxied(value: str, rules: dict[str, str]) -> str:
    return rules.get(value, value)


# ---- one pod, as podman is to play it ----------------------------------------------------------

def field_value(path: str, plan: PodPlan) -> str:
    if path == "metadata.name":
        return plan.name
    if path == "metadata.namespace":
        return plan.namespace
    if path in ("status.podIP", "status.podIPs"):
        return plan.ip
    if path == "spec.nodeName":
        return socket.gethostname()
    m = FIELD_LABEL.match(path)
    if m:
        table = plan.labels if m.group(1) == "labels" else plan.annotations
        if m.group(2) not in table:
            raise KubeletError(f"pod {plan.name}: fieldRef {path}: the pod has no such {m.group(1)[:-1]}")
        return table[m.group(2)]
    raise KubeletError(f"pod {plan.name}: fieldRef {path} is not supported here")


def secret_bytes(secret: dict) -> dict[str, bytes]:
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    data.update({k: v.encode() for k, v in (secret.get("stringData") or {}).items()})
    return data


def resolve_env(container: dict, plan: PodPlan, cluster: Cluster, rules: dict[str, str]) -> None:
    for var in container.get("env", []):
        source = var.pop("valueFrom", None)
        if source is None:
            var["value"] = proxied(str(var.get("value", "")), rules)
        elif "fieldRef" in source:
            var["value"] = field_value(source["fieldRef"]["fieldPath"], plan)
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            var["value"] = proxied(str(cluster.configmaps[ref["name"]]["data"][ref["key"]]), rules)
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            var["value"] = secret_bytes(cluster.secrets[ref["name"]])[ref["key"]].decode()
        else:
            raise KubeletError(f"pod {plan.name}: env {var['name']}: valueFrom {sorted(source)} is not supported here")
    for ref in container.get("envFrom", []):
        if "configMapRef" in ref and ref["configMapRef"]["name"] not in cluster.configmaps:
            raise KubeletError(f"pod {plan.name}: envFrom: no ConfigMap {ref['configMapRef']['name']!r}")
        if "secretRef" in ref:
            raise KubeletError(f"pod {plan.name}: envFrom secretRef is not supported here")
    for key in ("args", "command"):
        if key in container:
            container[key] = [proxied(str(a), rules) for a in container[key]]


def configmap_bytes(configmap: dict) -> dict[str, bytes]:
    data = {k: str(v).encode() for k, v in (configmap.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (configmap.get("binaryData") or {}).items()})
    return data


def write_projected_volume(volume: dict, plan: PodPlan, cluster: Cluster, workdir: Path) -> dict:
    """A Secret or ConfigMap volume: its files written into a directory of the pod's own, as a kubelet
    projects them. (podman 4.3 keeps a configMap volume as one named volume and rewrites it on every
    `kube play`, so a pod started earlier could read a half-written file; its Secret volumes neither
    decode nor pick items.)"""
    if "secret" in volume:
        source, kind, name = volume["secret"], "Secret", volume["secret"]["secretName"]
        objects, decode = cluster.secrets, secret_bytes
    else:
        source, kind, name = volume["configMap"], "ConfigMap", volume["configMap"]["name"]
        objects, decode = cluster.configmaps, configmap_bytes
    if name not in objects:
        raise KubeletError(f"pod {plan.name}: volume {volume['name']}: no {kind} {name!r}")
    data = decode(objects[name])
    items = source.get("items") or [{"key": k, "path": k} for k in sorted(data)]
    group = plan.spec.get("securityContext", {}).get("fsGroup", 0)
    root = workdir / "volumes" / plan.name / volume["name"]
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    os.chown(root, 0, group)
    root.chmod(0o755)
    for item in items:
        if item["key"] not in data:
            raise KubeletError(f"pod {plan.name}: volume {volume['name']}: {kind} {name} has no key {item['key']!r}")
        path = root / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[item["key"]])
        os.chown(path, 0, group)
        path.chmod(item.get("mode", source.get("defaultMode", 0o644)))
    return {"name": volume["name"], "hostPath": {"path": str(root), "type": "Directory"}}


def claim_volume(claim: dict, plan: PodPlan, workdir: Path) -> dict:
    """A volume claim: a directory of the pod's own (no provisioner here), group-writable by fsGroup."""
    name = claim["metadata"]["name"]
    root = workdir / "volumes" / plan.name / name
    root.mkdir(parents=True, exist_ok=True)
    group = plan.spec.get("securityContext", {}).get("fsGroup", 0)
    os.chown(root, 0, group)
    root.chmod(0o2775)
    return {"name": name, "hostPath": {"path": str(root), "type": "Directory"}}


def empty_dir(volume: dict, plan: PodPlan, workdir: Path) -> dict:
    """An emptyDir: a fresh directory of the pod's own (podman 4.3 makes one named volume all pods share)."""
    root = workdir / "volumes" / plan.name / volume["name"]
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    os.chown(root, 0, plan.spec.get("securityContext", {}).get("fsGroup", 0))
    root.chmod(0o777)  # as a kubelet makes an emptyDir
    return {"name": volume["name"], "hostPath": {"path": str(root), "type": "Directory"}}


def image_user(image: str) -> str:
    done = subprocess.run(["podman", "image", "inspect", "--format", "{{.Config.User}}", image],
                          capture_output=True, text=True, env=podman_env())
    if done.returncode != 0:
        raise KubeletError(f"image {image!r} is not in podman's storage (no registry here: make image-local)")
    return done.stdout.strip()


def check_non_root(container: dict, plan: PodPlan) -> None:
    pod_ctx, ctx = plan.spec.get("securityContext", {}), container.get("securityContext", {})
    if not ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot", False)):
        return
    uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    if uid is None:
        user = image_user(container["image"]).split(":")[0]
        uid = int(user) if user.isdigit() else (0 if user in ("", "root") else None)
        if uid is None:
            raise KubeletError(f"pod {plan.name}: container {container['name']} has runAsNonRoot and a "
                               f"non-numeric image user {user!r}")
    if uid == 0:
        raise KubeletError(f"pod {plan.name}: container {container['name']} has runAsNonRoot and would run as root")


def pod_manifest(plan: PodPlan, cluster: Cluster, workdir: Path, aliases: list[dict], rules: dict[str, str]) -> dict:
    spec = copy.deepcopy(plan.spec)
    claims = spec.pop("_claims", [])
    # No scheduler: one node, so affinity and spreading have nothing to choose between.
    for key in ("affinity", "topologySpreadConstraints", "nodeSelector", "tolerations"):
        spec.pop(key, None)
    volumes = []
    for volume in spec.get("volumes", []):
        if "secret" in volume or "configMap" in volume:
            volumes.append(write_projected_volume(volume, plan, cluster, workdir))
        elif "emptyDir" in volume:
            volumes.append(empty_dir(volume, plan, workdir))
        elif "hostPath" in volume:
            volumes.append(volume)
        else:
            raise KubeletError(f"pod {plan.name}: volume {volume['name']}: type {sorted(volume)} is not supported here")
    volumes += [claim_volume(c, plan, workdir) for c in claims]
    spec["volumes"] = volumes
    declared = {v["name"] for v in volumes}
    for container in spec.get("initContainers", []) + spec.get("containers", []):
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            container.pop(probe, None)  # run from here (wait_ready), never by podman
        # podman 4.3 would publish every containerPort on the host; a kubelet publishes none.
        container.pop("ports", None)
        for mount in container.get("volumeMounts", []):
            if mount["name"] not in declared:
                raise KubeletError(f"pod {plan.name}: container {container['name']} mounts undeclared volume {mount['name']!r}")
        resolve_env(container, plan, cluster, rules)
        check_non_root(container, plan)
    spec["restartPolicy"] = "Never"
    spec["hostname"] = plan.name
    spec["hostAliases"] = aliases
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": plan.podman_name, "labels": plan.labels, "annotations": plan.annotations},
            "spec": spec}


# ---- podman ------------------------------------------------------------------------------------

def podman_env() -> dict[str, str]:
    return dict(os.environ, CONTAINERS_CONF=os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF)))


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=podman_env())
    if check and done.returncode != 0:
        raise KubeletError(f"podman {' '.join(args[:3])}: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
    return done


def up(rendered: str, workdir: Path, network: str, subnet: str, ready_timeout: float = 300) -> Cluster:
    """Play every pod of a rendered kustomization; return once every readiness probe passes."""
    cluster = Cluster.from_yaml(rendered)
    assign_addresses(cluster, subnet)
    aliases, rules = host_aliases(cluster), proxy_rules(cluster)
    workdir.mkdir(parents=True, exist_ok=True)
    save_state(workdir, network=network, pods=[p.podman_name for p in cluster.pods],
               namespace=cluster.pods[0].namespace if cluster.pods else "", players=[],
               configmaps=sorted(cluster.configmaps))
    configmaps = []
    for name, cm in cluster.configmaps.items():
        path = workdir / "configmaps" / f"{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump({k: cm[k] for k in ("apiVersion", "kind", "metadata", "data") if k in cm}))
        configmaps += ["--configmap", str(path)]
    for plan in cluster.pods:  # everything is checked before anything starts
        plan.played = pod_manifest(plan, cluster, workdir, aliases, rules)
    podman("network", "create", "--subnet", subnet, network)
    waiting: list[tuple[PodPlan, subprocess.Popen]] = []
    try:
        for plan in cluster.pods:
            path = workdir / "pods" / f"{plan.name}.yaml"
            path.parent.mkdir(exist_ok=True)
            path.write_text(yaml.safe_dump(plan.played, sort_keys=False))
            cmd = ["podman", "kube", "play", "--network", network, "--ip", plan.ip, *configmaps, str(path)]
            if plan.played["spec"].get("initContainers"):
                # podman waits for init containers to finish; a kubelet would go on with the other pods.
                log = (workdir / "pods" / f"{plan.name}.play.log").open("w")
                waiting.append((plan, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=podman_env())))
                save_state(workdir, players=[proc.pid for _, proc in waiting])
            else:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=podman_env())
                if done.returncode != 0:
                    raise KubeletError(f"pod {plan.name}: podman kube play: {done.stderr.strip()}")
        began = time.time()
        cluster.ready_at = {name: began + seconds for name, seconds in wait_ready(cluster, ready_timeout, waiting).items()}
    except BaseException:
        stop_players([proc.pid for _, proc in waiting])  # they hold their pods' locks
        raise
    return cluster


def save_state(workdir: Path, **changes) -> None:
    path = workdir / STATE_FILE
    state = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps(dict(state, **changes)))


def stop_players(pids: list[int]) -> None:
    """The `podman kube play` still waiting for a pod's init containers, if any."""
    for pid in pids:
        try:
            if b"kube" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, 15)
        except (OSError, ProcessLookupError):
            pass


def container_state(plan: PodPlan, container: str) -> dict:
    done = podman("inspect", "--type", "container", plan.podman_container(container), check=False)
    if done.returncode != 0:
        return {}
    return json.loads(done.stdout)[0]


def exited(plan: PodPlan, container: str) -> int | None:
    """The container's exit code once it has exited, else None."""
    state = container_state(plan, container).get("State", {})
    return state.get("ExitCode") if state.get("Status") in ("exited", "stopped") else None


def probe_passes(probe: dict, plan: PodPlan, container: dict) -> bool:
    def port_of(port) -> int:
        if isinstance(port, int):
            return port
        for p in container.get("ports", []):
            if p.get("name") == port:
                return p["containerPort"]
        raise KubeletError(f"pod {plan.name}: probe port {port!r} is not a container port")
    try:
        if "grpc" in probe:
            import grpc
            from grpc_health.v1 import health_pb2, health_pb2_grpc
            with grpc.insecure_channel(f"{plan.ip}:{port_of(probe['grpc']['port'])}") as ch:
                reply = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=probe["grpc"].get("service", "")), timeout=1.0)
            return reply.status == health_pb2.HealthCheckResponse.SERVING
        if "httpGet" in probe:
            get = probe["httpGet"]
            url = f"http://{plan.ip}:{port_of(get['port'])}{get.get('path', '/')}"
            with urllib.request.urlopen(url, timeout=1.0) as reply:
                return 200 <= reply.status < 400
        if "tcpSocket" in probe:
            with socket.create_connection((plan.ip, port_of(probe["tcpSocket"]["port"])), timeout=1.0):
                return True
    except Exception:  # noqa: BLE001 - any failure is "not ready yet", as for a kubelet
        return False
    raise KubeletError(f"pod {plan.name}: probe {sorted(probe)} is not supported here")


def ps() -> dict[str, tuple[str, int]]:
    """Every container podman has: name -> (state, exit code), in one call."""
    done = podman("ps", "--all", "--format", "json", check=False)
    if done.returncode != 0:
        return {}
    return {name: (c.get("State", ""), c.get("ExitCode", 0)) for c in json.loads(done.stdout or "[]")
            for name in c.get("Names", [])}


def wait_ready(cluster: Cluster, timeout: float, waiting=()) -> dict[str, float]:
    """Seconds until each pod's every readiness probe passed; fails on a container that exits early."""
    began = time.monotonic()
    ready: dict[str, float] = {}
    probed = [p for p in cluster.pods if any("readinessProbe" in c for c in p.spec.get("containers", []))]
    while True:
        for plan, proc in waiting:
            if proc.poll() not in (None, 0):
                log = (Path(proc.args[-1]).with_suffix(".play.log")).read_text().strip()
                raise KubeletError(f"pod {plan.name}: podman kube play failed: {log[-500:]}")
        states = ps()
        for plan in probed:
            if plan.name in ready:
                continue
            for c in plan.spec["containers"]:
                state, code = states.get(plan.podman_container(c["name"]), ("", 0))
                if state in ("exited", "stopped"):
                    raise KubeletError(f"pod {plan.name}: container {c['name']} exited ({code}): "
                                       f"{tail(logs(plan, c['name']))}")
            if all(probe_passes(c["readinessProbe"], plan, c) for c in plan.spec["containers"] if "readinessProbe" in c):
                ready[plan.name] = round(time.monotonic() - began, 1)
        if len(ready) == len(probed):
            return ready
        if time.monotonic() - began > timeout:
            late = [p.name for p in probed if p.name not in ready]
            raise KubeletError(f"not ready after {timeout:.0f}s: {', '.join(late)}")
        time.sleep(1.0)


def logs(plan: PodPlan, container: str) -> str:
    done = podman("logs", plan.podman_container(container), check=False)
    return done.stdout + done.stderr


def tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def down(workdir: Path) -> None:
    """Remove every pod and the network `up` made (also what a failed `up` left)."""
    state_file = workdir / STATE_FILE
    if not state_file.exists():
        return
    state = json.loads(state_file.read_text())
    stop_players(state.get("players", []))
    if state["pods"]:  # in one call, which podman works through in parallel (one at a time took 100 s)
        podman("pod", "rm", "--force", "--ignore", "--time", "2", *state["pods"], check=False, timeout=300)
    podman("network", "rm", "--force", state["network"], check=False, timeout=180)
    for name in state.get("configmaps", []):  # podman keeps a configMap volume as a named volume
        podman("volume", "rm", "--force", name, check=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="play every pod of a rendered kustomization and wait until ready")
    u.add_argument("rendered", type=Path, help="kubectl kustomize output (- for stdin)")
    u.add_argument("--network", default="racelab-pods")
    u.add_argument("--subnet", default="10.89.64.0/22")
    u.add_argument("--timeout", type=float, default=300)
    for p in (u, lg := sub.add_parser("logs", help="a container's output"), d := sub.add_parser("down", help="remove it all")):
        p.add_argument("--workdir", type=Path, required=True)
    lg.add_argument("pod")
    lg.add_argument("container", nargs="?", default="racelab")
    lg.add_argument("--follow", action="store_true", help="until the container exits")
    del d
    args = ap.parse_args(argv)
    try:
        if args.cmd == "up":
            text = sys.stdin.read() if str(args.rendered) == "-" else args.rendered.read_text()
            cluster = up(text, args.workdir, args.network, args.subnet, args.timeout)
            for plan in cluster.pods:
                print(f"{plan.name:<16} {plan.ip:<14} {plan.owner}")
        elif args.cmd == "logs":
            state = json.loads((args.workdir / STATE_FILE).read_text())
            name = f"{state['namespace']}-{args.pod}-{args.container}"
            if args.follow:
                return subprocess.call(["podman", "logs", "--follow", name], env=podman_env())
            done = podman("logs", name, check=False)
            print(done.stdout + done.stderr, end="")
        else:
            down(args.workdir)
    except KubeletError as exc:
        print(f"kubelet: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
