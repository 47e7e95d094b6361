"""CI renders every overlay with `kubectl kustomize` and validates it with
`kubernetes-validate --strict` against the Kubernetes 1.32 schemas (bundled: no network)."""

from __future__ import annotations

import subprocess

import pytest

from k8s_render import OVERLAYS, tool

KUBERNETES_VERSION = "1.32.0"


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_overlay_validates_strictly_against_kubernetes_1_32(overlay, rendered, docs, tmp_path):
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(rendered[overlay])
    done = subprocess.run([tool("kubernetes-validate"), "--strict", "--kubernetes-version", KUBERNETES_VERSION,
                           str(path)], capture_output=True, text=True, timeout=300)
    lines = done.stdout.splitlines()
    problems = [line for line in lines if not line.startswith("INFO")]
    assert done.returncode == 0 and not problems, "\n".join(problems) or done.stderr
    # A kind without a schema is only a warning to the tool; here every resource must be checked.
    passed = [line for line in lines if f"passed for resource" in line and f"against version 1.32" in line]
    assert len(passed) == len(docs[overlay]) > 10


def test_strict_validation_rejects_a_field_kubernetes_does_not_know(tmp_path):
    """The validator really is strict: a misspelt field fails."""
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"
                    "spec: {ports: [{port: 53, protocoll: UDP}]}\n")
    done = subprocess.run([tool("kubernetes-validate"), "--strict", "--kubernetes-version", KUBERNETES_VERSION,
                           str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "protocoll" in done.stdout
