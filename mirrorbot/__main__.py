"""Entry point: ``mirrorbot`` and ``python -m mirrorbot``."""

from __future__ import annotations

import gc

from mirrorbot.collector import collector_paused


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
