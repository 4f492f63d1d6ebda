"""JSON pages of a registry's web API (Docker Hub, Quay), read as carefully as the registry.

Both strategies list repository names through a web API and tags through the
registry. The pages come from a host nobody here controls: each is read with
``Accept-Encoding: identity``, its body capped by the same response hook as
registry answers (:func:`~mirrorbot.engine.registry.bounded.bound_response`), its
time held to the registry client's ``request_deadline``, and retried through
the registry client's predicate (429 and 5xx, ``Retry-After`` as the backoff).
"""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

import httpx

from mirrorbot.engine.registry.bounded import bound_response
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.registry.responses import redact_url, registry_error_from_response
from mirrorbot.engine.registry.retry import retrying
from mirrorbot.engine.registry.session import USER_AGENT
from mirrorbot.engine.sources._listing import Warnings, assemble, checked_repository, list_tags
from mirrorbot.engine.sources.base import ListedRepository, Listing
from mirrorbot.errors import DeadlineExceededError, RegistryError
from mirrorbot.reference import upstream_name

__all__ = ["API_TIMEOUT", "WebApiSource", "api_client", "read_json_page"]

API_TIMEOUT = httpx.Timeout(connect=15.0, read=60.0, write=60.0, pool=60.0)


def api_client(*, follow_redirects: bool) -> httpx.AsyncClient:
    """An anonymous client for a web API: no registry credential ever reaches it."""
    return httpx.AsyncClient(
        timeout=API_TIMEOUT,
        headers={
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        },
        follow_redirects=follow_redirects,
        event_hooks={"response": [bound_response]},  # bodies capped
    )


async def read_json_page(
    api: httpx.AsyncClient,
    url: httpx.URL,
    *,
    client: RegistryClient,
    host: str,
    source: str,
    what: str,
) -> Any:
    """One page as JSON: capped, deadlined, retried; a typed error for anything else."""
    seconds = client.limits.request_deadline

    async def read() -> Any:
        request = api.build_request(
            "GET", url, headers={"Accept": "application/json", "Accept-Encoding": "identity"}
        )
        response = await api.send(request, stream=True)
        try:
            await bound_response(response)  # a no-op when the client already installed it
            if response.status_code != 200:
                raise await registry_error_from_response(response, source)
            await response.aread()
        finally:
            await response.aclose()
        try:
            return response.json()
        except (ValueError, RecursionError):
            raise RegistryError(
                status=200,
                method="GET",
                url=redact_url(url.copy_with(query=None)),
                reference=source,
                body_excerpt=f"{what} is not JSON",
            ) from None

    async def attempt() -> Any:
        try:
            async with asyncio.timeout(seconds):
                return await read()
        except TimeoutError:
            raise DeadlineExceededError(host, source, seconds) from None

    return await retrying(
        attempt,
        client.retry,
        registry=host,
        reference=source,
        budget=client.budget,
        breaker=None,  # the API's host is not the registry: its outages are not the registry's
    )


class WebApiSource:
    """A namespace whose repository names come from a web API, and tags from the registry.

    Subclasses say how to page through names (:meth:`_names`), what one namespace
    is called (``kind``) and whether the API may redirect; the rest is shared.
    """

    kind = "web API"
    follow_redirects = False

    def __init__(
        self,
        *,
        registry: str,
        path: str,
        client: RegistryClient,
        api: str,
        concurrency: int = 8,
        api_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.registry = registry
        self.path = path.strip("/")
        if not self.path or "/" in self.path:
            raise ValueError(f"a {self.kind} namespace is one name, not {path!r}")
        self.client = client
        self.api = httpx.URL(api.rstrip("/") + "/")
        self.concurrency = concurrency
        self.api_client = api_client
        self.source = upstream_name(registry, self.path)

    async def list(self) -> Listing:
        warnings = Warnings(self.source)
        if self.api_client is not None:
            return await self._list(self.api_client, warnings)
        async with api_client(follow_redirects=self.follow_redirects) as api:
            return await self._list(api, warnings)

    async def _list(self, api: httpx.AsyncClient, warnings: Warnings) -> Listing:
        names = await self._names(api, warnings)
        below = [
            checked
            for name in names
            if (checked := checked_repository(self.path, name, warnings)) is not None
        ]
        found = await list_tags(
            self.client, self.path, below, concurrency=self.concurrency, warnings=warnings
        )
        found = await self._annotate(api, found, warnings)
        return assemble(self.source, found, warnings)

    async def _names(self, api: httpx.AsyncClient, warnings: Warnings) -> tuple[str, ...]:
        raise NotImplementedError

    async def _annotate(
        self, api: httpx.AsyncClient, found: builtins.list[ListedRepository], warnings: Warnings
    ) -> builtins.list[ListedRepository]:
        """What the API knows of the registry's tags (upload times), added to them."""
        return found

    async def _page(self, api: httpx.AsyncClient, url: httpx.URL) -> Any:
        return await read_json_page(
            api,
            url,
            client=self.client,
            host=self.api.host,
            source=self.source,
            what=f"{self.kind} API page",
        )
