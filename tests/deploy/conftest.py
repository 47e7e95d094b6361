from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from k8s_render import OVERLAYS, copy_tree, generate_run_files, render  # noqa: E402


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, str]:
    """Every overlay rendered once, from a copy of the tree with throwaway run files: name -> YAML text."""
    root = copy_tree(tmp_path_factory.mktemp("repo"))
    generate_run_files(root)
    return {name: render(root, name) for name in OVERLAYS}


@pytest.fixture(scope="session")
def docs(rendered) -> dict[str, list[dict]]:
    return {name: [d for d in yaml.safe_load_all(text) if d] for name, text in rendered.items()}
