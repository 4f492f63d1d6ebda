"""``mirrorbot demo``: the main job on loopback registries, for a first look without internet."""

from pathlib import Path
from typing import Annotated

import typer

from mirrorbot.cli.exits import EXIT_FAILED, exit_on
from mirrorbot.cli.loading import loading
from mirrorbot.errors import MirrorbotError

__all__ = ["demo"]


def demo(
    workdir: Annotated[
        Path | None, typer.Option(help="Keep registries' data here instead of a temp dir.")
    ] = None,
) -> None:
    """Run the main job on an embedded default: local registries, sample images, no internet."""
    with loading():
        from mirrorbot.demo.run import run_demo
        from mirrorbot.logs import configure_logging

    configure_logging(False)
    with exit_on(EXIT_FAILED, MirrorbotError):
        code = run_demo(workdir, echo=typer.echo)
    raise typer.Exit(code)
