"""The typer application: global options, and every command registered in help order.

Each command lives in a module of its area and imports what it runs inside its own
body, so ``mirrorbot --version`` (and every command) loads only what it uses.
"""

from typing import Annotated

import typer

from mirrorbot import __version__
from mirrorbot.cli import copy, demo, inspect, notify, request, rules, sync
from mirrorbot.cli.exits import EXIT_OK, interrupted
from mirrorbot.redact import guard_standard_streams

__all__ = ["app", "main"]

app = typer.Typer(
    name="mirrorbot",
    help="Mirror container images registry to registry, with state kept in git.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts are plain text: rich markup would read `os/arch[/variant]` as a closing tag.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mirrorbot {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Mirror container images registry to registry, with state kept in git."""


# The order here is the order of `mirrorbot --help`.
for _command in (
    copy.copy,
    demo.demo,
    rules.rules,
    sync.sync,
    inspect.plan,
    sync.publish,
    inspect.verify,
    inspect.find,
    notify.notify,
    request.request,
):
    app.command()(_command)


def main() -> None:
    """``mirrorbot``: every line printed redacted (a traceback or a library's too), Ctrl-C exits 130."""
    guard_standard_streams()
    with interrupted():
        app()
