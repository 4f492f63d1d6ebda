"""``gcr``: gcr.io / Artifact Registry's ``tags/list`` extension.

``GET /v2/<path>/tags/list`` answers with the path's own tags, its ``child``
path segments and a ``manifest`` map from digest to ``{"tag": [...],
"mediaType": ..., "timeUploadedMs": ...}``. Walking ``child`` recursively
finds every repository below a namespace, nested ones included, and the map
gives each tag's digest without a single manifest request. Numbers are strings
on gcr.io and integers on Artifact Registry; untagged digests (``tag: []``)
are ignored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mirrorbot.engine.registry.auth import pull_scope
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.sources._listing import (
    MAX_REPOSITORIES,
    REPOSITORY_FAILURES,
    TagBudget,
    Warnings,
    assemble,
    checked_repository,
    checked_tags,
    join,
    show,
)
from mirrorbot.engine.sources.base import ListedRepository, ListedTag, Listing
from mirrorbot.errors import (
    InvalidReferenceError,
    ListingError,
    ListingTooLargeError,
    MirrorbotError,
)
from mirrorbot.reference import upstream_name, validate_digest

__all__ = ["GcrSource", "parse_upload_time"]

# A hostile or broken listing could describe an endless tree; real namespaces are far smaller.
MAX_PATHS = MAX_REPOSITORIES
_MAX_MILLIS_DIGITS = 17


def parse_upload_time(value: object) -> datetime | None:
    """``timeUploadedMs`` as a UTC datetime: a string on gcr.io, an integer on Artifact Registry."""
    millis: int
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        millis = value
    elif (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and len(value) <= _MAX_MILLIS_DIGITS
    ):
        millis = int(value)
    else:
        return None
    if millis <= 0:
        return None  # gcr writes "0" for "unknown"
    try:
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


class GcrSource:
    """Every repository below ``path``, found by walking ``child``, with digests from the map."""

    def __init__(
        self, *, registry: str, path: str, client: RegistryClient, concurrency: int = 8
    ) -> None:
        self.registry = registry
        self.path = path.strip("/")
        if not self.path:
            raise ValueError("the gcr listing needs a namespace path, e.g. gcr.io/<project>")
        self.client = client
        self.concurrency = concurrency
        self.source = upstream_name(registry, self.path)

    async def list(self) -> Listing:
        return await _Walk(self).run()


class _Walk:
    """One listing run: shared state of the concurrent walk down ``child``."""

    def __init__(self, source: GcrSource) -> None:
        self.source = source
        self.warnings = Warnings(source.source)
        self.semaphore = asyncio.Semaphore(source.concurrency)
        self.found: list[ListedRepository] = []
        self.visited: set[str] = {""}
        self.too_many_paths = False
        self.budget = TagBudget(source.registry, source.path)

    async def run(self) -> Listing:
        try:
            root = await self._fetch("")
        except MirrorbotError as error:
            raise ListingError(self.source.source, error) from error
        if not isinstance(root, dict):
            raise ListingError(self.source.source, "tags/list did not answer with a JSON object")
        async with asyncio.TaskGroup() as group:
            self._visit("", root, group)
        if self.too_many_paths:
            cause = ListingTooLargeError(
                self.source.registry, self.source.path, "paths below the namespace", MAX_PATHS
            )
            raise ListingError(self.source.source, cause)
        self.budget.check(self.source.source)
        return assemble(self.source.source, self.found, self.warnings)

    async def _fetch(self, below: str) -> Any:
        repository = join(self.source.path, below)
        async with self.semaphore:
            document, _ = await self.source.client.get_json(
                f"/v2/{repository}/tags/list",
                scopes=(pull_scope(repository),),
                reference=f"{self.source.registry}/{repository}",
            )
        return document

    async def _descend(self, below: str, group: asyncio.TaskGroup) -> None:
        if self.too_many_paths or self.budget.exceeded:
            return  # the listing fails as a whole: stop asking
        try:
            document = await self._fetch(below)
        except REPOSITORY_FAILURES as error:
            self.warnings.add(
                f"skipped {show(below)} and anything below it: {error}", "paths that failed to list"
            )
            return
        if not isinstance(document, dict):
            self.warnings.add(f"skipped {show(below)}: tags/list is not a JSON object")
            return
        self._visit(below, document, group)

    def _visit(self, below: str, document: Mapping[str, Any], group: asyncio.TaskGroup) -> None:
        tags = self._tags(below, document)
        if below and tags and self.budget.take(len(tags)):
            self.found.append(ListedRepository(below, tags))
        elif tags:
            self.warnings.add(
                "the namespace itself has tags: only repositories below it are listed"
            )
        children = document.get("child")
        if children is None:
            return
        if not isinstance(children, list):
            self.warnings.add(f"ignored the 'child' of {show(below)}: not a list")
            return
        for child in children:
            if not isinstance(child, str):
                self.warnings.add(f"ignored a child of {show(below)}: not a string")
                continue
            path = f"{below}/{child}" if below else child  # an empty child stays invalid
            if checked_repository(self.source.path, path, self.warnings) is None:
                continue
            if path in self.visited:
                continue
            if len(self.visited) > MAX_PATHS:
                self.too_many_paths = True  # fails the listing: a partial tree looks complete
                return
            self.visited.add(path)
            group.create_task(self._descend(path, group))

    def _tags(self, below: str, document: Mapping[str, Any]) -> tuple[ListedTag, ...]:
        """The union of ``tags`` and the tags of the ``manifest`` map, valid ones only."""
        where = show(below) if below else "the namespace"
        listed: dict[str, ListedTag] = {}
        claimed: dict[str, str] = {}
        ambiguous: set[str] = set()
        manifests = document.get("manifest")
        if isinstance(manifests, dict):
            for digest, entry in manifests.items():
                if not isinstance(entry, dict):
                    continue
                names = entry.get("tag")
                if not isinstance(names, list) or not names:
                    continue  # untagged: children of an index, or dangling
                try:
                    validate_digest(digest)
                except InvalidReferenceError as error:
                    self.warnings.add(f"ignored manifest {show(digest)} of {where}: {error.reason}")
                    continue
                media_type = entry.get("mediaType")
                uploaded = parse_upload_time(entry.get("timeUploadedMs"))
                for name in names:
                    if not isinstance(name, str):
                        continue
                    if claimed.setdefault(name, digest) != digest:
                        ambiguous.add(name)
                    listed[name] = ListedTag(
                        name,
                        digest,
                        media_type if isinstance(media_type, str) and media_type else None,
                        uploaded,
                    )
        elif manifests is not None:
            self.warnings.add(f"ignored the manifest map of {where}: not an object")
        for name in sorted(ambiguous):
            self.warnings.add(
                f"tag {show(name)} of {where} is claimed by several digests: listed without one"
            )
            listed[name] = ListedTag(name)
        names = document.get("tags")
        if isinstance(names, list):
            for name in names:
                if isinstance(name, str):
                    listed.setdefault(name, ListedTag(name))
        return checked_tags(below or self.source.path, listed.values(), self.warnings)
