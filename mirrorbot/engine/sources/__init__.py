"""Listing strategies: what an upstream namespace holds, behind one :class:`Source` interface.

``base`` is the interface; each strategy is a module of its own; the factory that
picks one by name lives here, above them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import httpx

from mirrorbot.engine.backends.readable import ReadableRegistry
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.sources.base import STRATEGIES, ListedRepository, ListedTag, Listing, Source
from mirrorbot.engine.sources.catalog import CatalogSource
from mirrorbot.engine.sources.dockerhub import DockerHubSource
from mirrorbot.engine.sources.gcr import GcrSource
from mirrorbot.engine.sources.images import ImagesSource
from mirrorbot.engine.sources.quay import QuaySource
from mirrorbot.reference import validate_repository

__all__ = [
    "STRATEGIES",
    "ListedRepository",
    "ListedTag",
    "Listing",
    "NamespaceFields",
    "Source",
    "make_source",
    "namespace_source",
]


class NamespaceFields(Protocol):
    """What a configured namespace says about its listing (``config.ResolvedNamespace`` has it)."""

    @property
    def strategy(self) -> str: ...
    @property
    def registry(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def images(self) -> Sequence[str]: ...
    @property
    def hub_api(self) -> str: ...
    @property
    def quay_api(self) -> str | None: ...


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


def namespace_source(
    namespace: NamespaceFields,
    client: ReadableRegistry,
    *,
    hub_client: httpx.AsyncClient | None = None,
    upload_times: bool = False,
) -> Source:
    """The :class:`Source` of a configured namespace: how sync and a request both list it."""
    return make_source(
        namespace.strategy,
        registry=namespace.registry,
        path=namespace.path,
        client=client,
        images=namespace.images,
        hub_api=namespace.hub_api,
        hub_client=hub_client,
        quay_api=namespace.quay_api,
        upload_times=upload_times,
    )
