"""Upload times for ``keep: {by: uploaded}`` when the listing has none: the image config's ``created``.

gcr's listing carries ``timeUploadedMs`` and Docker Hub's tag pages
``last_updated``; a plain registry carries nothing. For each repository whose
counted tags (selected by include/exclude, not mutable, not artifacts) have no
time at all, each such tag is resolved with HEAD (free on Docker Hub), its
manifest read through the run's :class:`~mirrorbot.engine.registry.pulls.ManifestCache`
(one GET per digest per run, shared with the copy that follows: a tag kept and
copied costs no second GET), the first platform's manifest for an index, and
the config blob (at most :data:`MAX_CONFIG_SIZE` bytes, verified by digest).

Bounded: at most :data:`MAX_LOOKUPS` tags per namespace (past that, keep orders
by semver and says so); a tag whose time cannot be read ranks below those with
one, and its failures are one warning line per namespace.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mirrorbot.domain.tagorder import is_artifact_tag
from mirrorbot.engine.backends.readable import ReadableRegistry
from mirrorbot.engine.concurrency import bounded_map
from mirrorbot.engine.registry.media import IMAGE_CONFIG_TYPES, IMAGE_TYPES, Descriptor, Manifest
from mirrorbot.engine.registry.pulls import ManifestCache
from mirrorbot.engine.sources.base import ListedRepository, ListedTag, Listing
from mirrorbot.engine.sources.timestamps import parse_timestamp
from mirrorbot.errors import MirrorbotError

__all__ = ["MAX_CONFIG_SIZE", "MAX_LOOKUPS", "CreatedTimes", "with_created_times"]

MAX_CONFIG_SIZE = 1024 * 1024  # as the copier reads configs for platforms
MAX_LOOKUPS = 5_000
_CONCURRENCY = 8
log = logging.getLogger("mirrorbot.keep")


@dataclass(slots=True)
class CreatedTimes:
    """A listing with ``created`` as upload times, and what reading them cost."""

    listing: Listing
    heads: int = 0
    manifest_gets: int = 0  # cache misses only: the pulls this lookup added to the run
    config_gets: int = 0
    failed: list[str] = field(default_factory=list)
    too_many: bool = False

    def summary(self) -> str | None:
        """One line for the log when anything was read."""
        if not (self.heads or self.manifest_gets or self.config_gets):
            return None
        return (
            f"{self.listing.source}: upload times from image configs' created "
            f"({self.heads} HEADs, {self.manifest_gets} manifest GETs, "
            f"{self.config_gets} config GETs)"
        )

    def warnings(self) -> list[str]:
        """At most one line each: too many tags to look up, tags whose time is unknown."""
        found: list[str] = []
        source = self.listing.source
        if self.too_many:
            found.append(
                f"{source}: keep by uploaded: more than {MAX_LOOKUPS} tags without an upload "
                "time, their configs not read"
            )
        if self.failed:
            first = sorted(self.failed)[0]
            found.append(
                f"{source}: keep by uploaded: no created time for {len(self.failed)} tags, "
                f"ranked last (first: {first})"
            )
        return found


def _counted(repository: ListedRepository, wanted: Callable[[str], bool]) -> list[ListedTag]:
    return [t for t in repository.tags if not is_artifact_tag(t.name) and wanted(t.name)]


class _Lookup:
    def __init__(
        self, reader: ReadableRegistry, cache: ManifestCache, result: CreatedTimes
    ) -> None:
        self.reader = reader
        self.cache = cache
        self.result = result
        self.slots = asyncio.Semaphore(_CONCURRENCY)
        self.by_config: dict[str, asyncio.Task[datetime | None]] = {}

    async def manifest(self, repository: str, digest: str) -> Manifest:
        async def fetch() -> Manifest:
            self.result.manifest_gets += 1
            return await self.reader.manifest_get(repository, digest)

        return await self.cache.get(self.reader.registry, digest, fetch)

    async def created(self, repository: str, tag: ListedTag) -> datetime | None:
        async with self.slots:
            digest = tag.digest
            if digest is None:
                self.result.heads += 1
                found = await self.reader.manifest_head(repository, tag.name)
                if found is None:
                    return None
                digest = found.digest
            manifest = await self.manifest(repository, digest)
            if manifest.is_index:
                child = _first_platform(manifest.children)
                if child is None:
                    return None
                manifest = await self.manifest(repository, child.digest)
            config = manifest.config
            if (
                config is None
                or config.media_type not in IMAGE_CONFIG_TYPES
                or config.size > MAX_CONFIG_SIZE
            ):
                return None
        task = self.by_config.get(config.digest)
        if task is None:  # tags sharing an image share one config read
            task = asyncio.ensure_future(self.config_created(repository, config))
            self.by_config[config.digest] = task
        return await task

    async def config_created(self, repository: str, config: Descriptor) -> datetime | None:
        async def read() -> bytes:
            data = bytearray()
            async with self.reader.blob_open(repository, config) as chunks:
                async for chunk in chunks:
                    data += chunk
            return bytes(data)

        async with self.slots:
            self.result.config_gets += 1
            raw = await self.reader.retrying(read, f"{repository} config {config.digest}")
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        return parse_timestamp(document.get("created")) if isinstance(document, dict) else None


def _first_platform(children: tuple[Descriptor, ...]) -> Descriptor | None:
    """The first image of an index that is a platform's, not an attestation or unknown/unknown."""
    for child in children:
        if child.media_type not in IMAGE_TYPES or child.is_reference:
            continue
        if child.platform is not None and child.platform.unknown:
            continue
        return child
    return None


async def with_created_times(
    listing: Listing,
    *,
    namespace: str,
    reader: ReadableRegistry,
    cache: ManifestCache,
    wanted: Callable[[str], bool],
) -> CreatedTimes:
    """``listing`` with ``created`` on the counted tags of repositories that have no time.

    ``namespace`` is the path below the registry (``""`` for a whole registry);
    ``wanted`` says which tags keep counts (selected, not mutable).
    """
    result = CreatedTimes(listing)
    todo: list[tuple[ListedRepository, ListedTag]] = []
    for repository in listing.repositories:
        counted = _counted(repository, wanted)
        if not any(tag.uploaded is not None for tag in counted):
            todo.extend((repository, tag) for tag in counted)
    if not todo:
        return result
    if len(todo) > MAX_LOOKUPS:
        result.too_many = True
        return result
    lookup = _Lookup(reader, cache, result)

    async def one(repository: ListedRepository, tag: ListedTag) -> datetime | None:
        path = f"{namespace}/{repository.path}" if namespace else repository.path
        try:
            return await lookup.created(path, tag)
        except MirrorbotError as exc:
            result.failed.append(f"{repository.path}:{tag.name}: {exc}")
            return None

    try:
        found = await bounded_map(lambda pair: one(*pair), todo)
    finally:
        for task in lookup.by_config.values():
            task.cancel()
    times = {
        (repository.path, tag.name): when
        for (repository, tag), when in zip(todo, found, strict=True)
        if when is not None
    }
    result.listing = dataclasses.replace(
        listing,
        repositories=tuple(
            ListedRepository(
                repository.path,
                tuple(
                    dataclasses.replace(tag, uploaded=times.get((repository.path, tag.name)))
                    if (repository.path, tag.name) in times
                    else tag
                    for tag in repository.tags
                ),
            )
            for repository in listing.repositories
        ),
    )
    if (line := result.summary()) is not None:
        log.info("%s", line)
    return result
