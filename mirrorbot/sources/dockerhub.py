"""``dockerhub``: the Docker Hub web API lists a namespace; the registry lists tags.

``GET {hub_api}/v2/namespaces/{namespace}/repositories?page_size=100`` pages
through ``results`` by following the absolute ``next`` URL until it is null.
The Hub rate-limits this API: 429 and 5xx are retried through the same
predicate as registry calls, with ``Retry-After`` as the backoff. Anonymous
only: private repositories are not listed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from mirrorbot.registry.bounded import bound_response
from mirrorbot.registry.client import USER_AGENT, RegistryClient
from mirrorbot.registry.errors import (
    DeadlineExceededError,
    ListingTooLargeError,
    MirrorbotError,
    RegistryError,
    registry_error_from_response,
)
from mirrorbot.registry.retry import retrying
from mirrorbot.sources._listing import (
    MAX_REPOSITORIES,
    Warnings,
    assemble,
    checked_repository,
    list_tags,
    show,
)
from mirrorbot.sources.base import Listing, ListingError, source_name

__all__ = ["HUB_PAGE_SIZE", "DockerHubSource"]

HUB_PAGE_SIZE = 100
MAX_HUB_PAGES = 10_000
HUB_TIMEOUT = httpx.Timeout(connect=15.0, read=60.0, write=60.0, pool=60.0)


class DockerHubSource:
    """The repositories of one Hub namespace (user or organisation)."""

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
        self.registry = registry
        self.path = path.strip("/")
        if not self.path or "/" in self.path:
            raise ValueError(f"a Docker Hub namespace is one name, not {path!r}")
        self.client = client
        self.hub_api = httpx.URL(hub_api.rstrip("/") + "/")
        self.concurrency = concurrency
        self.hub_client = hub_client
        self.source = source_name(registry, self.path)

    async def list(self) -> Listing:
        warnings = Warnings(self.source)
        if self.hub_client is not None:
            names = await self._names(self.hub_client, warnings)
        else:
            async with httpx.AsyncClient(
                timeout=HUB_TIMEOUT,
                headers={
                    "User-Agent": USER_AGENT,
                    "Accept": "application/json",
                    "Accept-Encoding": "identity",
                },
                follow_redirects=True,
                event_hooks={"response": [bound_response]},  # bodies capped (1 MiB a page)
            ) as hub:
                names = await self._names(hub, warnings)
        below = [
            checked
            for name in names
            if (checked := checked_repository(self.path, name, warnings)) is not None
        ]
        found = await list_tags(
            self.client, self.path, below, concurrency=self.concurrency, warnings=warnings
        )
        return assemble(self.source, found, warnings)

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

    async def _page(self, hub: httpx.AsyncClient, url: httpx.URL) -> Any:
        """One page: its body capped, its time bounded by the registry client's deadline."""
        seconds = self.client.limits.request_deadline

        async def attempt() -> Any:
            try:
                async with asyncio.timeout(seconds):
                    return await read()
            except TimeoutError:
                raise DeadlineExceededError(self.hub_api.host, self.source, seconds) from None

        async def read() -> Any:
            request = hub.build_request("GET", url, headers={"Accept-Encoding": "identity"})
            response = await hub.send(request, stream=True)
            try:
                await bound_response(response)  # a no-op when the client already installed it
                if response.status_code != 200:
                    raise await registry_error_from_response(response, self.source)
                await response.aread()
            finally:
                await response.aclose()
            try:
                return response.json()
            except (ValueError, RecursionError):
                raise RegistryError(
                    status=200,
                    method="GET",
                    url=str(url.copy_with(query=None)),
                    reference=self.source,
                    body_excerpt="Hub API page is not JSON",
                ) from None

        return await retrying(
            attempt, self.client.retry, registry=self.hub_api.host, reference=self.source
        )

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
