"""``mirrorbot notify``: mirror on push, from registry webhook notifications.

Distribution (and Harbor) POST an envelope ``{"events": [...]}`` for every
manifest push. This small ASGI app (Starlette, served by uvicorn) checks a
shared secret in ``Authorization``, keeps push events of tagged manifests in
configured namespaces, collects bursts for a few seconds (a multi-platform push
is many events), and then runs one targeted sync for all of them — or, with
``--dispatch``, sends a GitHub ``repository_dispatch`` so the sync workflow
does it.

Only one sync runs at a time; events arriving meanwhile make the next batch.
Every batch runs on the server's one event loop with one registry pool that
lives as long as the listener (:class:`PushSync`): bearer tokens and
connections carry over from batch to batch.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mirrorbot.config import ResolvedNamespace
from mirrorbot.engine.registry.media import IMAGE_TYPES, INDEX_TYPES
from mirrorbot.errors import InvalidReferenceError
from mirrorbot.reference import Reference, parse_reference

__all__ = ["Batcher", "NotifyApp", "Runner", "references_from_envelope"]

log = logging.getLogger("mirrorbot.notify")
MAX_ENVELOPE = 4 * 1024 * 1024
MAX_PENDING = 10_000  # references waiting for the next batch
MANIFEST_TYPES = INDEX_TYPES | IMAGE_TYPES

Runner = Callable[[tuple[Reference, ...]], Awaitable[None]]


def _owner(
    reference: Reference, namespaces: Sequence[ResolvedNamespace]
) -> ResolvedNamespace | None:
    owners = [
        ns
        for ns in namespaces
        if reference.name.startswith(ns.upstream("") + "/")
        or (not ns.path and reference.registry == ns.registry)
    ]
    return max(owners, key=lambda ns: len(ns.upstream("")), default=None)


def references_from_envelope(
    envelope: Any, namespaces: Sequence[ResolvedNamespace], *, registry: str | None = None
) -> tuple[list[Reference], list[str]]:
    """Push events → upstream references in configured namespaces; and why others were ignored.

    The registry name comes from ``registry`` when given (how the config names
    the notifying registry), else from the event's ``target.url`` host.
    """
    events = envelope.get("events") if isinstance(envelope, dict) else None
    if not isinstance(events, list):
        return [], ["not a notification envelope (no events list)"]
    found: list[Reference] = []
    ignored: list[str] = []
    for event in events:
        if not isinstance(event, dict) or event.get("action") != "push":
            continue
        target = event.get("target")
        if not isinstance(target, dict):
            continue
        tag, repository = target.get("tag"), target.get("repository")
        if target.get("mediaType") not in MANIFEST_TYPES or not tag:
            continue  # blob pushes and untagged children: the tagged push that follows counts
        host = registry
        if host is None:
            url = target.get("url")
            host = urlsplit(url).netloc if isinstance(url, str) else None
        if not host or not isinstance(repository, str) or not isinstance(tag, str):
            ignored.append("push event without registry, repository or tag")
            continue
        try:
            reference = parse_reference(f"{host}/{repository}:{tag}")
        except InvalidReferenceError as exc:
            ignored.append(str(exc))
            continue
        namespace = _owner(reference, namespaces)
        if namespace is None:
            ignored.append(f"{reference}: not in a configured namespace")
            continue
        if not namespace.tag_selected(tag):
            ignored.append(f"{reference}: tag excluded by the namespace's filters")
            continue
        found.append(reference)
    return found, ignored


@dataclass
class Batcher:
    """Collects references and runs one sync per burst, never two at once.

    A burst ends after ``quiet`` seconds without a new event, or ``max_wait``
    seconds after its first event, whichever comes first: a registry that pushes
    every second must not postpone the mirror forever.
    """

    run: Runner
    quiet: float = 3.0  # seconds without a new event before a batch starts
    max_wait: float = 60.0  # seconds after a burst's first event at the latest
    pending: set[Reference] = field(default_factory=set)
    batches: int = 0
    dropped: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def add(self, references: Sequence[Reference]) -> None:
        room = MAX_PENDING - len(self.pending)
        fresh = [r for r in references if r not in self.pending]
        if len(fresh) > room:
            self.dropped += len(fresh) - max(room, 0)
            log.warning(
                "%d pushed references over the %d pending: dropped; the nightly sync finds them",
                len(fresh) - max(room, 0),
                MAX_PENDING,
            )
            fresh = fresh[: max(room, 0)]
        self.pending.update(fresh)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _settle(self) -> None:
        """Wait until events stop for ``quiet`` seconds, or ``max_wait`` has passed."""
        loop = asyncio.get_running_loop()
        latest = loop.time() + self.max_wait
        while True:
            self._wake.clear()
            wait = min(self.quiet, latest - loop.time())
            if wait <= 0:
                return
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                return

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            await self._settle()
            batch, self.pending = tuple(sorted(self.pending, key=str)), set()
            if not batch:
                continue
            self.batches += 1
            log.info("syncing %d pushed references", len(batch))
            try:
                await self.run(batch)
            except Exception:
                log.exception("targeted sync of %d references failed", len(batch))


class NotifyApp:
    """The ASGI application; ``app`` is what uvicorn serves.

    A runner that is also an async context manager (:class:`PushSync`) is
    entered for the life of the server.
    """

    def __init__(
        self,
        namespaces: Sequence[ResolvedNamespace],
        secret: str,
        runner: Runner,
        *,
        registry: str | None = None,
        quiet: float = 3.0,
    ) -> None:
        if not secret:
            raise ValueError("a shared secret is required")
        self.namespaces = tuple(namespaces)
        self._expected = (
            secret if secret.lower().startswith(("bearer ", "basic ")) else f"Bearer {secret}"
        )
        self.registry = registry
        self.runner = runner
        self.batcher = Batcher(runner, quiet=quiet)
        self.received = 0
        self.app = Starlette(
            routes=[
                Route("/events", self.events, methods=["POST"]),
                Route("/healthz", self.health, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if isinstance(self.runner, AbstractAsyncContextManager):
                await stack.enter_async_context(self.runner)
            self.batcher.start()
            try:
                yield
            finally:
                await self.batcher.stop()

    async def health(self, request: Request) -> Response:
        return JSONResponse({"pending": len(self.batcher.pending), "batches": self.batcher.batches})

    async def events(self, request: Request) -> Response:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), self._expected.encode()):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        body = await _read_capped(request, MAX_ENVELOPE)
        if body is None:
            return JSONResponse({"error": "envelope too large"}, status_code=413)
        try:
            envelope = json.loads(body)
        except (ValueError, RecursionError):
            return JSONResponse({"error": "not JSON (or nested too deeply)"}, status_code=400)
        references, ignored = references_from_envelope(
            envelope, self.namespaces, registry=self.registry
        )
        for reason in ignored:
            log.info("ignored: %s", reason)
        self.received += len(references)
        self.batcher.add(references)
        # Distribution retries anything but 2xx: accept even what we ignore.
        return JSONResponse({"accepted": [str(r) for r in references], "ignored": len(ignored)})


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit`` (never read whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
