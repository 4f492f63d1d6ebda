"""Listing endpoints: tags and catalog with bounded pagination, and one JSON GET for extensions."""

from __future__ import annotations

from typing import Any

import httpx

from mirrorbot.engine.registry.auth import catalog_scope, pull_scope
from mirrorbot.engine.registry.bounded import LISTING_PAGE_LIMIT
from mirrorbot.engine.registry.responses import redact_url, registry_error_from_response
from mirrorbot.engine.registry.session import RegistrySession
from mirrorbot.errors import ErrorCode, ListingTooLargeError, ProtocolViolationError, RegistryError

__all__ = ["ListingEndpoints"]


def _page_key(url: httpx.URL) -> str:
    """Identity of a listing page: a Link may spell the same URL with its query reordered."""
    query = "&".join(f"{k}={v}" for k, v in sorted(url.params.multi_items()))
    return f"{url.host}:{url.port}{url.path}?{query}"


class ListingEndpoints(RegistrySession):
    """``tags/list``, ``_catalog`` and listing extensions such as gcr's."""

    async def tags(self, repository: str, page_size: int | None = None) -> list[str]:
        return await self._paginate(
            f"/v2/{repository}/tags/list",
            "tags",
            (pull_scope(repository),),
            page_size,
            f"{self.registry}/{repository}",
        )

    async def catalog(self, page_size: int | None = 1000) -> list[str]:
        return await self._paginate(
            "/v2/_catalog", "repositories", (catalog_scope(),), page_size, self.registry
        )

    async def _paginate(
        self, path: str, key: str, scopes: tuple[str, ...], page_size: int | None, reference: str
    ) -> list[str]:
        """Follow ``Link: <…>; rel="next"`` to the end, falling back when ``n`` is refused.

        Bounded: each page by :data:`LISTING_PAGE_LIMIT` bytes, the walk by
        ``limits.max_pages`` and ``limits.max_items``, and a ``Link`` may only
        name another page of this registry (same scheme and host).
        """
        items: list[str] = []
        url: httpx.URL | None = httpx.URL(path)
        params: dict[str, str] | None = {"n": str(page_size)} if page_size else None
        seen: set[str] = set()
        while url is not None:
            if _page_key(url) in seen:
                break  # a registry that links back to a page it served: stop, do not loop forever
            if len(seen) >= self.limits.max_pages:
                raise ListingTooLargeError(self.registry, reference, "pages", self.limits.max_pages)

            async def attempt(
                current_url: httpx.URL = url, current_params: dict[str, str] | None = params
            ) -> httpx.Response:
                request = self._request(
                    "GET",
                    current_url,
                    scopes=scopes,
                    params=current_params,
                    headers={"Accept": "application/json"},
                    body_limit=LISTING_PAGE_LIMIT,
                )
                response = await self._http.send(request, stream=True)
                try:
                    if response.status_code != 200:
                        raise await registry_error_from_response(response, reference)
                    await response.aread()
                finally:
                    await response.aclose()
                return response

            try:
                response = await self._small(attempt, reference)
            except RegistryError as error:
                if params is not None and error.has(ErrorCode.PAGINATION_NUMBER_INVALID):
                    params = None  # the registry caps page sizes: let it choose
                    continue
                if key == "tags" and error.has(ErrorCode.NAME_UNKNOWN):
                    return []
                raise
            # The URL actually served (absolute, with ``n``), so that a Link back to it matches.
            seen.add(_page_key(response.request.url))
            try:
                body = response.json()
            except (ValueError, RecursionError):
                raise RegistryError(
                    status=200,
                    method="GET",
                    url=redact_url(response.request.url),
                    reference=reference,
                    body_excerpt="listing is not JSON",
                ) from None
            page = body.get(key) if isinstance(body, dict) else None
            if isinstance(page, list):
                items.extend(item for item in page if isinstance(item, str))
                if len(items) > self.limits.max_items:
                    raise ListingTooLargeError(self.registry, reference, key, self.limits.max_items)
            url = self._next_page(response, reference)
            params = None  # the Link URL carries its own query
        return items

    def _next_page(self, response: httpx.Response, reference: str) -> httpx.URL | None:
        """The ``rel="next"`` page, only ever on this registry (same scheme, host and port)."""
        served = response.request.url
        try:
            link = response.links.get("next", {}).get("url")
            following = served.join(link) if link else None
        except (httpx.InvalidURL, ValueError) as error:
            raise ProtocolViolationError(
                self.registry, reference, f"invalid Link header: {error}", redact_url(served)
            ) from None
        if following is None:
            return None
        base = httpx.URL(self.base_url)
        if (following.scheme, following.netloc) != (base.scheme, base.netloc):
            raise ProtocolViolationError(
                self.registry,
                reference,
                f"Link leaves {base.scheme}://{self.netloc} for "
                f"{following.scheme}://{following.netloc.decode('ascii', 'replace')[:100]}",
                redact_url(served),
            )
        return following

    async def get_json(
        self, path: str, *, scopes: tuple[str, ...], reference: str
    ) -> tuple[Any, httpx.Headers]:
        """``GET`` one JSON document from this registry, with auth, retries and typed errors.

        For listing extensions such as gcr's ``tags/list`` (``child`` and
        ``manifest`` map). ``path`` is absolute on this registry (``/v2/…``),
        never another host; no ``Link`` following. The document is returned
        as parsed, untrusted: callers check its shape.
        """
        document, response = await self._json(path, scopes=scopes, reference=reference)
        return document, response.headers

    async def get_json_page(
        self, url: str | httpx.URL, *, scopes: tuple[str, ...], reference: str
    ) -> tuple[Any, httpx.Headers, httpx.URL | None]:
        """:meth:`get_json`, and the answer's ``Link: <…>; rel="next"`` page.

        ``url`` is a path on this registry or a URL a previous page gave; the
        next page is only ever on this registry (same scheme, host and port).
        """
        document, response = await self._json(url, scopes=scopes, reference=reference)
        return document, response.headers, self._next_page(response, reference)

    async def _json(
        self, path: str | httpx.URL, *, scopes: tuple[str, ...], reference: str
    ) -> tuple[Any, httpx.Response]:
        if isinstance(path, str) and (not path.startswith("/") or path.startswith("//")):
            raise ValueError(f"not a path on {self.registry}: {path!r}")
        if isinstance(path, httpx.URL) and path.is_absolute_url:
            base = httpx.URL(self.base_url)
            if (path.scheme, path.netloc) != (base.scheme, base.netloc):
                raise ValueError(f"not a URL of {self.registry}: {redact_url(path)}")

        async def attempt() -> httpx.Response:
            request = self._request(
                "GET",
                path,
                scopes=scopes,
                headers={"Accept": "application/json"},
                body_limit=LISTING_PAGE_LIMIT,
            )
            return await self._send(request, reference, 200)

        response = await self._small(attempt, reference)
        try:
            document = response.json()
        except (ValueError, RecursionError):
            raise RegistryError(
                status=response.status_code,
                method="GET",
                url=redact_url(response.request.url),
                reference=reference,
                body_excerpt="response is not JSON",
            ) from None
        return document, response
