"""Entry point: ``mirrorbot`` and ``python -m mirrorbot``."""

from __future__ import annotations

import sys

from mirrorbot.collector import start_up

# httpx imports its own command line (click, rich, pygments: ~40% of httpx's import
# time) whenever those happen to be installed; mirrorbot never runs it, so that import
# is refused and httpx falls back to its stub ``httpx.main``. Only the entry point does
# this: a program importing mirrorbot as a library keeps httpx as it is.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def run() -> None:
    """Start the CLI with the collector paused until the command has imported what it runs.

    Start-up allocates tens of thousands of long-lived objects (pydantic's
    schemas, httpx, GitPython), in the CLI's imports, in typer's parsing (its
    option types are pydantic's) and in the command's own imports; collecting
    them over and over while they are created cost ~10% of a no-op run. The
    command's ``with loading():`` ends start-up (:mod:`mirrorbot.cli.loading`):
    what exists then is frozen, never scanned again.
    """
    with start_up():
        from mirrorbot.cli import main

        main()


if __name__ == "__main__":
    run()
