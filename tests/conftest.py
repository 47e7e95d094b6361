import socket
import sys
from pathlib import Path

import pytest

# Helpers shared by the test folders (procs.py) import as top-level modules.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
