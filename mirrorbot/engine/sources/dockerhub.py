"""``dockerhub``: the Docker Hub web API lists a namespace; the registry lists tags.

``GET {hub_api}/v2/namespaces/{namespace}/repositories?page_size=100`` pages
through ``results`` by following the absolute ``next`` URL until it is null.
The Hub rate-limits this API: 429 and 5xx are retried through the same
predicate as registry calls, with ``Retry-After`` as the backoff. Anonymous
only: private repositories are not listed.

With ``upload_times`` (``keep: {by: uploaded}``), each repository's tag pages
``GET {hub_api}/v2/namespaces/{namespace}/repositories/{name}/tags?page_size=100``
give every tag its ``last_updated``, carried on :class:`ListedTag` as gcr's
``timeUploadedMs`` is. The tags themselves still come from the registry; a
repository whose tag pages fail keeps its tags without times (one warning).
"""

from __future__ import annotations

import builtins
import dataclasses
from datetime import datetime

import httpx

from mirrorbot.engine.concurrency import bounded_map
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.sources._listing import (
    MAX_REPOSITORIES,
    Warnings,
    show,
)
from mirrorbot.engine.sources._webapi import WebApiSource
from mirrorbot.engine.sources.base import ListedRepository
from mirrorbot.engine.sources.timestamps import parse_timestamp
from mirrorbot.errors import ListingError, ListingTooLargeError, MirrorbotError

__all__ = ["HUB_PAGE_SIZE", "MAX_HUB_TAG_PAGES", "DockerHubSource"]

HUB_PAGE_SIZE = 100
MAX_HUB_PAGES = 10_000
# Tag pages of one repository: 100,000 tags, as many as a registry listing may hold.
MAX_HUB_TAG_PAGES = 1_000


class DockerHubSource(WebApiSource):
    """The repositories of one Hub namespace (user or organisation)."""

    kind = "Docker Hub"
    follow_redirects = True

    def __init__(
        self,
        *,
        registry: str,
        path: str,
        client: RegistryClient,
        hub_api: str = "https://hub.docker.com",
        concurrency: int = 8,
        hub_client: httpx.AsyncClient | None = None,
        upload_times: bool = False,
    ) -> None:
        super().__init__(
            registry=registry,
            path=path,
            client=client,
            api=hub_api,
            concurrency=concurrency,
            api_client=hub_client,
        )
        self.hub_api = self.api
        self.upload_times = upload_times

    async def _names(self, hub: httpx.AsyncClient, warnings: Warnings) -> tuple[str, ...]:
        """Every repository name of the namespace, page after page. Failures are fatal."""
        url: httpx.URL | None = self.hub_api.join(
            f"v2/namespaces/{self.path}/repositories"
        ).copy_merge_params({"page_size": str(HUB_PAGE_SIZE)})
        names: list[str] = []
        seen: set[str] = set()
        while url is not None:
            if str(url) in seen:
                break  # a page that links back to one already served
            if len(seen) >= MAX_HUB_PAGES:
                raise ListingError(self.source, f"more than {MAX_HUB_PAGES} pages")
            seen.add(str(url))
            try:
                page = await self._page(hub, url)
            except MirrorbotError as error:
                raise ListingError(self.source, error) from error
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise ListingError(self.source, f"{url.path}: not a Hub repository page")
            for result in page["results"]:
                name = result.get("name") if isinstance(result, dict) else None
                if not isinstance(name, str):
                    warnings.add("ignored a Hub result without a name")
                    continue
                kind = result.get("repository_type")
                if isinstance(kind, str) and kind != "image":
                    warnings.add(f"skipped repository {show(name)}: a {show(kind)}, not an image")
                    continue
                names.append(name)
            if len(names) > MAX_REPOSITORIES:
                cause = ListingTooLargeError(
                    self.hub_api.host, self.path, "repositories", MAX_REPOSITORIES
                )
                raise ListingError(self.source, cause)
            url = self._next(url, page.get("next"))
        return tuple(names)

    async def _annotate(
        self, api: httpx.AsyncClient, found: builtins.list[ListedRepository], warnings: Warnings
    ) -> builtins.list[ListedRepository]:
        """Each tag's ``last_updated`` from the Hub's tag pages, when ``upload_times``."""
        if not self.upload_times:
            return found

        async def one(repository: ListedRepository) -> ListedRepository:
            try:
                times = await self._tag_times(api, repository.path)
            except MirrorbotError as error:
                warnings.add(
                    f"no upload times for {show(repository.path)}: {error}",
                    "repositories without upload times",
                )
                return repository
            tags = tuple(
                dataclasses.replace(tag, uploaded=times.get(tag.name, tag.uploaded))
                for tag in repository.tags
            )
            return ListedRepository(repository.path, tags)

        return await bounded_map(one, found, limit=self.concurrency)

    async def _tag_times(self, hub: httpx.AsyncClient, name: str) -> dict[str, datetime]:
        """``last_updated`` of every tag of one repository, page after page (bounded)."""
        url: httpx.URL | None = self.hub_api.join(
            f"v2/namespaces/{self.path}/repositories/{name}/tags"
        ).copy_merge_params({"page_size": str(HUB_PAGE_SIZE)})
        times: dict[str, datetime] = {}
        seen: set[str] = set()
        while url is not None and str(url) not in seen:
            if len(seen) >= MAX_HUB_TAG_PAGES:
                raise ListingError(self.source, f"{name}: more than {MAX_HUB_TAG_PAGES} tag pages")
            seen.add(str(url))
            page = await self._page(hub, url)
            results = page.get("results") if isinstance(page, dict) else None
            if not isinstance(results, list):
                raise ListingError(self.source, f"{url.path}: not a Hub tag page")
            for result in results:
                if not isinstance(result, dict) or not isinstance(result.get("name"), str):
                    continue
                when = parse_timestamp(result.get("last_updated"))
                if when is not None:
                    times.setdefault(result["name"], when)
            url = self._next(url, page.get("next"))
        return times

    def _next(self, current: httpx.URL, link: object) -> httpx.URL | None:
        if link is None or link == "":
            return None
        if not isinstance(link, str):
            raise ListingError(self.source, "Hub API 'next' is not a URL")
        try:
            following = current.join(link)
        except httpx.InvalidURL as error:
            raise ListingError(self.source, f"Hub API 'next' is not a URL: {error}") from None
        if (following.scheme, following.netloc) != (self.hub_api.scheme, self.hub_api.netloc):
            # Never let a listing steer us to another host.
            raise ListingError(
                self.source, f"Hub API 'next' leaves {self.hub_api.host}: {show(str(following))}"
            )
        return following
