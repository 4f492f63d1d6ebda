"""Ask GitHub Actions to run the sync workflow for images a registry notified (``repository_dispatch``).

GitHub answers 5xx and 429 now and then; those are retried through the engine's
one retry helper (:func:`mirrorbot.engine.registry.retry.retrying`: stamina, a
predicate, ``Retry-After`` honoured). Other answers fail the batch in one log
line. The token goes only into the ``Authorization`` header: messages name the
API URL without query and never the request headers.
"""

from __future__ import annotations

import logging
from functools import partial
from types import TracebackType
from typing import Final
from urllib.parse import urlsplit

import httpx

from mirrorbot.engine.registry.responses import registry_error_from_response
from mirrorbot.engine.registry.retry import RetryPolicy, retrying
from mirrorbot.engine.registry.session import USER_AGENT
from mirrorbot.errors import MirrorbotError
from mirrorbot.reference import Reference

__all__ = ["DISPATCH_RETRY", "GitHubDispatcher", "github_dispatcher"]

log = logging.getLogger("mirrorbot.notify")

#: How hard one ``repository_dispatch`` is tried before the batch is given up.
DISPATCH_RETRY: Final = RetryPolicy(attempts=5, timeout=120.0, wait_initial=1.0, wait_max=30.0)


class GitHubDispatcher:
    """A notify runner that sends ``repository_dispatch`` (type ``mirror-images``) per batch.

    Used as an async context manager (``notify --listen`` enters it for its
    life) it keeps one HTTP client, so connections outlive a batch; called
    outside one it opens a client per call.
    """

    def __init__(
        self,
        api: str,
        repository: str,
        token: str,
        *,
        batch: int = 100,
        retry: RetryPolicy = DISPATCH_RETRY,
    ) -> None:
        self.url = f"{api.rstrip('/')}/repos/{repository}/dispatches"
        self.repository = repository
        self.batch = batch
        self.retry = retry
        self._host = urlsplit(self.url).netloc
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "User-Agent": USER_AGENT,
        }
        self._client: httpx.AsyncClient | None = None

    @staticmethod
    def _new_client() -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=httpx.Timeout(30.0), follow_redirects=False)

    async def __aenter__(self) -> GitHubDispatcher:
        self._client = self._new_client()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __call__(self, references: tuple[Reference, ...]) -> None:
        if self._client is not None:
            await self._send_all(self._client, references)
            return
        async with self._new_client() as http:
            await self._send_all(http, references)

    async def _send_all(self, http: httpx.AsyncClient, references: tuple[Reference, ...]) -> None:
        for start in range(0, len(references), self.batch):
            chunk = [str(r) for r in references[start : start + self.batch]]
            try:
                await retrying(
                    partial(self._send, http, chunk),
                    self.retry,
                    registry=self._host,
                    reference=None,
                )
            except MirrorbotError as exc:
                log.error("repository_dispatch to %s failed: %s", self.repository, exc)

    async def _send(self, http: httpx.AsyncClient, chunk: list[str]) -> None:
        """One POST; an answer other than 204 raises the typed (maybe temporary) error."""
        payload = {"event_type": "mirror-images", "client_payload": {"images": chunk}}
        async with http.stream("POST", self.url, json=payload, headers=self._headers) as response:
            if response.status_code != 204:
                raise await registry_error_from_response(response, None)


def github_dispatcher(
    api: str, repository: str, token: str, *, batch: int = 100, retry: RetryPolicy = DISPATCH_RETRY
) -> GitHubDispatcher:
    """A runner that asks GitHub Actions to sync (``repository_dispatch``, type mirror-images)."""
    return GitHubDispatcher(api, repository, token, batch=batch, retry=retry)
