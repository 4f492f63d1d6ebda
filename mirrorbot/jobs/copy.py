"""``mirrorbot copy``: one reference, plus its cosign signature tags and referrers fallback tag when asked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from mirrorbot.engine.copier import Copier, CopyResult, fallback_tag, signature_tags
from mirrorbot.engine.registry.credentials import CredentialStore
from mirrorbot.engine.registry.media import PlatformFilter
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.reference import Reference

__all__ = ["copy_reference", "run_copy"]


async def copy_reference(
    pool: RegistryPool,
    source: Reference,
    target: Reference,
    *,
    platforms: PlatformFilter | None = None,
    signatures: bool = False,
    force: bool = False,
) -> list[CopyResult]:
    copier = Copier(pool)
    main = await copier.copy(source, target, platforms=platforms, force=force)
    results = [main]
    if signatures:
        source_client = pool.client(source.registry)
        # cosign signs the digest it was given: the source's, even when we filtered platforms.
        for tag in (*signature_tags(main.source_digest), fallback_tag(main.source_digest)):
            if await source_client.manifest_head(source.repository, tag) is None:
                continue
            results.append(
                await copier.copy(source.with_tag(tag), target.with_tag(tag), force=force)
            )
    return results


def run_copy(
    credentials: CredentialStore,
    source: Reference,
    target: Reference,
    *,
    insecure: Iterable[str] = (),
    platforms: PlatformFilter | None = None,
    signatures: bool = False,
    force: bool = False,
) -> list[CopyResult]:
    """``mirrorbot copy``: its own pool (no config file, so the client's defaults) for one run."""

    async def run() -> list[CopyResult]:
        async with RegistryPool(credentials, insecure=insecure) as pool:
            return await copy_reference(
                pool, source, target, platforms=platforms, signatures=signatures, force=force
            )

    return asyncio.run(run())
