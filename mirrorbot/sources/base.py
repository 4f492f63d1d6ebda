"""The one interface every listing strategy implements.

A :class:`Source` turns an upstream namespace into a :class:`Listing`: frozen
values, repositories sorted by path and tags by name, with everything it
refused to return (invalid names, repositories that failed to list) spelled
out in ``skipped``. Only a failure of the top-level listing raises, as
:class:`ListingError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import httpx

from mirrorbot.reference import validate_repository
from mirrorbot.registry.errors import MirrorbotError

if TYPE_CHECKING:
    from mirrorbot.registry.readable import ReadableRegistry

__all__ = [
    "STRATEGIES",
    "EmptyListingError",
    "ListedRepository",
    "ListedTag",
    "Listing",
    "ListingError",
    "Source",
    "make_source",
]

STRATEGIES = ("catalog", "gcr", "dockerhub", "images", "storage", "quay")


@dataclass(frozen=True, slots=True)
class ListedTag:
    """One tag as the listing gave it; digest, type and time only when the listing carries them."""

    name: str
    digest: str | None = None
    media_type: str | None = None
    uploaded: datetime | None = None


@dataclass(frozen=True, slots=True)
class ListedRepository:
    """A repository below the namespace (``pause``, ``etcd/backup``) and its tags, sorted."""

    path: str
    tags: tuple[ListedTag, ...]


@dataclass(frozen=True, slots=True)
class Listing:
    """What one namespace holds upstream. ``skipped`` says what was left out, and why."""

    source: str
    repositories: tuple[ListedRepository, ...]
    skipped: tuple[str, ...]


class ListingError(MirrorbotError):
    """The top-level listing of a namespace failed: nothing about it can be trusted."""

    def __init__(self, source: str, cause: Exception | str) -> None:
        self.source = source
        self.cause = cause
        super().__init__(f"{source}: listing failed: {cause}")

    @property
    def reason(self) -> str:
        """The message without the leading ``<source>: `` (for reports that name it already)."""
        return str(self).removeprefix(f"{self.source}: ")


class EmptyListingError(ListingError):
    """The namespace listed no repository with a tag: a typo, or a strategy that sees nothing.

    Raised where a listing is assembled, so that sync, plan and request all fail
    the namespace instead of mirroring nothing, forever, with a green run.
    """

    def __init__(self, source: str, skipped: tuple[str, ...] = ()) -> None:
        self.source = source
        self.cause = "lists no repositories"
        self.skipped = skipped  # what the listing refused on the way, if anything
        MirrorbotError.__init__(
            self, f"{source}: lists no repositories: check the name or set `list:`"
        )


class Source(Protocol):
    async def list(self) -> Listing: ...


def source_name(registry: str, path: str) -> str:
    return f"{registry}/{path}" if path else registry


def make_source(
    strategy: str,
    *,
    registry: str,
    path: str,
    client: ReadableRegistry,
    images: Sequence[str] = (),
    hub_api: str = "https://hub.docker.com",
    concurrency: int = 8,
    hub_client: httpx.AsyncClient | None = None,
    quay_api: str | None = None,
    upload_times: bool = False,
) -> Source:
    """The :class:`Source` for ``strategy`` over ``registry/path``.

    ``path`` is the namespace below the registry (``google-containers``; ``""``
    for a whole registry with ``catalog`` or ``images``). ``quay_api`` is Quay's
    API base URL (default: the registry's own); ``hub_client`` is the client for
    a web API (Docker Hub, Quay), made per listing when None. ``upload_times``
    asks a listing for tag upload times it would not read otherwise (Docker Hub's
    ``last_updated``, for ``keep: {by: uploaded}``). Raises ``ValueError``
    for an unknown strategy, an invalid path or a concurrency below 1.
    """
    # Imported here: the strategy modules import this one.
    from mirrorbot.registry.client import RegistryClient
    from mirrorbot.sources.catalog import CatalogSource
    from mirrorbot.sources.dockerhub import DockerHubSource
    from mirrorbot.sources.gcr import GcrSource
    from mirrorbot.sources.images import ImagesSource
    from mirrorbot.sources.quay import QuaySource

    path = path.strip("/")
    if path:
        validate_repository(path)
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    if strategy in ("gcr", "dockerhub", "quay") and not isinstance(client, RegistryClient):
        raise ValueError(f"list: {strategy} needs a registry reachable over HTTP")
    if strategy in ("catalog", "storage"):
        # A storage directory is listed like a catalog: its reader answers the same calls.
        return CatalogSource(registry=registry, path=path, client=client, concurrency=concurrency)
    if strategy == "gcr":
        assert isinstance(client, RegistryClient)
        return GcrSource(registry=registry, path=path, client=client, concurrency=concurrency)
    if strategy == "dockerhub":
        assert isinstance(client, RegistryClient)
        return DockerHubSource(
            registry=registry,
            path=path,
            client=client,
            hub_api=hub_api,
            concurrency=concurrency,
            hub_client=hub_client,
            upload_times=upload_times,
        )
    if strategy == "quay":
        assert isinstance(client, RegistryClient)
        return QuaySource(
            registry=registry,
            path=path,
            client=client,
            api=quay_api,
            concurrency=concurrency,
            api_client=hub_client,
        )
    if strategy == "images":
        return ImagesSource(
            registry=registry, path=path, client=client, images=images, concurrency=concurrency
        )
    raise ValueError(
        f"unknown listing strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}"
    )
