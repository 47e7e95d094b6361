"""deploy/podman/kubelet.py without podman: how a rendered manifest becomes the pods it plays."""

from __future__ import annotations

import copy
import stat
import sys
from pathlib import Path

import pytest
import yaml

from k8s_render import ROOT

sys.path.insert(0, str(ROOT / "deploy/podman"))
import kubelet  # noqa: E402


@pytest.fixture
def base(rendered) -> kubelet.Cluster:
    cluster = kubelet.Cluster.from_yaml(rendered["base"])
    kubelet.assign_addresses(cluster, "10.89.64.0/22")
    return cluster


def played(cluster: kubelet.Cluster, name: str, tmp_path) -> dict:
    return kubelet.pod_manifest(cluster.pod(name), cluster, tmp_path, kubelet.host_aliases(cluster),
                                kubelet.proxy_rules(cluster))


def env_of(pod: dict, container: int = 0) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][container]["env"]}


def test_one_pod_per_replica_with_its_own_address(base):
    names = [p.name for p in base.pods]
    assert names.count("authority-0") == 1 and "scenario" in names
    assert [n for n in names if n.startswith("dynamodb-lb-")] == [f"dynamodb-lb-{i}" for i in range(24)]
    assert len({p.ip for p in base.pods}) == len(base.pods)
    assert base.pod("dynamodb-lb-3").labels["apps.kubernetes.io/pod-index"] == "3"
    assert base.pod("scenario").labels["job-name"] == "scenario"


def test_downward_api_gives_each_lb_its_name_index_and_address(base, tmp_path):
    env = env_of(played(base, "dynamodb-lb-3", tmp_path))
    assert env["RACELAB_INSTANCE"] == "dynamodb-lb-3"
    assert env["RACELAB_LB_ORDINAL"] == "3"
    assert env["RACELAB_LB_ADVERTISE"] == base.pod("dynamodb-lb-3").ip


def test_service_cluster_ip_goes_to_the_pod_and_its_target_port(base, tmp_path):
    """kube-proxy's part: the authority's 10.96.0.53:53 is its pod's DNS port 10053."""
    pod = played(base, "workload", tmp_path)
    authority = base.pod("authority-0").ip
    assert env_of(pod)["RACELAB_AUTHORITY_DNS"] == f"{authority}:10053"
    assert f"{authority}:10053" in pod["spec"]["initContainers"][0]["args"]
    aliases = {h: a["ip"] for a in pod["spec"]["hostAliases"] for h in a["hostnames"]}
    assert aliases["planner"] == base.pod("planner-0").ip
    assert aliases["director.racelab.svc.cluster.local"] == base.pod("director").ip


def test_secret_volume_holds_only_its_items_with_their_mode(base, tmp_path):
    pod = played(base, "authority-0", tmp_path)
    [volume] = [v for v in pod["spec"]["volumes"] if v["name"] == "credentials"]
    root = tmp_path / "volumes/authority-0/credentials"
    assert volume["hostPath"]["path"] == str(root)
    assert sorted(p.name for p in root.iterdir()) == ["acl.yaml", "authority.token"]
    token = root / "authority.token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o440 and token.stat().st_gid == 10001
    assert token.read_text().strip() and "\n" not in token.read_text().strip()


def test_configmap_volume_is_written_for_each_pod_on_its_own(base, tmp_path):
    """Not podman's shared named volume, which each later `kube play` rewrites under running pods."""
    lb0, lb1 = played(base, "dynamodb-lb-0", tmp_path), played(base, "dynamodb-lb-1", tmp_path)
    paths = [v["hostPath"]["path"] for pod in (lb0, lb1) for v in pod["spec"]["volumes"] if v["name"] == "scenario"]
    assert paths == [str(tmp_path / "volumes/dynamodb-lb-0/scenario"), str(tmp_path / "volumes/dynamodb-lb-1/scenario")]
    [source] = [v["configMap"]["name"] for v in base.pod("dynamodb-lb-0").spec["volumes"] if v["name"] == "scenario"]
    data = base.configmaps[source]["data"]
    for path in paths:
        files = {f.name: f.read_text() for f in Path(path).iterdir()}
        assert files == {k: str(v) for k, v in data.items()} and yaml.safe_load(files["oct-2025.yaml"])["name"]


def test_claims_become_a_directory_of_the_pods_own(base, tmp_path):
    pod = played(base, "planner-0", tmp_path)
    [state] = [v for v in pod["spec"]["volumes"] if v["name"] == "state"]
    assert state["hostPath"]["path"] == str(tmp_path / "volumes/planner-0/state")


def test_probes_are_not_handed_to_podman_and_nothing_restarts(base, tmp_path):
    pod = played(base, "authority-0", tmp_path)
    assert pod["spec"]["restartPolicy"] == "Never"
    assert not {"readinessProbe", "livenessProbe"} & set(pod["spec"]["containers"][0])
    assert "readinessProbe" in base.pod("authority-0").spec["containers"][0]  # still probed, from here


@pytest.mark.parametrize("break_it, says", [
    (lambda s: s["containers"][0]["volumeMounts"].append({"name": "nope", "mountPath": "/x"}), "undeclared volume"),
    (lambda s: s["containers"][0]["env"].append({"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.x"}}}),
     "fieldRef spec.x"),
    (lambda s: s["volumes"].append({"name": "v", "secret": {"secretName": "missing"}}), "no Secret 'missing'"),
    (lambda s: s["volumes"].append({"name": "v", "configMap": {"name": "missing"}}), "no ConfigMap 'missing'"),
    (lambda s: s["securityContext"].update(runAsUser=0), "would run as root"),
])
def test_a_pod_a_kubelet_would_refuse_is_refused_before_anything_starts(base, tmp_path, break_it, says):
    plan = base.pod("authority-0")
    plan.spec = copy.deepcopy(plan.spec)
    break_it(plan.spec)
    with pytest.raises(kubelet.KubeletError, match=says):
        kubelet.pod_manifest(plan, base, tmp_path, [], {})


def test_cli_says_what_is_wrong(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "racelab", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}]}}))
    assert kubelet.main(["up", str(bad), "--workdir", str(tmp_path / "w")]) == 1
    assert "mounts undeclared volume 'v'" in capsys.readouterr().err
