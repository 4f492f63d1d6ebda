"""Options shared by several commands, declared once so their help reads the same everywhere.

Only typer and pathlib here: every command module imports this at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mirrorbot.cli.exits import opened

if TYPE_CHECKING:
    from mirrorbot.jobs.context.wiring import JobContext

__all__ = [
    "DEFAULT_CONFIG",
    "ConfigOption",
    "DryRunOption",
    "NoPushOption",
    "VerboseOption",
    "job_context",
]

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        envvar="MIRRORBOT_CONFIG",
        help="The mirrorbot.yaml to use.",
        show_default=True,
    ),
]
DEFAULT_CONFIG = Path("mirrorbot.yaml")
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Plan only; write nothing.")]
NoPushOption = Annotated[bool, typer.Option("--no-push", help="Commit, but do not push.")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")]


def job_context(config: Path) -> JobContext:
    """The config, credentials and state repository a job runs with; what fails to open exits 2."""
    from mirrorbot.jobs.context.wiring import open_context

    return opened(config, open_context)
