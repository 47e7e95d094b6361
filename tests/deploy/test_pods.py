"""The deploy path run for real: the image built offline and the base's pods started under podman.

`make image-local` builds racelab:<version> from deploy/Dockerfile with no network; then
deploy/podman/kubelet.py plays every pod of the rendered base (with the cascade component) on a
podman network this test makes: 35 pods, each with its own address, as non-root with a read-only
root filesystem where the manifests say so. The LB pods register their own addresses, the clients
resolve the regional name at the authority pod and connect to LB pods, and the scenario Job's
`racelab follow` must print the race. Everything is removed at the end, also on failure.
Traffic goes only to the network's own addresses (this machine's) and to loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest

from k8s_render import ROOT, copy_tree, generate_run_files, render

sys.path.insert(0, str(ROOT / "deploy/podman"))
import kubelet  # noqa: E402
from services.runtime.scenario import load_scenario  # noqa: E402

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"racelab:{VERSION}"
LEGACY = "dynamodb.us-east-1.amazonaws.com"
# Seconds from playing the pods to simulated 23:30 (make k8s-generate's K8S_LEAD): 35 pods start in
# about a minute on 2 cores; the test fails, saying so, if they are not all ready by then.
LEAD = 100
DNS_GATED = 60  # seconds after 23:30 for the enactors' first install to reach the clients' pods
SUBNET = "10.89.64.0/22"
# Every service of the replica, by the name the image's entry point takes.
SERVICES = {"authority", "planner", "director", "enactor", "dynamodb", "dwfm", "netmgr", "nlb", "workload"}


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{', '.join(missing)} missing: .ci/run installs podman, runc, catatonit and mmdebstrap")
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install podman runc catatonit mmdebstrap)")


@pytest.fixture(scope="module")
def image() -> str:
    need("podman", "runc", "mmdebstrap")
    done = subprocess.run(["make", "--no-print-directory", "image-local"], cwd=ROOT, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, f"make image-local failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return IMAGE


def run_image(*args: str) -> subprocess.CompletedProcess:
    return kubelet.podman("run", "--rm", "--network", "none", "--read-only", IMAGE, *args, check=False)


def test_image_entry_point_and_user(image):
    user = kubelet.image_user(image)
    assert user.split(":")[0] not in ("", "0", "root"), f"the image runs as {user!r}"
    done = run_image("racelab", "--help")
    assert done.returncode == 0 and "follow" in done.stdout, done.stderr
    done = run_image("authorityy")
    assert done.returncode != 0 and "services.authorityy" in done.stderr
    done = run_image("Authority")
    assert done.returncode == 2 and "not a service name" in done.stderr


# The mutation check (docs/kubernetes.md): RACELAB_POD_BREAK=image|entrypoint|env|mount breaks one
# thing in the rendered manifests before the pods are played, and this module must then fail.
BREAKS = {
    "image": (f"image: {IMAGE}\n", f"image: {IMAGE}-missing\n"),  # the first workload's image
    "entrypoint": ("- args:\n        - director\n", "- args:\n        - directorr\n"),
    "env": ("RACELAB_SCENARIO: /etc/racelab/scenario/oct-2025.yaml", "RACELAB_SCENARIO: /etc/racelab/scenario/oct.yaml"),
    "mount": ("- mountPath: /etc/racelab/scenario\n", "- mountPath: /etc/racelab/scenarios\n"),
}


def broken(rendered: str) -> str:
    which = os.environ.get("RACELAB_POD_BREAK")
    if not which:
        return rendered
    was, now = BREAKS[which]
    assert was in rendered, f"RACELAB_POD_BREAK={which}: {was!r} is not in the rendered manifests"
    return rendered.replace(was, now, 1)


@contextlib.contextmanager
def pods(tmp_path_factory, seed: int | None = None):
    """The base's pods played on a network of their own, a new clock LEAD s ahead; removed after."""
    root = copy_tree(tmp_path_factory.mktemp("repo"))
    wall_start = time.time() + LEAD
    generate_run_files(root, wall_start=wall_start)
    if seed is not None:  # as `make k8s-generate K8S_SEED=...` writes it
        with (root / "deploy/k8s/base/generated/run.env").open("a") as env:
            env.write(f"RACELAB_SEED={seed}\n")
    rendered = broken(render(root, "base"))
    workdir = tmp_path_factory.mktemp("pods")
    began = time.monotonic()
    try:
        # Some pods can be ready only once simulated time runs (after_the_clock): DNS_GATED more seconds.
        played = kubelet.up(rendered, workdir, f"racelab-test-{os.getpid()}", SUBNET, ready_timeout=LEAD + DNS_GATED)
        played.ready_after, played.wall_start = time.monotonic() - began, wall_start
        played.workdir = workdir
        yield played
    finally:
        kubelet.down(workdir)


@pytest.fixture(scope="module")
def cluster(image, tmp_path_factory):
    with pods(tmp_path_factory) as played:
        yield played


# The nlb serves only once its NLBs' records are written through the authority, and a Route 53 batch
# takes simulated time, which stands still until 23:30.
WRITES_DNS_FIRST = {"nlb"}


def after_the_clock(plan) -> bool:
    """A pod that can be ready only once simulated time runs: its init container holds it back until
    the regional name has an address (racelab wait-dns), or it writes DNS before it serves."""
    return plan.name in WRITES_DNS_FIRST or any(
        "wait-dns" in map(str, c.get("args", [])) for c in plan.spec.get("initContainers", []))


def test_every_service_ready_as_non_root_with_read_only_root(cluster):
    early = {p.name: cluster.wall_start - cluster.ready_at[p.name] for p in cluster.pods if p.name in cluster.ready_at}
    gated = {p.name for p in cluster.pods if after_the_clock(p)}
    print(f"\n{len(cluster.pods)} pods ready {cluster.ready_after:.0f}s after the first was played; before "
          f"simulated 23:30 by: {', '.join(f'{n} {s:.0f}s' for n, s in sorted(early.items(), key=lambda x: x[1]))}")
    assert {"workload", "nlb"} <= gated, gated
    late = {n: s for n, s in early.items() if n not in gated and s <= 0}
    assert not late, f"not ready when the scenario's clock started: {late}"
    assert all(early[n] > -DNS_GATED for n in gated if n in early), {n: early.get(n) for n in gated}
    started = set()
    for plan in cluster.pods:
        for c in plan.spec["containers"]:
            state = kubelet.container_state(plan, c["name"])
            assert state, f"pod {plan.name}: no container {c['name']}"
            uid = state["Config"]["User"].split(":")[0]
            assert uid not in ("", "0", "root"), f"pod {plan.name} runs as {state['Config']['User']!r}"
            wanted = c.get("securityContext", {}).get("readOnlyRootFilesystem", False)
            assert state["HostConfig"]["ReadonlyRootfs"] == wanted, f"pod {plan.name}: read-only root"
            if plan.owner.split("/")[0] != "Job":
                assert state["State"]["Status"] == "running", f"pod {plan.name}: {state['State']['Status']}"
                started.add(c["args"][0])
    assert started == SERVICES


def authority_answers(cluster, name: str) -> set[str]:
    authority = cluster.pod("authority-0")
    query = dns.message.make_query(name, dns.rdatatype.A)
    reply = dns.query.udp(query, authority.ip, port=10053, timeout=2.0)
    return {r.address for rrset in reply.answer for r in rrset if r.rdtype == dns.rdatatype.A}


# Every endpoint name of the scenario: the race may already have emptied the regional name (and another)
# when this test asks, a minute or more into simulated time, so the addresses are read from all of them.
ENDPOINTS = tuple(ep.name for ep in load_scenario("oct-2025").endpoints)


def test_lb_pods_register_their_own_addresses(cluster):
    lb_ips = {p.ip for p in cluster.pods if p.owner == "StatefulSet/dynamodb-lb"}
    by_name = {name: authority_answers(cluster, name) for name in ENDPOINTS}
    answers = set().union(*by_name.values())
    assert answers, f"the authority pod answers no address for any endpoint: {by_name}"
    assert answers <= lb_ips, f"answers {sorted(answers - lb_ips)} are not LB pods' addresses"
    # The workload pod's clients resolve the name there and their requests reach LB pods.
    deadline = time.monotonic() + 30
    while (ok := client_requests(cluster, "ok")) == 0:
        assert time.monotonic() < deadline, f"no client request succeeded: {client_requests(cluster, None)}"
        time.sleep(1)
    served = {p.name: lb_requests(p) for p in cluster.pods if p.owner == "StatefulSet/dynamodb-lb"}
    assert sum(served.values()) > 0, f"no LB pod served a request: {served}"
    print(f"\n{len(answers)} LB pod addresses answered; clients {ok:.0f} ok; "
          f"{sum(1 for n in served.values() if n)} LB pods served requests")


def metrics(ip: str, port: int) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(f"http://{ip}:{port}/metrics", timeout=2) as reply:
        text = reply.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def client_requests(cluster, outcome: str | None) -> float | dict:
    samples = {k: v for k, v in metrics(cluster.pod("workload").ip, 17908).items()
               if k[0] == "racelab_client_requests_total"}
    if outcome is None:
        return samples
    return sum(v for (_, labels), v in samples.items() if dict(labels).get("outcome") == outcome)


def lb_requests(plan) -> float:
    return sum(v for (name, _), v in metrics(plan.ip, 17907).items() if name == "racelab_dynamodb_requests_total")


# The race in the Job's output is the replica's own: no seed is certain to empty the name (in the pods
# here the default seed did in 2 of 3 runs of the current race code, seed 2 in 0 of 1, seed 3 in 1 of 1). Like tests/integration/test_live_race.py, the test says
# how many seeds it tried: the default first, then fresh clusters on the next ones.
RACE_SEEDS = (1, 2, 3, 4)


def follow_job(played) -> tuple[int | None, str, dict]:
    """The scenario Job's exit code, its output and the summary it printed."""
    job = played.pod("scenario")
    deadline = time.monotonic() + LEAD + 150 + 240  # the lead, the schedule's 150 s, slack for 2 cores
    while (code := kubelet.exited(job, "racelab")) is None:
        assert time.monotonic() < deadline, "the scenario Job did not finish"
        time.sleep(2)
    out = kubelet.logs(job, "racelab")
    assert code == 0, f"racelab follow exited {code}: {kubelet.tail(out)}"
    assert any("applied generation" in line for line in out.splitlines()), "no enactor event was printed"
    return code, out, json.loads(out[out.index("\n{") + 1:])


def crashed(played) -> dict[str, str]:
    return {p.name: kubelet.tail(kubelet.logs(p, c)) for p in played.pods if p.owner.split("/")[0] != "Job"
            for c in p.container_names() if kubelet.exited(p, c) is not None}


def test_scenario_job_shows_the_race(cluster, tmp_path_factory):
    _, out, summary = follow_job(cluster)
    assert not crashed(cluster), f"containers exited during the run: {crashed(cluster)}"
    tried = [(RACE_SEEDS[0], summary)]
    for seed in RACE_SEEDS[1:]:
        if summary["regional_name_emptied"]:
            break
        kubelet.down(cluster.workdir)  # one cluster at a time: the next takes its network and cores
        with pods(tmp_path_factory, seed) as played:
            _, out, summary = follow_job(played)
            assert not crashed(played), f"seed {seed}: containers exited during the run: {crashed(played)}"
        tried.append((seed, summary))
    print(out[-4000:])
    print(f"seeds tried: {[(s, t['regional_name_emptied']) for s, t in tried]}")
    assert all(t["stale_apply"] for _, t in tried), f"a run with no stale plan applied: {tried}"
    assert summary["regional_name_emptied"], f"{LEGACY} emptied on none of seeds {RACE_SEEDS}: {tried}"
    assert summary["enactors_stuck"], "the enactors never got stuck"
    assert summary["seed"] == tried[-1][0]
