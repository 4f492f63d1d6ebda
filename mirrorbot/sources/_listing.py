"""What the strategies share: name checks, warnings, bounded tag listing, assembly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

import httpx

from mirrorbot.reference import InvalidReferenceError, validate_repository, validate_tag
from mirrorbot.registry.errors import MirrorbotError
from mirrorbot.registry.readable import ReadableRegistry
from mirrorbot.sources.base import EmptyListingError, ListedRepository, ListedTag, Listing

log = logging.getLogger("mirrorbot.sources")

# Ask for big pages; registries that cap ``n`` are handled by the client's fallback.
TAG_PAGE_SIZE = 1000
CATALOG_PAGE_SIZE = 1000
# What a per-repository failure may be: a registry's answer or the network, never a bug.
REPOSITORY_FAILURES = (MirrorbotError, httpx.HTTPError)
_SHOWN = 80


def show(value: str) -> str:
    """A name from upstream, fit for a message: escaped, and cut when it is absurdly long."""
    if len(value) <= _SHOWN:
        return repr(value)
    return f"{value[:_SHOWN]!r}… ({len(value)} characters)"


def join(namespace: str, below: str) -> str:
    """``namespace/below``; either may be empty (a whole registry, the namespace itself)."""
    return f"{namespace}/{below}" if namespace and below else namespace or below


class Warnings:
    """Collects the human-readable ``skipped`` entries, logging each once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._messages: list[str] = []

    def add(self, message: str) -> None:
        text = f"{self.source}: {message}"
        log.warning("%s", text)
        self._messages.append(text)

    def result(self) -> tuple[str, ...]:
        # Tags are listed concurrently: sort so the same upstream gives the same report.
        return tuple(sorted(dict.fromkeys(self._messages)))


def checked_repository(namespace: str, below: str, warnings: Warnings) -> str | None:
    """``below`` when ``namespace/below`` is a valid repository name, else None and a warning."""
    try:
        validate_repository(f"{namespace}/{below}" if namespace else below)
    except InvalidReferenceError as error:
        warnings.add(f"skipped repository {show(below)}: {error.reason}")
        return None
    return below


def checked_tags(
    repository: str, tags: Iterable[ListedTag], warnings: Warnings
) -> tuple[ListedTag, ...]:
    """Valid tags only, one per name, sorted by name."""
    kept: dict[str, ListedTag] = {}
    for tag in tags:
        try:
            validate_tag(tag.name)
        except InvalidReferenceError as error:
            warnings.add(f"skipped tag {show(tag.name)} of {show(repository)}: {error.reason}")
            continue
        kept.setdefault(tag.name, tag)
    return tuple(kept[name] for name in sorted(kept))


async def list_tags(
    client: ReadableRegistry,
    namespace: str,
    repositories: Sequence[str],
    *,
    concurrency: int,
    warnings: Warnings,
    report_empty: bool = False,
) -> list[ListedRepository]:
    """``tags/list`` of each repository below ``namespace``, at most ``concurrency`` at a time.

    A repository that fails to list is reported in ``warnings`` and left out;
    the others carry on. Repositories without (valid) tags are left out too,
    with a warning only when ``report_empty`` (an explicitly requested image).
    """
    semaphore = asyncio.Semaphore(concurrency)

    async def one(below: str) -> ListedRepository | None:
        async with semaphore:
            try:
                names = await client.tags(join(namespace, below), TAG_PAGE_SIZE)
            except REPOSITORY_FAILURES as error:
                warnings.add(f"skipped repository {show(below)}: tags not listed: {error}")
                return None
        tags = checked_tags(below, (ListedTag(name) for name in names), warnings)
        if not tags:
            if report_empty:
                warnings.add(f"skipped repository {show(below)}: not found upstream, or no tags")
            return None
        return ListedRepository(below, tags)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(below)) for below in dict.fromkeys(repositories)]
    return [found for task in tasks if (found := task.result()) is not None]


def assemble(source: str, repositories: Iterable[ListedRepository], warnings: Warnings) -> Listing:
    """The sorted :class:`Listing`; :class:`EmptyListingError` when no repository has a tag."""
    by_path = {repository.path: repository for repository in repositories if repository.tags}
    if not by_path:
        raise EmptyListingError(source, warnings.result())
    return Listing(
        source=source,
        repositories=tuple(by_path[path] for path in sorted(by_path)),
        skipped=warnings.result(),
    )
