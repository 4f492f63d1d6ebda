"""``images``: an explicit list of repositories, for registries without a catalog."""

from __future__ import annotations

from collections.abc import Sequence

from mirrorbot.engine.backends.readable import ReadableRegistry
from mirrorbot.engine.sources._listing import Warnings, assemble, checked_repository, list_tags
from mirrorbot.engine.sources.base import Listing
from mirrorbot.reference import upstream_name

__all__ = ["ImagesSource"]


class ImagesSource:
    """The tags of each listed repository below ``path``.

    An image that does not exist upstream (or has no tags) is reported in
    ``skipped``; it never fails the listing of the others.
    """

    def __init__(
        self,
        *,
        registry: str,
        path: str,
        client: ReadableRegistry,
        images: Sequence[str],
        concurrency: int = 8,
    ) -> None:
        self.registry = registry
        self.path = path.strip("/")
        self.client = client
        self.images = tuple(images)
        self.concurrency = concurrency
        self.source = upstream_name(registry, self.path)

    async def list(self) -> Listing:
        warnings = Warnings(self.source)
        below = [
            checked
            for image in self.images
            if (checked := checked_repository(self.path, image, warnings)) is not None
        ]
        found = await list_tags(
            self.client,
            self.path,
            below,
            concurrency=self.concurrency,
            warnings=warnings,
            report_empty=True,
        )
        return assemble(self.source, found, warnings)
