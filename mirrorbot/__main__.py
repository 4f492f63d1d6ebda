"""Entry point: ``mirrorbot`` and ``python -m mirrorbot``."""

from __future__ import annotations

import gc
import sys

from mirrorbot.collector import collector_paused

# httpx imports its own command line (click, rich, pygments: ~40% of httpx's import
# time) whenever those happen to be installed; mirrorbot never runs it, so that import
# is refused and httpx falls back to its stub ``httpx.main``. Only the entry point does
# this: a program importing mirrorbot as a library keeps httpx as it is.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def run() -> None:
    """Start the CLI with the collector paused while it imports.

    Start-up allocates tens of thousands of long-lived objects (pydantic's
    schemas, httpx, GitPython); collecting them over and over while they are
    created cost ~10% of a no-op run. Frozen afterwards, they are never scanned
    again.
    """
    with collector_paused():
        from mirrorbot.cli import main
    gc.freeze()
    main()


if __name__ == "__main__":
    run()
