"""One client per registry host for a whole run, so connections and tokens are reused."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

import httpx

from mirrorbot.engine.backends.readable import ReadableRegistry
from mirrorbot.engine.registry.bounded import Limits
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.registry.credentials import Credential, CredentialStore
from mirrorbot.engine.registry.pulls import PullMeter
from mirrorbot.engine.registry.retry import CircuitBreaker, RetryBudget, RetryPolicy

__all__ = ["NetworkSettingsLike", "RegistryPool"]

TransportFactory = Callable[[str], httpx.AsyncBaseTransport | None]


class NetworkSettingsLike(Protocol):
    """What a pool takes from the config's ``network:`` section (the engine reads no config)."""

    @property
    def retries(self) -> int: ...
    @property
    def connect_timeout(self) -> float: ...
    @property
    def read_timeout(self) -> float: ...
    @property
    def request_deadline(self) -> float: ...
    @property
    def min_transfer_rate(self) -> int: ...
    @property
    def retry_budget(self) -> int: ...
    @property
    def circuit_breaker(self) -> int: ...
    @property
    def pull_budget(self) -> int | None: ...
    @property
    def pull_reserve(self) -> int: ...


class RegistryPool:
    """Hands out the :class:`RegistryClient` of a registry, creating it on first use."""

    @classmethod
    def from_settings(
        cls,
        credentials: CredentialStore,
        network: NetworkSettingsLike,
        *,
        insecure: Iterable[str] = (),
        attempts: int | None = None,
    ) -> RegistryPool:
        """The one place a pool is built from ``network:`` settings (jobs, rules, requests)."""
        return cls(
            credentials,
            insecure=insecure,
            retry=RetryPolicy(attempts=attempts or network.retries),
            connect_timeout=network.connect_timeout,
            read_timeout=network.read_timeout,
            request_deadline=network.request_deadline,
            min_transfer_rate=network.min_transfer_rate,
            retry_budget=network.retry_budget,
            circuit_breaker=network.circuit_breaker,
            pull_budget=network.pull_budget,
            pull_reserve=network.pull_reserve,
        )

    def __init__(
        self,
        credentials: CredentialStore | None = None,
        *,
        insecure: Iterable[str] = (),
        retry: RetryPolicy | None = None,
        transport_factory: TransportFactory | None = None,
        max_connections: int = 64,
        connect_timeout: float = 15.0,
        read_timeout: float = 120.0,
        retry_budget: int | None = None,
        circuit_breaker: int | None = None,
        request_deadline: float = 60.0,
        min_transfer_rate: int = 10 * 1024,
        pull_budget: int | None = None,
        pull_reserve: int = 0,
    ) -> None:
        self.credentials = credentials or CredentialStore()
        self.insecure = frozenset(insecure)
        self.retry = retry or RetryPolicy()
        # Reads and writes wait per chunk, not per transfer: a 1 GiB layer may take long,
        # a stalled one fails after read_timeout. Waiting for a pooled connection is bounded
        # by our own concurrency limits, so it never times out.
        self.timeout = httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=None
        )
        # Per read is not enough: a small answer must be complete within request_deadline,
        # a blob must keep min_transfer_rate on average over every such span.
        self.limits = Limits(request_deadline=request_deadline, min_transfer_rate=min_transfer_rate)
        self.budget = RetryBudget(retry_budget)
        self._breaker_threshold = circuit_breaker
        self._transport_factory = transport_factory
        self._max_connections = max_connections
        self._clients: dict[str, RegistryClient] = {}
        self._scoped: dict[str, Credential] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        # One pull meter per registry, shared by its clients (namespace credentials or not).
        self._pull_budget = pull_budget
        self._pull_reserve = pull_reserve
        self._meters: dict[str, PullMeter] = {}
        self._readers: dict[str, ReadableRegistry] = {}
        self._reader_factories: dict[str, Callable[[], ReadableRegistry]] = {}

    def register(self, registry: str, factory: Callable[[], ReadableRegistry]) -> None:
        """Serve reads of ``registry`` from something else (a storage directory), opened on first use."""
        self._reader_factories[registry] = factory

    def reader(self, registry: str, repository: str | None = None) -> ReadableRegistry:
        """What to read ``registry`` with: a registered reader, else its network client."""
        if registry in self._reader_factories:
            if registry not in self._readers:
                self._readers[registry] = self._reader_factories[registry]()
            return self._readers[registry]
        return self.client(registry, repository)

    def scope_credentials(self, prefix: str, credential: Credential) -> None:
        """Credentials for ``registry/namespace`` only; the longest matching prefix wins."""
        self._scoped[prefix] = credential

    def _scope(self, registry: str, repository: str | None) -> str:
        if repository is None:
            return registry
        name = f"{registry}/{repository}"
        matches = [p for p in self._scoped if name == p or name.startswith(p + "/")]
        return max(matches, key=len, default=registry)

    def client(self, registry: str, repository: str | None = None) -> RegistryClient:
        """The client for ``registry`` (for ``repository``, when namespace credentials apply)."""
        scope = self._scope(registry, repository)
        if scope not in self._clients:
            transport = self._transport_factory(registry) if self._transport_factory else None
            credential = (
                self._scoped[scope] if scope in self._scoped else self.credentials.lookup(registry)
            )
            self._clients[scope] = RegistryClient(
                registry,
                credential=credential,
                insecure=registry in self.insecure,
                transport=transport,
                retry=self.retry,
                max_connections=self._max_connections,
                timeout=self.timeout,
                limits=self.limits,
                budget=self.budget,
                breaker=self._breakers.setdefault(
                    registry, CircuitBreaker(registry, self._breaker_threshold)
                ),
                meter=self.meter(registry),
            )
        return self._clients[scope]

    def meter(self, registry: str) -> PullMeter:
        """The manifest GETs this run sent to ``registry``, and what it says is left."""
        if registry not in self._meters:
            self._meters[registry] = PullMeter(
                registry, budget=self._pull_budget, reserve=self._pull_reserve
            )
        return self._meters[registry]

    @property
    def meters(self) -> dict[str, PullMeter]:
        return dict(self._meters)

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
        for reader in self._readers.values():
            await reader.aclose()
        self._clients.clear()
        self._readers.clear()
