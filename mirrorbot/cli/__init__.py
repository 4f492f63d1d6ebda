"""The ``mirrorbot`` command line. Thin: parse, call, render.

Exit codes (contract, every command): 0 success, 1 some namespaces or tags failed,
2 usage or config error (a flag that does not apply included), 130 interrupted.

Nothing secret is printed: every line goes through :mod:`mirrorbot.redact`,
explicitly where it is made and again at ``sys.stdout``/``sys.stderr``
(:func:`main` guards both, so a traceback or a library's message is covered too).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from mirrorbot import __version__
from mirrorbot.engine.copier import CopyResult
from mirrorbot.engine.registry.credentials import CredentialStore, parse_user_password
from mirrorbot.engine.registry.media import PlatformFilter
from mirrorbot.errors import ConfigError, CredentialError, InvalidReferenceError, MirrorbotError
from mirrorbot.jobs.progress import format_bytes
from mirrorbot.logs import configure_logging
from mirrorbot.redact import guard_standard_streams, redact, redact_data
from mirrorbot.reference import Reference, parse_reference

if TYPE_CHECKING:
    from mirrorbot.jobs.context import JobContext, SyncOutcome
    from mirrorbot.jobs.sync import SyncReport

__all__ = ["app", "main"]

_T = TypeVar("_T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="mirrorbot",
    help="Mirror container images registry to registry, with state kept in git.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts are plain text: rich markup would read `os/arch[/variant]` as a closing tag.
    rich_markup_mode=None,
)


def _fail(message: str, code: int) -> typer.Exit:
    # One line, whatever the cause quoted (git's stderr, a registry's error page that
    # may echo our Authorization header): redacted before it is joined.
    typer.echo(f"error: {' '.join(redact(message).split())}", err=True)
    return typer.Exit(code)


def _json(document: object) -> None:
    """A JSON document on stdout, every string in it redacted first."""
    typer.echo(json.dumps(redact_data(document), indent=2))


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


def _describe(result: CopyResult) -> str:
    stats = result.stats
    if result.already_present:
        return f"up to date: {result.target} ({result.digest})"
    line = (
        f"copied {result.source} → {result.target.name}"
        f"{':' + result.target.tag if result.target.tag else ''} ({result.digest}): "
        f"{stats.blobs_uploaded} blobs uploaded ({format_bytes(stats.bytes_uploaded)}), "
        f"{stats.blobs_mounted} mounted, {stats.blobs_skipped} already there"
    )
    if result.filtered:
        line += (
            f"\n  note: the platform filter made a new index {result.digest}; "
            f"the source index is {result.source_digest}"
        )
    return line


@app.command()
def copy(
    source: Annotated[str, typer.Argument(help="Source reference, by tag or digest.")],
    destination: Annotated[str, typer.Argument(help="Target reference (tag optional).")],
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", help="Keep only this os/arch[/variant]; repeat. Default: all."),
    ] = None,
    signatures: Annotated[
        bool,
        typer.Option(
            "--signatures/--no-signatures",
            help="Also copy cosign sha256-<hex>.sig/.att/.sbom tags.",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Copy even if the target already has this digest.")
    ] = False,
    src_creds: Annotated[
        str | None,
        typer.Option(
            "--src-creds", envvar="MIRRORBOT_SRC_CREDS", help="USER:PASSWORD for the source."
        ),
    ] = None,
    dest_creds: Annotated[
        str | None,
        typer.Option(
            "--dest-creds", envvar="MIRRORBOT_DEST_CREDS", help="USER:PASSWORD for the target."
        ),
    ] = None,
    insecure: Annotated[
        list[str] | None,
        typer.Option("--insecure", help="Registry host to reach over plain HTTP; repeat."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")] = False,
) -> None:
    """Copy one image (every platform, attestations included) between registries."""
    from mirrorbot.engine.registry.pool import RegistryPool
    from mirrorbot.jobs.copy import copy_reference

    redactor = configure_logging(verbose)
    try:
        src = parse_reference(source)
        dst = parse_reference(destination, default_tag=None)
        if dst.tag is None and dst.digest is None and src.tag is not None:
            dst = dst.with_tag(src.tag)
        platforms = PlatformFilter.parse(platform or [])
        store = CredentialStore()
        if src_creds:
            store.set(
                src.registry, parse_user_password(src_creds, "--src-creds / $MIRRORBOT_SRC_CREDS")
            )
        if dest_creds:
            store.set(
                dst.registry,
                parse_user_password(dest_creds, "--dest-creds / $MIRRORBOT_DEST_CREDS"),
            )
        redactor.add(store.secrets())
    except (InvalidReferenceError, CredentialError, ValueError) as exc:
        raise _fail(str(exc), EXIT_USAGE) from None

    async def run() -> list[CopyResult]:
        async with RegistryPool(store, insecure=insecure or ()) as pool:
            return await copy_reference(
                pool, src, dst, platforms=platforms, signatures=signatures, force=force
            )

    try:
        results = asyncio.run(run())
    except MirrorbotError as exc:
        redactor.add(store.secrets())
        raise _fail(str(exc), EXIT_FAILED) from None
    if as_json:
        _json([_result_json(r) for r in results])
    else:
        for result in results:
            typer.echo(_describe(result))


def _result_json(result: CopyResult) -> dict[str, object]:
    return {
        "source": str(result.source),
        "target": str(result.target),
        "digest": result.digest,
        "sourceDigest": result.source_digest,
        "mediaType": result.media_type,
        "platforms": list(result.platforms),
        "alreadyPresent": result.already_present,
        "blobsUploaded": result.stats.blobs_uploaded,
        "bytesUploaded": result.stats.bytes_uploaded,
        "blobsMounted": result.stats.blobs_mounted,
        "blobsSkipped": result.stats.blobs_skipped,
    }


@app.command()
def demo(
    workdir: Annotated[
        Path | None, typer.Option(help="Keep registries' data here instead of a temp dir.")
    ] = None,
) -> None:
    """Run the main job on an embedded default: local registries, sample images, no internet."""
    from mirrorbot.demo.run import run_demo

    configure_logging(False)
    try:
        code = run_demo(workdir, echo=typer.echo)
    except MirrorbotError as exc:
        raise _fail(str(exc), EXIT_FAILED) from None
    raise typer.Exit(code)


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


def _context(config: Path) -> JobContext:
    from mirrorbot.jobs.context import open_context

    return _opened(config, open_context)


def _opened(config: Path, opener: Callable[[Path], _T]) -> _T:
    """``opener(config)``; a config, file or state repository problem is a usage error (2)."""
    try:
        return opener(config)
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    except FileNotFoundError:
        raise _fail(f"{config}: no such config file", EXIT_USAGE) from None
    except MirrorbotError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None


@contextmanager
def _exit_codes() -> Iterator[None]:
    """Config errors are usage errors (2); every other mirrorbot error is a failed run (1)."""
    try:
        yield
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    except MirrorbotError as exc:
        raise _fail(str(exc), EXIT_FAILED) from None


def _finish(outcome: SyncOutcome) -> NoReturn:
    _show(outcome.report)
    if outcome.fragment:
        typer.echo(f"wrote {outcome.fragment}")
    if outcome.commit:
        typer.echo(f"committed {outcome.commit[:12]}" + (" and pushed" if outcome.pushed else ""))
    raise typer.Exit(outcome.report.exit_code)


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    index, sep, count = value.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not 1 <= int(index) <= int(count):
        raise _fail(f"--shard {value!r}: expected I/N with 1 <= I <= N", EXIT_USAGE)
    return int(index), int(count)


def _show(report: SyncReport) -> None:
    from mirrorbot.integrations.github.actions import write_step_summary
    from mirrorbot.jobs.report import render_plain, render_rich, summarise

    summary = summarise(report)
    if sys.stdout.isatty():
        render_rich(summary)
    else:
        typer.echo(render_plain(summary), nl=False)
    write_step_summary(summary)


def _parse_budget(value: str | None) -> float | None:
    if value is None:
        return None
    from mirrorbot.jobs.timebudget import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _fail(f"--time-budget {exc}", EXIT_USAGE) from None


def _parse_time(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(
            f"--run-time {value!r}: expected an ISO 8601 time such as 2026-11-23T03:04:05Z",
            EXIT_USAGE,
        ) from None
    if moment.tzinfo is None:
        raise _fail(f"--run-time {value!r}: give a time zone (Z for UTC)", EXIT_USAGE)
    return moment


def _parse_images(values: list[str] | None) -> tuple[Reference, ...]:
    try:
        return tuple(parse_reference(value, default_tag=None) for value in values or ())
    except InvalidReferenceError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None


def _read_assignments(path: Path | None) -> dict[str, int]:
    """The ``assignments`` of a ``plan --shards N --json`` document."""
    if path is None:
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        assignments = document["assignments"]
        return {str(key): int(value) for key, value in assignments.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _fail(
            f"--assignments {path}: not a plan --shards document ({exc})", EXIT_USAGE
        ) from None


def _split_list(values: list[str] | None) -> list[str]:
    return [item.strip() for value in values or () for item in value.split(",") if item.strip()]


def _syncer_platforms(systems: list[str] | None, architectures: list[str] | None) -> PlatformFilter:
    """image-syncer's ``--os``/``--arch`` (``arm:v7`` carries a variant).

    An OS version (``windows:10.0.17763.1999``) is refused: mirrorbot does not compare them,
    and a filter that silently never matches would skip every image.
    """
    oses = _split_list(systems)
    for value in oses:
        if ":" in value or "/" in value:
            raise _fail(
                f"--os {value}: OS versions are not supported; give the OS alone "
                f"({value.replace('/', ':').partition(':')[0]})",
                EXIT_USAGE,
            )
    return PlatformFilter.from_lists(oses, _split_list(architectures))


def _sync_rules(
    config: Path,
    images: Path,
    auth: Path | None,
    *,
    default: tuple[str | None, str | None],
    platforms: PlatformFilter,
    force: bool,
    proc: int,
    retries: int,
    dry_run: bool,
    push: bool,
) -> None:
    """``sync --images``: image-syncer rule files, with mirrorbot's state and CHANGELOG."""
    from mirrorbot.jobs.context import open_rules_context, run_rules_sync
    from mirrorbot.jobs.rules import RuleOptions

    registry, namespace = default
    defaults = (registry, namespace) if registry and namespace else None
    try:
        context = open_rules_context(config, images, auth, default=defaults)
    except MirrorbotError as exc:  # as for sync (_context): what cannot be opened is config
        raise _fail(str(exc), EXIT_USAGE) from None
    with _exit_codes():
        options = RuleOptions(
            force=force,
            platforms=platforms,
            concurrency=proc,
            retry_rounds=retries,
            mutable=context.mutable,
        )
        outcome = run_rules_sync(context, options, push=push, dry_run=dry_run)
    _finish(outcome)


ImagesOption = Annotated[
    Path,
    typer.Option("--images", help="image-syncer rules file (YAML or JSON)."),
]
AuthOption = Annotated[
    Path | None, typer.Option("--auth", help="image-syncer auth file (YAML or JSON).")
]
DefaultRegistryOption = Annotated[
    str | None,
    typer.Option(
        "--default-registry",
        "--registry",  # image-syncer's spelling
        envvar="DEFAULT_REGISTRY",
        help="For empty rule destinations.",
    ),
]
DefaultNamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--default-namespace",
        "--namespace",  # image-syncer's spelling
        envvar="DEFAULT_NAMESPACE",
        help="For empty rule destinations.",
    ),
]
OsOption = Annotated[
    list[str] | None,
    typer.Option("--os", help="Keep these OSes (image-syncer --os); repeat or comma-separate."),
]
ArchOption = Annotated[
    list[str] | None,
    typer.Option("--arch", help="Keep these architectures (image-syncer --arch)."),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Copy even what the target already holds.")
]
ProcOption = Annotated[int, typer.Option("--proc", min=1, max=64, help="Images copied at once.")]
RetriesOption = Annotated[
    int, typer.Option("--retries", min=0, max=10, help="Extra rounds for failed images.")
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Plan only; write nothing.")]
NoPushOption = Annotated[bool, typer.Option("--no-push", help="Commit, but do not push.")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")]


@app.command()
def rules(
    images: ImagesOption,
    auth: AuthOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    default_registry: DefaultRegistryOption = None,
    default_namespace: DefaultNamespaceOption = None,
    os_filter: OsOption = None,
    arch_filter: ArchOption = None,
    force: ForceOption = False,
    proc: ProcOption = 5,
    retries: RetriesOption = 2,
    dry_run: DryRunOption = False,
    no_push: NoPushOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Run image-syncer rule files, with mirrorbot's state, CHANGELOG and git.

    A mirrorbot.yaml is optional here: when --config exists, its state, network and
    registries settings apply.
    """
    configure_logging(verbose)
    _sync_rules(
        config,
        images,
        auth,
        default=(default_registry, default_namespace),
        platforms=_syncer_platforms(os_filter, arch_filter),
        force=force,
        proc=proc,
        retries=retries,
        dry_run=dry_run,
        push=not no_push,
    )


_RULES_ONLY = "applies to image-syncer rules only (mirrorbot rules)"


@app.command()
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
    from mirrorbot.jobs.context import run_sync
    from mirrorbot.jobs.progress import progress_for
    from mirrorbot.jobs.sync import SyncOptions

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
        raise _fail("--repair copies: not with --dry-run, --shard or --output", EXIT_USAGE)
    if images_file is not None:
        for flag, value in sync_only.items():
            if value:
                raise _fail(f"{flag} does not apply to image-syncer rules", EXIT_USAGE)
        typer.echo(
            "warning: `sync --images` is deprecated; use `mirrorbot rules --images`", err=True
        )
        _sync_rules(
            config,
            images_file,
            auth_file,
            default=(default_registry, default_namespace),
            platforms=_syncer_platforms(os_filter, arch_filter),
            force=bool(force),
            proc=5 if proc is None else proc,
            retries=2 if retries is None else retries,
            dry_run=dry_run,
            push=not no_push,
        )
    for flag, given in rules_only.items():
        if given is not None and given != []:
            raise _fail(f"{flag} {_RULES_ONLY}", EXIT_USAGE)
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
    context = _context(config)
    progress = None if dry_run else progress_for()
    with _exit_codes():
        outcome = run_sync(
            context, options, push=not no_push, now=moment, output=output, progress=progress
        )
    _finish(outcome)


@app.command()
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
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")] = False,
) -> None:
    """What sync would copy, without writing anything."""
    from mirrorbot.jobs.context import run_sync, shard_matrix
    from mirrorbot.jobs.sync import SyncOptions

    configure_logging(verbose)
    context = _context(config)
    options = SyncOptions(dry_run=True, namespaces=tuple(namespace or ()))
    with _exit_codes():
        outcome = run_sync(context, options, push=False)
    report = outcome.report
    document = _plan_json(report)
    if shards is not None:
        document.update(shard_matrix(report, shards))
    if as_json:
        _json(document)
    else:
        _show(report)
        if shards is not None:
            typer.echo(f"shard loads (tags to copy): {document['loads']}")
    raise typer.Exit(report.exit_code)


@app.command()
def publish(
    directories: Annotated[
        list[Path], typer.Argument(help="Directories holding fragment-*.json files.")
    ],
    config: ConfigOption = DEFAULT_CONFIG,
    no_push: Annotated[bool, typer.Option("--no-push", help="Commit, but do not push.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")] = False,
) -> None:
    """Merge shard fragments into state, one CHANGELOG section and the index; commit once."""
    from mirrorbot.jobs.context import run_publish

    configure_logging(verbose)
    context = _context(config)
    try:
        outcome = run_publish(context, directories, push=not no_push)
    except MirrorbotError as exc:
        raise _fail(str(exc), EXIT_FAILED) from None
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
    if outcome.commit:
        typer.echo(f"committed {outcome.commit[:12]}" + (" and pushed" if outcome.pushed else ""))
    raise typer.Exit(outcome.exit_code)


def _plan_json(report: SyncReport) -> dict[str, object]:
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


@app.command()
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
    no_push: Annotated[bool, typer.Option("--no-push", help="Commit, but do not push.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")] = False,
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
    from mirrorbot.errors import StateError
    from mirrorbot.jobs.context import open_state, run_rules_verify, run_verify
    from mirrorbot.jobs.verify import describe_repair

    configure_logging(verbose)
    if no_push and not repair:
        raise _fail("--no-push goes with --repair", EXIT_USAGE)
    syncer_repo = not config.exists()
    if syncer_repo and repair:
        raise _fail(
            "--repair needs a mirrorbot.yaml; with image-syncer files run "
            "`mirrorbot rules --force` to copy again",
            EXIT_USAGE,
        )
    if auth is not None and not syncer_repo:
        raise _fail("--auth is for repositories without a mirrorbot.yaml", EXIT_USAGE)
    try:
        if syncer_repo:
            store = _opened(config, open_state)  # state/ of the git repository here
            with _exit_codes():
                outcome = run_rules_verify(store, auth, deep=deep)
        else:
            context = _context(config)
            with _exit_codes():
                outcome = run_verify(context, deep=deep, repair=repair, push=not no_push)
    except StateError as exc:  # a state file mirrorbot did not write: as before, a usage error
        raise _fail(str(exc), EXIT_USAGE) from None
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
    if outcome.commit:
        typer.echo(f"committed {outcome.commit[:12]}" + (" and pushed" if outcome.pushed else ""))
    raise typer.Exit(outcome.exit_code)


@app.command()
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
    import json

    from mirrorbot.jobs.context import open_state
    from mirrorbot.jobs.find import find as search
    from mirrorbot.jobs.find import matches_to_json

    store = _opened(config, open_state)  # state files only: no credentials, no registry
    with _exit_codes():  # a refused or corrupt state file: one line, exit 1
        matches = search(store.all(), query)
    if as_json:
        typer.echo(redact(json.dumps(matches_to_json(matches), indent=2, ensure_ascii=False)))
        raise typer.Exit(0 if matches else EXIT_FAILED)
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


@app.command()
def notify(
    config: ConfigOption = DEFAULT_CONFIG,
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to serve on.")
    ] = "127.0.0.1:8088",
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            help="The notifying registry as the config names it (default: from each event).",
        ),
    ] = None,
    quiet: Annotated[
        float, typer.Option("--quiet", min=0.0, help="Seconds without events before a batch syncs.")
    ] = 3.0,
    dispatch: Annotated[
        str | None,
        typer.Option(
            "--dispatch", help="OWNER/REPO: send a repository_dispatch instead of syncing here."
        ),
    ] = None,
    github_api: Annotated[
        str, typer.Option("--github-api", help="GitHub API base URL.")
    ] = "https://api.github.com",
    no_push: Annotated[bool, typer.Option("--no-push", help="Commit, but do not push.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")] = False,
) -> None:
    """Mirror on push: receive registry notifications and sync what was pushed.

    The shared secret comes from $MIRRORBOT_NOTIFY_SECRET and must arrive as
    `Authorization: Bearer <secret>` (see the README for the registry side).
    """
    import os

    import uvicorn

    from mirrorbot.integrations.github.dispatch import github_dispatcher
    from mirrorbot.jobs.notify import NotifyApp, PushSync, Runner

    redactor = configure_logging(verbose)
    secret = os.environ.get("MIRRORBOT_NOTIFY_SECRET", "")
    if not secret:
        raise _fail("set MIRRORBOT_NOTIFY_SECRET to the secret the registry sends", EXIT_USAGE)
    redactor.add([secret])
    host, port = _parse_listen(listen)
    context = _context(config)
    if dispatch is not None:
        token = os.environ.get("GITHUB_TOKEN", "")
        if not token:
            raise _fail("--dispatch needs GITHUB_TOKEN", EXIT_USAGE)
        redactor.add([token])
        runner: Runner = github_dispatcher(github_api, dispatch, token)
    else:

        def synced(references: tuple[Reference, ...], outcome: SyncOutcome) -> None:
            typer.echo(
                f"synced {len(references)} pushed references: "
                f"{len(outcome.report.changes)} recorded, {len(outcome.report.failures)} failed"
            )

        runner = PushSync(context, push=not no_push, done=synced)

    app_instance = NotifyApp(
        context.config.namespace_plans(), secret, runner, registry=registry, quiet=quiet
    )
    listening = _listening_socket(listen, host, port)
    shown = f"[{host}]" if ":" in host else host or "0.0.0.0"  # noqa: S104 - what we print
    typer.echo(f"listening on http://{shown}:{listening.getsockname()[1]}/events")
    server = uvicorn.Server(
        uvicorn.Config(app_instance.app, log_level="info" if verbose else "warning")
    )
    server.run(sockets=[listening])


def _parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` (every interface) or ``[IPv6]:PORT``."""
    host, sep, port_text = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise _fail(f"--listen {listen!r}: expected HOST:PORT with a port 0-65535", EXIT_USAGE)
    return host, int(port_text)


def _listening_socket(listen: str, host: str, port: int) -> socket.socket:
    """Bind before serving, so a port in use or a bad address is one line, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
        listening.listen(128)
    except OSError as exc:
        listening.close()
        raise _fail(
            f"--listen {listen}: cannot listen there: {exc.strerror or exc}", EXIT_FAILED
        ) from None
    return listening


@app.command()
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
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")] = False,
) -> None:
    """Check a namespace request from an issue, add it to the config, print a Markdown reply.

    Exit 0 accepted, 1 rejected (the reason is in the reply), 2 usage or config error.
    With $GITHUB_OUTPUT set, also writes accepted=, namespace=, open_pull_request= there.
    """
    from mirrorbot.integrations.github.actions import write_outputs
    from mirrorbot.integrations.github.request import handle_request, request_outputs

    configure_logging(verbose)
    try:
        outcome = handle_request(issue_file, config, allow=allow or (), dry_run=dry_run)
    except OSError as exc:
        raise _fail(f"{issue_file}: {exc.strerror or exc}", EXIT_USAGE) from None
    except MirrorbotError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    typer.echo(redact(outcome.reply), nl=False)
    write_outputs(request_outputs(outcome))
    raise typer.Exit(EXIT_OK if outcome.accepted else EXIT_FAILED)


def main() -> None:
    guard_standard_streams()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
