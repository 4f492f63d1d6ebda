"""One client per registry host for a whole run, so connections and tokens are reused."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import httpx

from mirrorbot.registry.client import RegistryClient
from mirrorbot.registry.credentials import CredentialStore
from mirrorbot.registry.retry import RetryPolicy

__all__ = ["RegistryPool"]

TransportFactory = Callable[[str], httpx.AsyncBaseTransport | None]


class RegistryPool:
    """Hands out the :class:`RegistryClient` of a registry, creating it on first use."""

    def __init__(
        self,
        credentials: CredentialStore | None = None,
        *,
        insecure: Iterable[str] = (),
        retry: RetryPolicy | None = None,
        transport_factory: TransportFactory | None = None,
        max_connections: int = 64,
    ) -> None:
        self.credentials = credentials or CredentialStore()
        self.insecure = frozenset(insecure)
        self.retry = retry or RetryPolicy()
        self._transport_factory = transport_factory
        self._max_connections = max_connections
        self._clients: dict[str, RegistryClient] = {}

    def client(self, registry: str) -> RegistryClient:
        if registry not in self._clients:
            transport = self._transport_factory(registry) if self._transport_factory else None
            self._clients[registry] = RegistryClient(
                registry,
                credential=self.credentials.lookup(registry),
                insecure=registry in self.insecure,
                transport=transport,
                retry=self.retry,
                max_connections=self._max_connections,
            )
        return self._clients[registry]

    @property
    def clients(self) -> dict[str, RegistryClient]:
        return dict(self._clients)

    async def __aenter__(self) -> RegistryPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
