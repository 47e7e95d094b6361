import os
import shutil

import pytest


def require_binary(name: str) -> str:
    """The path of a Debian tool the test needs: skipped locally without it, a failure in CI (.ci/run installs it)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; .ci/run must install it")
        pytest.skip(message)
    return path
