"""``catalog``: the registry's paged ``/v2/_catalog``, filtered to one namespace."""

from __future__ import annotations

from mirrorbot.engine.backends.readable import ReadableRegistry
from mirrorbot.engine.sources._listing import (
    CATALOG_PAGE_SIZE,
    Warnings,
    assemble,
    checked_repository,
    list_tags,
)
from mirrorbot.engine.sources.base import Listing
from mirrorbot.errors import ListingError, MirrorbotError
from mirrorbot.reference import upstream_name

__all__ = ["CatalogSource"]


class CatalogSource:
    """Every repository under ``path/`` (all of them for ``path == ""``), prefix stripped."""

    def __init__(
        self, *, registry: str, path: str, client: ReadableRegistry, concurrency: int = 8
    ) -> None:
        self.registry = registry
        self.path = path.strip("/")
        self.client = client
        self.concurrency = concurrency
        self.source = upstream_name(registry, self.path)

    async def list(self) -> Listing:
        warnings = Warnings(self.source)
        try:
            everything = await self.client.catalog(CATALOG_PAGE_SIZE)
        except MirrorbotError as error:
            raise ListingError(self.source, error) from error
        prefix = f"{self.path}/" if self.path else ""
        below: list[str] = []
        for name in everything:
            if name == self.path:
                warnings.add(
                    "the namespace itself is a repository: only the ones below it are listed"
                )
                continue
            if not name.startswith(prefix):
                continue  # another namespace, or one that merely shares a string prefix
            checked = checked_repository(self.path, name[len(prefix) :], warnings)
            if checked is not None:
                below.append(checked)
        found = await list_tags(
            self.client, self.path, below, concurrency=self.concurrency, warnings=warnings
        )
        return assemble(self.source, found, warnings)
