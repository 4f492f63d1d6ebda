"""``notify --listen`` without ``--dispatch``: pushed references synced here, one pool for the listener's life.

Wiring, not a job: the notify job (:mod:`mirrorbot.jobs.notify`) only receives and
batches; this runs each batch as a targeted sync (:func:`run_sync`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType

from mirrorbot.config.credentials import Need
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.jobs.context.runs import SyncOutcome, run_sync
from mirrorbot.jobs.context.wiring import JobContext, sync_hosts
from mirrorbot.jobs.sync import SyncOptions
from mirrorbot.reference import Reference

__all__ = ["PushSync"]

log = logging.getLogger("mirrorbot.notify")


class PushSync:
    """The runner that syncs pushed references here, with one pool for the listener's life.

    Entered once (by :class:`NotifyApp`'s lifespan, on the server's loop) it
    opens the pool; each batch then runs :func:`run_sync` in a worker thread
    (git and state files block) whose registry work comes back to this loop and
    pool. Leaving waits for a batch in flight, then closes the pool.
    """

    def __init__(
        self,
        context: JobContext,
        *,
        push: bool,
        done: Callable[[tuple[Reference, ...], SyncOutcome], None] | None = None,
    ) -> None:
        self.context = context
        self.push = push
        self.done = done
        self.pools_opened = 0
        self._shared: tuple[RegistryPool, asyncio.AbstractEventLoop] | None = None
        self._stack = AsyncExitStack()
        self._running: asyncio.Future[SyncOutcome] | None = None

    async def __aenter__(self) -> PushSync:
        hosts = sync_hosts(self.context.config)
        pool = self.context.pool(self.context.credentials(hosts, Need.REQUIRED))
        await self._stack.enter_async_context(pool)
        self.pools_opened += 1
        self._shared = (pool, asyncio.get_running_loop())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        running, self._running = self._running, None
        if running is not None:
            await asyncio.wait([running])  # its registry work needs the pool until it ends
            if not running.cancelled() and running.exception() is not None:
                log.error("targeted sync failed while stopping: %s", running.exception())
        self._shared = None
        await self._stack.aclose()

    async def __call__(self, references: tuple[Reference, ...]) -> None:
        if self._shared is None:
            raise RuntimeError("PushSync runs batches only while entered")
        options = SyncOptions(images=references)
        self._running = asyncio.ensure_future(
            asyncio.to_thread(run_sync, self.context, options, push=self.push, shared=self._shared)
        )
        # A cancelled batch (the server stopping) leaves the thread to finish its run.
        outcome = await asyncio.shield(self._running)
        self._running = None
        if self.done is not None:
            self.done(references, outcome)
