"""What the strategies share: name checks, warnings, bounded tag listing, assembly."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence

import httpx

from mirrorbot.engine.backends.readable import ReadableRegistry
from mirrorbot.engine.concurrency import bounded_map
from mirrorbot.engine.sources.base import ListedRepository, ListedTag, Listing
from mirrorbot.errors import (
    EmptyListingError,
    InvalidReferenceError,
    ListingError,
    ListingTooLargeError,
    MirrorbotError,
)
from mirrorbot.reference import validate_repository, validate_tag

log = logging.getLogger("mirrorbot.sources")

# Ask for big pages; registries that cap ``n`` are handled by the client's fallback.
TAG_PAGE_SIZE = 1000
CATALOG_PAGE_SIZE = 1000
# What a per-repository failure may be: a registry's answer or the network, never a bug.
REPOSITORY_FAILURES = (MirrorbotError, httpx.HTTPError)
_SHOWN = 80
# Caps on one namespace: a hostile upstream must not grow memory without end. The biggest
# real ones (gcr.io/google-containers, registry.k8s.io) hold thousands of repositories and
# well under a million tags.
MAX_REPOSITORIES = 100_000
MAX_NAMESPACE_TAGS = 1_000_000
# Skipped entries reported one by one per kind; past that, one line counts the rest.
DETAILED = 10


def show(value: str) -> str:
    """A name from upstream, fit for a message: escaped, and cut when it is absurdly long."""
    if len(value) <= _SHOWN:
        return repr(value)
    return f"{value[:_SHOWN]!r}… ({len(value)} characters)"


def join(namespace: str, below: str) -> str:
    """``namespace/below``; either may be empty (a whole registry, the namespace itself)."""
    return f"{namespace}/{below}" if namespace and below else namespace or below


class Warnings:
    """Collects the human-readable ``skipped`` entries, logging each once.

    Bounded per ``kind``: the first :data:`DETAILED` (in name order, so the same
    upstream gives the same report) are kept one by one, the rest are counted
    in one summary line. 500,000 invalid tags are 11 lines, not 500,000.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._kept: dict[str, list[str]] = {}
        self._counts: Counter[str] = Counter()
        self._summaries: tuple[str, ...] | None = None

    def add(self, message: str, kind: str = "entries") -> None:
        text = f"{self.source}: {message}"
        self._counts[kind] += 1
        if self._counts[kind] <= DETAILED:
            log.warning("%s", text)
        kept = self._kept.setdefault(kind, [])
        kept.append(text)
        if len(kept) > 4 * DETAILED:
            kept[:] = sorted(set(kept))[:DETAILED]

    def result(self) -> tuple[str, ...]:
        # Tags are listed concurrently: sort so the same upstream gives the same report.
        shown: list[str] = []
        summaries: list[str] = []
        for kind, kept in self._kept.items():
            if self._counts[kind] <= DETAILED:
                shown.extend(kept)
                continue
            detailed = sorted(set(kept))[:DETAILED]
            shown.extend(detailed)
            more = self._counts[kind] - len(detailed)
            summaries.append(
                f"{self.source}: and {more} more {kind} skipped (the first {DETAILED} are shown)"
            )
        if self._summaries is None:
            self._summaries = tuple(summaries)
            for summary in summaries:
                log.warning("%s", summary)
        return tuple(sorted(dict.fromkeys(shown + summaries)))


def checked_repository(namespace: str, below: str, warnings: Warnings) -> str | None:
    """``below`` when ``namespace/below`` is a valid repository name, else None and a warning."""
    try:
        validate_repository(f"{namespace}/{below}" if namespace else below)
    except InvalidReferenceError as error:
        warnings.add(f"skipped repository {show(below)}: {error.reason}", "invalid repositories")
        return None
    return below


def checked_tags(
    repository: str, tags: Iterable[ListedTag], warnings: Warnings
) -> tuple[ListedTag, ...]:
    """Valid tags only, one per name, sorted by name."""
    kept: dict[str, ListedTag] = {}
    refused: set[str] = set()
    for tag in tags:
        try:
            validate_tag(tag.name)
        except InvalidReferenceError as error:
            if tag.name not in refused:
                refused.add(tag.name)
                warnings.add(
                    f"skipped tag {show(tag.name)} of {show(repository)}: {error.reason}",
                    "invalid tags",
                )
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
    More than :data:`MAX_REPOSITORIES` repositories or :data:`MAX_NAMESPACE_TAGS`
    tags fail the whole listing (:class:`ListingError`): a truncated listing
    would look complete.
    """
    unique = list(dict.fromkeys(repositories))
    check_repository_count(client.registry, namespace, len(unique), warnings.source)
    budget = TagBudget(client.registry, namespace)

    async def one(below: str) -> ListedRepository | None:
        if budget.exceeded:
            return None
        try:
            names = await client.tags(join(namespace, below), TAG_PAGE_SIZE)
        except REPOSITORY_FAILURES as error:
            warnings.add(
                f"skipped repository {show(below)}: tags not listed: {error}",
                "repositories that failed to list",
            )
            return None
        tags = checked_tags(below, (ListedTag(name) for name in names), warnings)
        if not tags:
            if report_empty:
                warnings.add(
                    f"skipped repository {show(below)}: not found upstream, or no tags",
                    "repositories without tags",
                )
            return None
        return ListedRepository(below, tags) if budget.take(len(tags)) else None

    listed = await bounded_map(one, unique, concurrency)
    budget.check(warnings.source)
    return [found for found in listed if found is not None]


def check_repository_count(registry: str, namespace: str, count: int, source: str) -> None:
    """Refuse a namespace with more than :data:`MAX_REPOSITORIES` repositories."""
    if count > MAX_REPOSITORIES:
        cause = ListingTooLargeError(registry, namespace or None, "repositories", MAX_REPOSITORIES)
        raise ListingError(source, cause)


class TagBudget:
    """Tags one namespace may list in total; concurrent listers stop once it is spent."""

    def __init__(self, registry: str, namespace: str, limit: int = MAX_NAMESPACE_TAGS) -> None:
        self.registry = registry
        self.namespace = namespace
        self.limit = limit
        self.taken = 0
        self.exceeded = False

    def take(self, count: int) -> bool:
        """Count ``count`` tags; False (and nothing kept) once past the limit."""
        self.taken += count
        self.exceeded = self.exceeded or self.taken > self.limit
        return not self.exceeded

    def check(self, source: str) -> None:
        """Raise :class:`ListingError` when the namespace went past the limit."""
        if self.exceeded:
            cause = ListingTooLargeError(
                self.registry, self.namespace or None, "tags in the namespace", self.limit
            )
            raise ListingError(source, cause)


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
