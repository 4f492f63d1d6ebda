"""``mirrorbot copy``: one reference between registries, no config file, no state."""

from typing import TYPE_CHECKING, Annotated

import typer

from mirrorbot.cli.exits import EXIT_FAILED, EXIT_USAGE, exit_on
from mirrorbot.cli.loading import loading
from mirrorbot.cli.options import VerboseOption
from mirrorbot.cli.render import echo_json
from mirrorbot.errors import CredentialError, InvalidReferenceError, MirrorbotError

if TYPE_CHECKING:
    from mirrorbot.engine.copier import CopyResult

__all__ = ["copy"]


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
            help="Also copy cosign sha256-<hex>.sig/.att/.sbom tags and the referrers tag sha256-<hex>.",
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
    verbose: VerboseOption = False,
) -> None:
    """Copy one image (every platform, attestations included) between registries."""
    with loading():
        from mirrorbot.engine.registry.credentials import CredentialStore, parse_user_password
        from mirrorbot.engine.registry.media import PlatformFilter
        from mirrorbot.jobs.copy import run_copy
        from mirrorbot.logs import configure_logging
        from mirrorbot.reference import parse_reference

    redactor = configure_logging(verbose)
    with exit_on(EXIT_USAGE, InvalidReferenceError, CredentialError, ValueError):
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
    with exit_on(EXIT_FAILED, MirrorbotError):
        try:
            results = run_copy(
                store,
                src,
                dst,
                insecure=insecure or (),
                platforms=platforms,
                signatures=signatures,
                force=force,
            )
        except MirrorbotError:
            redactor.add(store.secrets())  # tokens fetched during the run, before the line
            raise
    if as_json:
        echo_json([_result_json(r) for r in results])
    else:
        for result in results:
            typer.echo(_describe(result))


def _describe(result: "CopyResult") -> str:
    from mirrorbot.jobs.progress import format_bytes

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


def _result_json(result: "CopyResult") -> dict[str, object]:
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
