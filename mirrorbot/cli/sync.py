"""``mirrorbot sync`` (the main job) and ``publish`` (the last step of a sharded sync)."""

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mirrorbot.cli.exits import EXIT_FAILED, EXIT_USAGE, exit_codes, exit_on, fail
from mirrorbot.cli.loading import loading
from mirrorbot.cli.options import (
    DEFAULT_CONFIG,
    ConfigOption,
    DryRunOption,
    NoPushOption,
    VerboseOption,
    job_context,
)
from mirrorbot.cli.render import echo_committed, finish
from mirrorbot.cli.rules import sync_rules, syncer_platforms
from mirrorbot.errors import InvalidReferenceError, MirrorbotError
from mirrorbot.redact import redact

if TYPE_CHECKING:
    from mirrorbot.jobs.context.runs import Repair
    from mirrorbot.reference import Reference

__all__ = ["publish", "sync"]

_RULES_ONLY = "applies to image-syncer rules only (mirrorbot rules)"


def sync(
    config: ConfigOption = DEFAULT_CONFIG,
    dry_run: DryRunOption = False,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Only this upstream namespace; repeat."),
    ] = None,
    image: Annotated[
        list[str] | None,
        typer.Option(
            "--image",
            help="Only this upstream reference (repo or repo:tag) of a configured namespace; repeat.",
        ),
    ] = None,
    shard: Annotated[
        str | None, typer.Option("--shard", help="Copy only shard I of N (I/N).")
    ] = None,
    assignments: Annotated[
        Path | None,
        typer.Option("--assignments", help="The `plan --shards N --json` output to follow."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Write this shard's fragment here instead of committing."),
    ] = None,
    run_time: Annotated[
        str | None,
        typer.Option("--run-time", help="Timestamp of the run (ISO 8601), shared by all shards."),
    ] = None,
    no_push: NoPushOption = False,
    time_budget: Annotated[
        str | None,
        typer.Option(
            "--time-budget",
            help="Stop starting copies after this long (5h, 90m, 3600); what finished is "
            "published, exit 1. Default: network.time_budget of the config (5h).",
        ),
    ] = None,
    repair: Annotated[
        bool,
        typer.Option("--repair", help="Also copy again what `verify` finds missing in the mirror."),
    ] = False,
    retry_skipped: Annotated[
        bool,
        typer.Option("--retry-skipped", help="Try tags skipped as unsupported (schema1) again."),
    ] = False,
    verbose: VerboseOption = False,
    # Deprecated: `sync --images F` is `mirrorbot rules --images F` (one letter from --image).
    images_file: Annotated[Path | None, typer.Option("--images", hidden=True)] = None,
    auth_file: Annotated[Path | None, typer.Option("--auth", hidden=True)] = None,
    default_registry: Annotated[
        str | None, typer.Option("--default-registry", envvar="DEFAULT_REGISTRY", hidden=True)
    ] = None,
    default_namespace: Annotated[
        str | None, typer.Option("--default-namespace", envvar="DEFAULT_NAMESPACE", hidden=True)
    ] = None,
    os_filter: Annotated[list[str] | None, typer.Option("--os", hidden=True)] = None,
    arch_filter: Annotated[list[str] | None, typer.Option("--arch", hidden=True)] = None,
    force: Annotated[bool | None, typer.Option("--force", hidden=True)] = None,
    proc: Annotated[int | None, typer.Option("--proc", min=1, max=64, hidden=True)] = None,
    retries: Annotated[int | None, typer.Option("--retries", min=0, max=10, hidden=True)] = None,
) -> None:
    """The main job: list upstream, copy what is new or changed, record it in git."""
    with loading():
        from mirrorbot.jobs.context.runs import run_sync
        from mirrorbot.jobs.progress import progress_for
        from mirrorbot.jobs.sync import SyncOptions
        from mirrorbot.logs import configure_logging

        repair_step = _repair_step() if repair else None

    configure_logging(verbose)
    rules_only = {
        "--auth": auth_file,
        "--os": os_filter,
        "--arch": arch_filter,
        "--force": force,
        "--proc": proc,
        "--retries": retries,
    }
    sync_only = {
        "--namespace": namespace,
        "--image": image,
        "--shard": shard,
        "--assignments": assignments,
        "--output": output,
        "--run-time": run_time,
        "--time-budget": time_budget,
        "--repair": repair,
        "--retry-skipped": retry_skipped,
    }
    if repair and (dry_run or shard is not None or output is not None):
        raise fail("--repair copies: not with --dry-run, --shard or --output", EXIT_USAGE)
    if images_file is not None:
        for flag, value in sync_only.items():
            if value:
                raise fail(f"{flag} does not apply to image-syncer rules", EXIT_USAGE)
        typer.echo(
            "warning: `sync --images` is deprecated; use `mirrorbot rules --images`", err=True
        )
        sync_rules(
            config,
            images_file,
            auth_file,
            default=(default_registry, default_namespace),
            platforms=syncer_platforms(os_filter, arch_filter),
            force=bool(force),
            proc=5 if proc is None else proc,
            retries=2 if retries is None else retries,
            dry_run=dry_run,
            push=not no_push,
        )
    for flag, given in rules_only.items():
        if given is not None and given != []:
            raise fail(f"{flag} {_RULES_ONLY}", EXIT_USAGE)
    options = SyncOptions(
        dry_run=dry_run,
        namespaces=tuple(namespace or ()),
        shard=_parse_shard(shard),
        assignments=_read_assignments(assignments),
        images=_parse_images(image),
        time_budget=_parse_budget(time_budget),
        repair=repair,
        retry_skipped=retry_skipped,
    )
    moment = _parse_time(run_time)
    context = job_context(config)
    progress = None if dry_run else progress_for()
    with exit_codes():
        outcome = run_sync(
            context,
            options,
            push=not no_push,
            now=moment,
            output=output,
            progress=progress,
            repair=repair_step,
        )
    finish(outcome)


def publish(
    directories: Annotated[
        list[Path], typer.Argument(help="Directories holding fragment-*.json files.")
    ],
    config: ConfigOption = DEFAULT_CONFIG,
    no_push: NoPushOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Merge shard fragments into state, one CHANGELOG section and the index; commit once."""
    with loading():
        from mirrorbot.jobs.context.fragments import run_publish
        from mirrorbot.logs import configure_logging

    configure_logging(verbose)
    context = job_context(config)
    with exit_on(EXIT_FAILED, MirrorbotError):
        outcome = run_publish(context, directories, push=not no_push)
    typer.echo(f"merged {outcome.fragments} fragments: {len(outcome.changes)} tags recorded")
    for index in outcome.missing:
        typer.echo(
            f"shard {index} left no fragment: its images are picked up by the next run", err=True
        )
    for failure in outcome.failures:
        typer.echo(redact(f"failed: {failure.get('upstream')}: {failure.get('error')}"), err=True)
    for error in outcome.errors:
        typer.echo(redact(f"listing failed: {error}"), err=True)
    for line in outcome.rejected:
        typer.echo(redact(f"rejected: {line}"), err=True)
    echo_committed(outcome.commit, outcome.pushed)
    raise typer.Exit(outcome.exit_code)


def _repair_step() -> "Repair":
    """The step after a ``--repair`` sync: only a sync that repairs loads the verify job."""
    from mirrorbot.jobs.context.verifying import repair_after_sync

    return repair_after_sync


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    index, sep, count = value.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not 1 <= int(index) <= int(count):
        raise fail(f"--shard {value!r}: expected I/N with 1 <= I <= N", EXIT_USAGE)
    return int(index), int(count)


def _parse_budget(value: str | None) -> float | None:
    if value is None:
        return None
    from mirrorbot.jobs.timebudget import parse_duration

    with exit_on(EXIT_USAGE, ValueError, prefix="--time-budget "):
        return parse_duration(value)


def _parse_time(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise fail(
            f"--run-time {value!r}: expected an ISO 8601 time such as 2026-11-23T03:04:05Z",
            EXIT_USAGE,
        ) from None
    if moment.tzinfo is None:
        raise fail(f"--run-time {value!r}: give a time zone (Z for UTC)", EXIT_USAGE)
    return moment


def _parse_images(values: list[str] | None) -> tuple["Reference", ...]:
    from mirrorbot.reference import parse_reference

    with exit_on(EXIT_USAGE, InvalidReferenceError):
        return tuple(parse_reference(value, default_tag=None) for value in values or ())


def _read_assignments(path: Path | None) -> dict[str, int]:
    """The ``assignments`` of a ``plan --shards N --json`` document."""
    if path is None:
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        assignments = document["assignments"]
        return {str(key): int(value) for key, value in assignments.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise fail(
            f"--assignments {path}: not a plan --shards document ({exc})", EXIT_USAGE
        ) from None
