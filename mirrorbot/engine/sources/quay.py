"""``quay``: Quay's repository API lists a namespace; the registry lists tags.

Quay answers ``/v2/_catalog`` with ``[]`` to anonymous users (its
``FEATURE_PUBLIC_CATALOG`` is off by default), so a catalog sees nothing there.
``GET {api}/api/v1/repository?namespace=<ns>&public=true`` answers
``{"repositories": [{"namespace", "name", "kind", ...}], "next_page": "<token>"}``;
the next page is the same query plus ``next_page=<token>``, until the answer
carries no token. The API lives on the registry's own host (``https://quay.io``)
unless ``api`` says otherwise. Anonymous only: private repositories are not
listed, and no registry credential is ever sent to the API.

Everything is bounded: pages, repositories, the bytes of a page and the length
of a token; redirects are not followed; a page that names another namespace's
repository is refused entry by entry.
"""

from __future__ import annotations

import httpx

from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.sources._listing import (
    REPOSITORY_FAILURES,
    Warnings,
    show,
)
from mirrorbot.engine.sources._webapi import WebApiSource
from mirrorbot.errors import ListingError

__all__ = ["MAX_QUAY_PAGES", "MAX_QUAY_REPOSITORIES", "QuaySource"]

# Quay serves 100 repositories a page: 1,000 pages is 100,000, far above any real namespace.
MAX_QUAY_PAGES = 1_000
MAX_QUAY_REPOSITORIES = 100_000
MAX_TOKEN_LENGTH = 4096


class QuaySource(WebApiSource):
    """The public repositories of one Quay organisation or user."""

    kind = "Quay"

    def __init__(
        self,
        *,
        registry: str,
        path: str,
        client: RegistryClient,
        api: str | None = None,
        concurrency: int = 8,
        api_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            registry=registry,
            path=path,
            client=client,
            api=api or str(client.base_url),
            concurrency=concurrency,
            api_client=api_client,
        )

    async def _names(self, api: httpx.AsyncClient, warnings: Warnings) -> tuple[str, ...]:
        """Every public repository name of the namespace, page after page. Failures are fatal."""
        first = self.api.join("api/v1/repository").copy_merge_params(
            {"namespace": self.path, "public": "true"}
        )
        url = first
        names: dict[str, None] = {}
        tokens: set[str] = set()
        for _ in range(MAX_QUAY_PAGES):
            try:
                page = await self._page(api, url)
            except REPOSITORY_FAILURES as error:
                raise ListingError(self.source, error) from error
            if not isinstance(page, dict) or not isinstance(page.get("repositories"), list):
                raise ListingError(self.source, f"{url.path}: not a Quay repository page")
            for entry in page["repositories"]:
                name = self._name(entry, warnings)
                if name is not None:
                    names[name] = None
            if len(names) > MAX_QUAY_REPOSITORIES:
                raise ListingError(self.source, f"more than {MAX_QUAY_REPOSITORIES} repositories")
            token = page.get("next_page")
            if token is None or token == "":
                return tuple(names)
            if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
                raise ListingError(self.source, "Quay API 'next_page' is not a page token")
            if token in tokens:
                return tuple(names)  # a page that leads back to one already served
            tokens.add(token)
            url = first.copy_merge_params({"next_page": token})
        raise ListingError(self.source, f"more than {MAX_QUAY_PAGES} pages")

    def _name(self, entry: object, warnings: Warnings) -> str | None:
        """The repository name of one entry, or None (and a warning) when it is not ours."""
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            warnings.add("ignored a Quay repository entry without a name")
            return None
        name: str = entry["name"]
        namespace = entry.get("namespace")
        if namespace is not None and namespace != self.path:
            shown = show(namespace) if isinstance(namespace, str) else "another namespace"
            warnings.add(f"skipped repository {show(name)}: it belongs to {shown}")
            return None
        kind = entry.get("kind")
        if isinstance(kind, str) and kind != "image":
            warnings.add(f"skipped repository {show(name)}: a {show(kind)}, not an image")
            return None
        return name
