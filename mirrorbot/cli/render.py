"""What several commands print the same way: JSON documents, a sync's report, the commit line."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, NoReturn

import typer

from mirrorbot.redact import redact_data

if TYPE_CHECKING:
    from mirrorbot.jobs.context.runs import SyncOutcome
    from mirrorbot.jobs.sync import SyncReport

__all__ = ["echo_committed", "echo_json", "finish", "show"]


def echo_json(document: object) -> None:
    """A JSON document on stdout, every string in it redacted first."""
    typer.echo(json.dumps(redact_data(document), indent=2))


def echo_committed(commit: str | None, pushed: bool) -> None:
    """``committed <sha> [and pushed]`` when a command committed state."""
    if commit:
        typer.echo(f"committed {commit[:12]}" + (" and pushed" if pushed else ""))


def show(report: SyncReport) -> None:
    """The run's summary: rich on a terminal, plain text otherwise, and the Actions step summary."""
    from mirrorbot.integrations.github.actions import write_step_summary
    from mirrorbot.jobs.report import render_plain, render_rich, summarise

    summary = summarise(report)
    if sys.stdout.isatty():
        render_rich(summary)
    else:
        typer.echo(render_plain(summary), nl=False)
    write_step_summary(summary)


def finish(outcome: SyncOutcome) -> NoReturn:
    """Report a sync (or rules) run and exit with its code."""
    show(outcome.report)
    if outcome.fragment:
        typer.echo(f"wrote {outcome.fragment}")
    echo_committed(outcome.commit, outcome.pushed)
    raise typer.Exit(outcome.report.exit_code)
