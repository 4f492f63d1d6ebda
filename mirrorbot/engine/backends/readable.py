"""What the copier and the listings read from an upstream: a registry, or its storage directory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:  # annotations only: the client and media modules import nothing from here
    from mirrorbot.engine.registry.media import Descriptor, Manifest
    from mirrorbot.engine.registry.session import RequestCounter

__all__ = ["ReadableRegistry"]

T = TypeVar("T")


class ReadableRegistry(Protocol):
    """The read half of :class:`~mirrorbot.engine.registry.client.RegistryClient`."""

    registry: str
    counter: RequestCounter

    async def manifest_get(self, repository: str, identifier: str) -> Manifest: ...

    async def manifest_head(self, repository: str, identifier: str) -> Descriptor | None: ...

    def blob_open(
        self, repository: str, descriptor: Descriptor
    ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]: ...

    async def tags(self, repository: str, page_size: int | None = None) -> list[str]: ...

    async def catalog(self, page_size: int | None = 1000) -> list[str]: ...

    async def retrying(self, operation: Callable[[], Awaitable[T]], reference: str | None) -> T: ...

    async def aclose(self) -> None: ...
