"""The ``mirrorbot`` command line. Thin: parse, call, render.

Exit codes (contract): 0 success, 1 some images failed, 2 usage or config error.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from mirrorbot import __version__
from mirrorbot.copier import CopyResult
from mirrorbot.logs import configure_logging
from mirrorbot.reference import InvalidReferenceError, parse_reference
from mirrorbot.registry.credentials import (
    CredentialError,
    CredentialStore,
    parse_user_password,
)
from mirrorbot.registry.errors import MirrorbotError
from mirrorbot.registry.media import PlatformFilter

__all__ = ["app", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="mirrorbot",
    help="Mirror container images registry to registry, with state kept in git.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


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
        f"{stats.blobs_uploaded} blobs uploaded ({stats.bytes_uploaded} bytes), "
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
    from mirrorbot.copyjob import copy_reference
    from mirrorbot.registry.pool import RegistryPool

    redactor = configure_logging(verbose)
    try:
        src = parse_reference(source)
        dst = parse_reference(destination, default_tag=None)
        if dst.tag is None and dst.digest is None and src.tag is not None:
            dst = dst.with_tag(src.tag)
        platforms = PlatformFilter.parse(platform or [])
        store = CredentialStore()
        if src_creds:
            store.set(src.registry, parse_user_password(src_creds))
        if dest_creds:
            store.set(dst.registry, parse_user_password(dest_creds))
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
        typer.echo(json.dumps([_result_json(r) for r in results], indent=2))
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
