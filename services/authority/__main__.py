"""python -m services.authority: the Route 53-like DNS authority."""

from __future__ import annotations

import sys

from services.runtime.service import parser, run

from .server import EXTRA_SETTINGS, main


def entry(argv: list[str] | None = None) -> int:
    p = parser("authority", "Route 53-like DNS authority: authoritative DNS (UDP, TCP) and the RouteControl API",
               EXTRA_SETTINGS)
    return run("authority", p, main, argv)


if __name__ == "__main__":
    sys.exit(entry())
