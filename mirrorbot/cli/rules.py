"""``mirrorbot rules``: image-syncer rule files, with mirrorbot's state, CHANGELOG and git.

Also the engine of the deprecated ``sync --images`` spelling (:func:`sync_rules`).
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mirrorbot.cli.exits import EXIT_USAGE, exit_codes, exit_on, fail
from mirrorbot.cli.loading import loading
from mirrorbot.cli.options import (
    DEFAULT_CONFIG,
    ConfigOption,
    DryRunOption,
    NoPushOption,
    VerboseOption,
)
from mirrorbot.cli.render import finish
from mirrorbot.errors import MirrorbotError

if TYPE_CHECKING:
    from mirrorbot.engine.registry.media import PlatformFilter

__all__ = ["rules", "sync_rules", "syncer_platforms"]

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
    from mirrorbot.logs import configure_logging

    configure_logging(verbose)
    sync_rules(
        config,
        images,
        auth,
        default=(default_registry, default_namespace),
        platforms=syncer_platforms(os_filter, arch_filter),
        force=force,
        proc=proc,
        retries=retries,
        dry_run=dry_run,
        push=not no_push,
    )


def sync_rules(
    config: Path,
    images: Path,
    auth: Path | None,
    *,
    default: tuple[str | None, str | None],
    platforms: "PlatformFilter",
    force: bool,
    proc: int,
    retries: int,
    dry_run: bool,
    push: bool,
) -> None:
    """Run the rule files, report, and exit with the run's code."""
    with loading():
        from mirrorbot.jobs.context.imagesyncer import open_rules_context, run_rules_sync
        from mirrorbot.jobs.rules import RuleOptions

    registry, namespace = default
    defaults = (registry, namespace) if registry and namespace else None
    # As for sync (options.job_context): what cannot be opened is config.
    with exit_on(EXIT_USAGE, MirrorbotError):
        context = open_rules_context(config, images, auth, default=defaults)
    with exit_codes():
        options = RuleOptions(
            force=force,
            platforms=platforms,
            concurrency=proc,
            retry_rounds=retries,
            mutable=context.mutable,
        )
        outcome = run_rules_sync(context, options, push=push, dry_run=dry_run)
    finish(outcome)


def _split_list(values: list[str] | None) -> list[str]:
    return [item.strip() for value in values or () for item in value.split(",") if item.strip()]


def syncer_platforms(
    systems: list[str] | None, architectures: list[str] | None
) -> "PlatformFilter":
    """image-syncer's ``--os``/``--arch`` (``arm:v7`` carries a variant).

    An OS version (``windows:10.0.17763.1999``) is refused: mirrorbot does not compare them,
    and a filter that silently never matches would skip every image.
    """
    with loading():
        from mirrorbot.engine.registry.media import PlatformFilter

    oses = _split_list(systems)
    for value in oses:
        if ":" in value or "/" in value:
            raise fail(
                f"--os {value}: OS versions are not supported; give the OS alone "
                f"({value.replace('/', ':').partition(':')[0]})",
                EXIT_USAGE,
            )
    return PlatformFilter.from_lists(oses, _split_list(architectures))
