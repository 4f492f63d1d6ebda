"""``dockerhub``: the Docker Hub web API lists a namespace; the registry lists tags.

``GET {hub_api}/v2/namespaces/{namespace}/repositories?page_size=100`` pages
through ``results`` by following the absolute ``next`` URL until it is null.
The Hub rate-limits this API: 429 and 5xx are retried through the same
predicate as registry calls, with ``Retry-After`` as the backoff. Anonymous
only: private repositories are not listed.
"""

from __future__ import annotations

import httpx

from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.sources._listing import (
    MAX_REPOSITORIES,
    Warnings,
    show,
)
from mirrorbot.engine.sources._webapi import WebApiSource
from mirrorbot.errors import ListingError, ListingTooLargeError, MirrorbotError

__all__ = ["HUB_PAGE_SIZE", "DockerHubSource"]

HUB_PAGE_SIZE = 100
MAX_HUB_PAGES = 10_000


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
