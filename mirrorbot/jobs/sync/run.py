"""The main job: list → plan → copy → record → publish.

One failing image never aborts the run: it is retried within the run, then
reported, and every success is still recorded. A tag enters state only from a
:class:`CopyResult`, i.e. after the target acknowledged the manifest with that
digest. A run that plans nothing sends no request to the target registry.

The stages are layered, one module each: :mod:`.base` (shared state),
:mod:`.listing`, :mod:`.planning`, :mod:`.notes` (gone marks, backups, prunes,
skips); this module copies, records and stops on request.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial

from mirrorbot.domain.changes import Change
from mirrorbot.domain.planner import PlanItem
from mirrorbot.engine.concurrency import bounded_map
from mirrorbot.engine.copier import CopyResult
from mirrorbot.engine.registry.media import PlatformFilter
from mirrorbot.engine.registry.pulls import registry_label
from mirrorbot.engine.registry.retry import failure_cause
from mirrorbot.errors import MirrorbotError, PullBudgetError
from mirrorbot.jobs.outcome import INTERRUPTED, Failure, NamespaceRun, SyncReport
from mirrorbot.jobs.referrers import fallback_types_filter, with_referrers
from mirrorbot.jobs.rounds import copy_in_rounds
from mirrorbot.jobs.sync.notes import NotesStage, unsupported_reason
from mirrorbot.jobs.timebudget import TimeBudget

__all__ = ["Sync", "stop_on_signals"]

log = logging.getLogger("mirrorbot.sync")


class Sync(NotesStage):
    """Runs the stages for a set of namespaces with one registry pool."""

    def request_stop(self, reason: str = "SIGTERM") -> None:
        """First stop starting images; a second time, abandon the ones in flight."""
        if self.stopping:
            log.warning("%s: abandoning %d copies in flight", reason, len(self._in_flight))
            for task in list(self._in_flight):
                task.cancel()
            return
        self.stopping = True
        self.report.stopped = True
        self.report.stop_reason = reason
        log.warning(
            "%s: finishing %d copies in flight, starting no more", reason, len(self._in_flight)
        )

    def _budget_expired(self) -> None:
        self.request_stop(f"{self._budget.describe()} ran out")

    async def copy(self, work: Sequence[tuple[NamespaceRun, PlanItem]]) -> None:
        """Copy every item; failures get ``retry_rounds`` more rounds, then are reported."""
        failures = await copy_in_rounds(
            work,
            self._copy_one,
            concurrency=self.options.image_concurrency,
            retry_rounds=self.options.retry_rounds,
            stopping=lambda: self.stopping,
        )
        # In plan order, not finishing order: a report (and which message a group quotes)
        # must not depend on which answer came back first.
        order = {id(entry[1]): number for number, entry in enumerate(work)}
        failures.sort(key=lambda failure: order.get(id(failure[0][1]), len(order)))
        for (run, item), exc in failures:
            self.report.failures.append(
                Failure(str(item.source), str(item.target), str(exc), failure_cause(exc))
            )
            self.progress.finished(run.namespace.source, ok=False)

    def _record(self, run: NamespaceRun, item: PlanItem, result: CopyResult) -> None:
        if result.already_present:
            self.report.already_present += 1
        self.report.stats.add(result.stats)
        self.report.changes.append(
            Change.from_copy(
                result,
                kind=item.kind,
                namespace=run.namespace.source,
                mirror=run.mirror,
                image=item.image,
                tag=item.tag,
                synced=self.synced_stamp,
                previous=item.previous,
            )
        )

    async def run(self) -> SyncReport:
        self._budget = TimeBudget.start(self.options.time_budget)
        watchdog = asyncio.create_task(
            self._budget.watch(self._budget_expired, self._budget_expired)
        )
        try:
            async with self.progress:
                await self._stages()
        finally:
            watchdog.cancel()
        self.report.pulls = [m.usage() for m in self.pool.meters.values() if m.seen]
        self.report.duration = time.monotonic() - self.report.started
        return self.report

    async def _stages(self) -> None:
        await self.list_all()
        self.map_names()
        for signatures in (False, True):
            eligible = [r for r in self.report.runs if r.namespace.signatures or not signatures]
            plans = await bounded_map(partial(self._plan_guarded, signatures=signatures), eligible)
            planned = [(run, plan) for run, plan in zip(eligible, plans, strict=True) if plan]
            # Shards are assigned once every namespace is planned: weights span the whole run.
            work = [
                (run, item) for run, plan in planned for item in plan.items if self._mine(run, item)
            ]
            if not self.options.dry_run and not signatures:
                self._note_gone(planned)
            if not signatures:
                await self._prune(planned)
            if not self.options.dry_run:
                counts = Counter(id(run) for run, _ in work)
                for run in eligible:
                    self.progress.planned(run.namespace.source, counts[id(run)])
            if self.stopping and not self.options.dry_run:
                self.report.not_started.extend(str(item.source) for _, item in work)
            elif not self.options.dry_run and work:
                await self.copy(work)

    async def _copy_one(self, entry: tuple[NamespaceRun, PlanItem]) -> None:
        """Copy and record one item; a MirrorbotError propagates to the rounds."""
        run, item = entry
        if self.stopping:
            self.report.not_started.append(str(item.source))
            return
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        self.progress.started(str(item.source))
        try:
            await self._backup(run, item)
            result = await self.copier.copy(
                item.source,
                item.target,
                platforms=PlatformFilter.parse(run.namespace.platforms),
                source_digest=item.upstream_digest,  # the listing's, or this run's HEAD
                reshape=fallback_types_filter(run.namespace.referrers, item.tag),
            )
        except asyncio.CancelledError:
            # Abandoned on a second SIGTERM: nothing was recorded for it, the next run redoes it.
            self.report.abandoned.append(str(item.source))
            return
        except PullBudgetError as exc:
            if all(registry != exc.registry for _, registry in self.report.deferred):
                log.warning(  # said once per registry
                    "%s: deferred, and no more pulls from %s this run: %s pull budget (%s)",
                    item.source,
                    exc.registry,
                    registry_label(exc.registry),
                    exc.why,
                )
            self.report.deferred.append((str(item.source), exc.registry))
            self.progress.finished(run.namespace.source, ok=True)
            return
        except MirrorbotError as exc:
            if (reason := unsupported_reason(exc)) is None:
                raise
            await self._skip(run, item, reason)
            return
        finally:
            self.progress.left(str(item.source))
            if task is not None:
                self._in_flight.discard(task)
        result = await with_referrers(
            self.copier, run.namespace.referrers, item.tag, result, self.report.warnings
        )
        self._record(run, item, result)
        self.progress.finished(run.namespace.source, ok=True)


@contextmanager
def stop_on_signals(sync: Sync) -> Iterator[None]:
    """SIGTERM (what CI sends on cancel) and SIGINT ask the run to stop cleanly."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    reasons = {signal.SIGTERM: "SIGTERM", signal.SIGINT: INTERRUPTED}
    for signum, reason in reasons.items():
        try:
            loop.add_signal_handler(signum, sync.request_stop, reason)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread, or no signals here: run without the handler
        installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
