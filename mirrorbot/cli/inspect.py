"""Commands that look before (``plan``), after (``verify``) and up (``find``) a sync."""

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mirrorbot.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, exit_codes, fail, opened
from mirrorbot.cli.loading import loading
from mirrorbot.cli.options import (
    DEFAULT_CONFIG,
    ConfigOption,
    NoPushOption,
    VerboseOption,
    job_context,
)
from mirrorbot.cli.render import echo_committed, echo_json, show
from mirrorbot.redact import redact

if TYPE_CHECKING:
    from mirrorbot.jobs.sync import SyncReport

__all__ = ["find", "plan", "plan_json", "verify"]


def plan(
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Only this upstream namespace; repeat."),
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option(
            "--shards",
            min=1,
            max=256,
            help="Split the work into N shards (adds matrix and assignments).",
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """What sync would copy, without writing anything."""
    with loading():
        from mirrorbot.jobs.context.runs import run_sync, shard_matrix
        from mirrorbot.jobs.sync import SyncOptions
        from mirrorbot.logs import configure_logging

    configure_logging(verbose)
    context = job_context(config)
    options = SyncOptions(dry_run=True, namespaces=tuple(namespace or ()))
    with exit_codes():
        outcome = run_sync(context, options, push=False)
    report = outcome.report
    document = plan_json(report)
    if shards is not None:
        document.update(shard_matrix(report, shards))
    if as_json:
        echo_json(document)
    else:
        show(report)
        if shards is not None:
            typer.echo(f"shard loads (tags to copy): {document['loads']}")
    raise typer.Exit(report.exit_code)


def plan_json(report: "SyncReport") -> dict[str, object]:
    """What ``plan --json`` prints (before the shard matrix is added)."""
    return {
        "namespaces": [
            {
                "source": plan.source,
                "mirror": plan.mirror,
                "items": [
                    {
                        "kind": item.kind,
                        "image": item.image,
                        "tag": item.tag,
                        "source": str(item.source),
                        "target": str(item.target),
                        "previous": item.previous,
                        "digest": item.upstream_digest,
                    }
                    for item in plan.items
                ],
                "unchanged": plan.unchanged,
                "gone": [f"{image}:{tag}" for image, tag in plan.gone],
                "keptOut": plan.kept_out,
            }
            for plan in report.plans
        ],
        "prune": report.pruning,
        "errors": report.listing_errors,
        "warnings": report.warnings,
    }


def verify(
    config: ConfigOption = DEFAULT_CONFIG,
    deep: Annotated[
        bool,
        typer.Option("--deep", help="Also re-read every manifest and blob, verifying digests."),
    ] = False,
    repair: Annotated[
        bool,
        typer.Option("--repair", help="Copy what is missing or drifted again; commit like sync."),
    ] = False,
    no_push: NoPushOption = False,
    verbose: VerboseOption = False,
    auth: Annotated[
        Path | None,
        typer.Option(
            "--auth", help="image-syncer auth file (a repository with no mirrorbot.yaml)."
        ),
    ] = None,
) -> None:
    """Check that every tag in state exists in the mirror with the recorded digest.

    With no mirrorbot.yaml (an image-syncer repository), state/ of the git
    repository here is verified with the credentials of --auth.
    """
    with loading():
        from mirrorbot.jobs.context.imagesyncer import run_rules_verify
        from mirrorbot.jobs.context.verifying import run_verify
        from mirrorbot.jobs.context.wiring import open_state
        from mirrorbot.jobs.progress import format_bytes
        from mirrorbot.jobs.verify import describe_repair
        from mirrorbot.logs import configure_logging

    configure_logging(verbose)
    if no_push and not repair:
        raise fail("--no-push goes with --repair", EXIT_USAGE)
    syncer_repo = not config.exists()
    if syncer_repo and repair:
        raise fail(
            "--repair needs a mirrorbot.yaml; with image-syncer files run "
            "`mirrorbot rules --force` to copy again",
            EXIT_USAGE,
        )
    if auth is not None and not syncer_repo:
        raise fail("--auth is for repositories without a mirrorbot.yaml", EXIT_USAGE)
    # A state file mirrorbot did not write (StateError) opens as a usage error (2), and
    # fails the run (1) when it is met while verifying.
    if syncer_repo:
        store = opened(config, open_state)  # state/ of the git repository here
        with exit_codes():
            outcome = run_rules_verify(store, auth, deep=deep)
    else:
        context = job_context(config)
        with exit_codes():
            outcome = run_verify(context, deep=deep, repair=repair, push=not no_push)
    result = outcome.result
    shared = Counter(drift.error for drift in result.drifts if drift.error)
    said: set[str] = set()
    for drift in result.drifts:
        if drift.error and shared[drift.error] > 1:  # a breaker's, the same for every tag: once
            if drift.error not in said:
                said.add(drift.error)
                typer.echo(redact(f"{shared[drift.error]} tags: {drift.error}"))
            continue
        typer.echo(redact(drift.describe()))
    detail = f", {result.blobs} blobs ({format_bytes(result.bytes_read)}) re-read" if deep else ""
    typer.echo(f"verified {result.tags} tags{detail}: {len(result.drifts)} drifted")
    if repair and result.drifts:
        for change in outcome.changes:
            typer.echo(describe_repair(change))
        for failure in outcome.failures:
            typer.echo(f"not repaired: {failure.target}: {failure.error}")
        typer.echo(f"repaired {len(outcome.changes)} tags, {len(outcome.failures)} not repaired")
    echo_committed(outcome.commit, outcome.pushed)
    raise typer.Exit(outcome.exit_code)


def find(
    query: Annotated[
        str,
        typer.Argument(
            help="Upstream name, mirror name or tag; name:tag finds exactly that tag "
            "(a host's :port is not a tag)."
        ),
    ],
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the matches as JSON (every tag and its digest).")
    ] = False,
) -> None:
    """Search state: upstream → mirror references and the pull command."""
    with loading():
        from mirrorbot.jobs.context.wiring import open_state
        from mirrorbot.jobs.find import find as search
        from mirrorbot.jobs.find import matches_to_json

    store = opened(config, open_state)  # state files only: no credentials, no registry
    with exit_codes():  # a refused or corrupt state file: one line, exit 1
        matches = search(store.all(), query)
    if as_json:
        typer.echo(redact(json.dumps(matches_to_json(matches), indent=2, ensure_ascii=False)))
        raise typer.Exit(EXIT_OK if matches else EXIT_FAILED)
    if not matches:
        typer.echo(f"nothing mirrored matches {query!r}")
        raise typer.Exit(EXIT_FAILED)
    for match in matches:
        listed = match.tags or match.artifacts  # only artifacts matched: show those
        shown = ", ".join(listed[:10]) + (f" (+{len(listed) - 10})" if len(listed) > 10 else "")
        typer.echo(f"{match.upstream} → {match.mirror}  [{shown}]")
        if match.artifacts:
            typer.echo(
                f"  {len(match.artifacts)} signature/attestation/referrers tags (not images)"
            )
        if match.pull is not None:
            typer.echo(f"  {match.pull}")
