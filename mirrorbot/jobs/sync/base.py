"""What every stage of a sync shares: options, the pool, the report, the stop flag.

The stages (listing, planning, notes, copying) are layers of one :class:`Sync`
object, one module each; this is the bottom layer they all build on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from mirrorbot.config import Config, ResolvedNamespace
from mirrorbot.engine.copier import Copier
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.errors import ConfigError, ListingError, MirrorbotError
from mirrorbot.jobs.outcome import SyncReport
from mirrorbot.jobs.progress import NullProgress, ProgressSink
from mirrorbot.jobs.timebudget import TimeBudget
from mirrorbot.reference import Reference
from mirrorbot.state.store import StateStore

__all__ = ["SyncBase", "SyncOptions"]

log = logging.getLogger("mirrorbot.sync")


@dataclass(frozen=True, slots=True)
class SyncOptions:
    dry_run: bool = False
    namespaces: tuple[str, ...] = ()
    image_concurrency: int = 4
    blob_concurrency: int = 8
    listing_concurrency: int = 4
    head_concurrency: int = 8
    retry_rounds: int = 1
    shard: tuple[int, int] | None = None  # (index starting at 1, count)
    assignments: Mapping[str, int] = field(default_factory=dict)  # from `plan --shards`
    images: tuple[Reference, ...] = ()  # targeted sync: only these upstream references
    time_budget: float | None = None  # seconds; past it no copy starts (see TimeBudget)
    repair: bool = False  # then copy again what a shallow verify finds missing (context.runs)
    retry_skipped: bool = False  # try tags state records as skipped (schema1, …) again


class SyncBase:
    """The state of one sync run that every stage reads and writes."""

    def __init__(
        self,
        config: Config,
        pool: RegistryPool,
        store: StateStore,
        options: SyncOptions,
        *,
        now: dt.datetime | None = None,
        hub_client: httpx.AsyncClient | None = None,
        progress: ProgressSink | None = None,
    ) -> None:
        self.config = config
        self.pool = pool
        self.store = store
        self.options = options
        self.now = now or dt.datetime.now(dt.UTC)
        self.report = SyncReport(dry_run=options.dry_run)
        self.progress: ProgressSink = progress if progress is not None else NullProgress()
        self.copier = Copier(
            pool,
            blob_concurrency=options.blob_concurrency,
            probe_targets=True,
            on_uploaded=self.progress.uploaded,
        )
        self._hub_client = hub_client
        self._assignments: dict[str, int] | None = None
        # One bound on re-check HEADs across every namespace planned at once.
        self._head_slots = asyncio.Semaphore(options.head_concurrency)
        self.stopping = False
        self._budget = TimeBudget()
        self._in_flight: set[asyncio.Task[Any]] = set()

    @property
    def synced_stamp(self) -> str:
        return self.now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def mirror(self) -> str:
        return f"{self.config.mirror.registry}/{self.config.mirror.namespace}"

    def selected_namespaces(self) -> list[ResolvedNamespace]:
        namespaces = list(self.config.namespace_plans())
        if not self.options.namespaces:
            return namespaces
        wanted = set(self.options.namespaces)
        chosen = [ns for ns in namespaces if ns.source in wanted]
        unknown = wanted - {ns.source for ns in chosen}
        if unknown:
            sources = [ns.source for ns in namespaces]
            configured = ", ".join(sources[:5]) + (
                f" and {len(sources) - 5} more" if len(sources) > 5 else ""
            )
            raise ConfigError(
                f"--namespace {', '.join(sorted(unknown))}: not in the config "
                f"(configured: {configured})"
            )
        return chosen

    def _namespace_error(self, stage: str, exc: Exception, *, expired: bool) -> str:
        """One line for a namespace that could not be listed or planned; the others go on."""
        if expired:
            return f"not {stage}: {self._budget.describe()} ran out"
        if isinstance(exc, ListingError):
            return exc.reason  # its message names the namespace, which the report shows already
        if isinstance(exc, MirrorbotError):
            return str(exc)
        # An answer nobody mapped to a typed error fails this namespace, never the run.
        log.debug("not %s: unexpected error", stage, exc_info=True)
        return f"not {stage}: unexpected {type(exc).__name__}: {exc}"
