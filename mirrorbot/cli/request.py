"""``mirrorbot request``: a namespace request from a GitHub issue, checked and added to the config."""

from pathlib import Path
from typing import Annotated

import typer

from mirrorbot.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, fail
from mirrorbot.cli.loading import loading
from mirrorbot.cli.options import DEFAULT_CONFIG, ConfigOption, VerboseOption
from mirrorbot.errors import MirrorbotError
from mirrorbot.redact import redact

__all__ = ["request"]


def request(
    issue_file: Annotated[
        Path,
        typer.Option(
            "--issue-file", help="The issue body: an issue-form body as GitHub renders it."
        ),
    ],
    config: ConfigOption = DEFAULT_CONFIG,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="Also accept this upstream registry host; repeat."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check only; leave the config as it is.")
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Check a namespace request from an issue, add it to the config, print a Markdown reply.

    Exit 0 accepted, 1 rejected (the reason is in the reply), 2 usage or config error.
    With $GITHUB_OUTPUT set, also writes accepted=, namespace=, open_pull_request= there.
    """
    with loading():
        from mirrorbot.integrations.github.actions import write_outputs
        from mirrorbot.integrations.github.request import handle_request, request_outputs
        from mirrorbot.logs import configure_logging

    configure_logging(verbose)
    try:
        outcome = handle_request(issue_file, config, allow=allow or (), dry_run=dry_run)
    except OSError as exc:
        raise fail(f"{issue_file}: {exc.strerror or exc}", EXIT_USAGE) from None
    except MirrorbotError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    typer.echo(redact(outcome.reply), nl=False)
    write_outputs(request_outputs(outcome))
    raise typer.Exit(EXIT_OK if outcome.accepted else EXIT_FAILED)
