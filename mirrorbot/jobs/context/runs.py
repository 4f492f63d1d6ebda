"""``sync`` and ``plan``: run the job, then publish what changed.

A sync with ``output`` writes a shard fragment instead of committing; ``publish``
merges fragments later (:mod:`mirrorbot.jobs.context.fragments`). ``verify`` and the
repair step of ``sync --repair`` are :mod:`mirrorbot.jobs.context.verifying`, which the
command that repairs passes in: a plain sync never loads them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

from mirrorbot.config.credentials import Need
from mirrorbot.domain.shards import Fragment, assign
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.jobs.context.publishing import publish_changes
from mirrorbot.jobs.context.wiring import JobContext, iso_utc, run_async, sync_hosts
from mirrorbot.jobs.outcome import SyncReport
from mirrorbot.jobs.progress import ProgressSink
from mirrorbot.jobs.sync import Sync, SyncOptions, stop_on_signals
from mirrorbot.redact import redact

__all__ = ["Repair", "SyncOutcome", "run_sync", "shard_matrix"]

# The step after a ``sync --repair`` (:func:`mirrorbot.jobs.context.verifying.repair_after_sync`).
Repair = Callable[[Sync, RegistryPool], Awaitable[None]]


@dataclass(slots=True)
class SyncOutcome:
    report: SyncReport
    commit: str | None = None
    pushed: bool = False
    fragment: Path | None = None


def run_sync(
    context: JobContext,
    options: SyncOptions,
    *,
    push: bool,
    now: dt.datetime | None = None,
    output: Path | None = None,
    progress: ProgressSink | None = None,
    shared: tuple[RegistryPool, asyncio.AbstractEventLoop] | None = None,
    repair: Repair | None = None,
) -> SyncOutcome:
    """Sync, then commit (and push) — or, with ``output``, write a shard fragment instead.

    The clone is this run's from reading state to pushing it: one run at a time on it.
    ``shared`` is a pool kept open on a running event loop (``notify --listen`` keeps
    one for its life); called from a worker thread, the sync runs on that loop with
    that pool, so tokens and connections outlive the run. The loop's owner handles
    signals then.

    ``repair``: the step ``options.repair`` runs after the sync; required with it.
    """
    if options.repair and repair is None:
        raise ValueError("options.repair needs the repair step (repair=repair_after_sync)")
    with context.repo.locked():
        moment = now or dt.datetime.now(dt.UTC)
        credentials = context.credentials(
            sync_hosts(context.config, options.namespaces),
            Need.OPTIONAL if options.dry_run else Need.REQUIRED,
        )

        network = context.config.network
        options = replace(
            options,
            image_concurrency=network.image_concurrency,
            blob_concurrency=network.blob_concurrency,
            time_budget=network.time_budget if options.time_budget is None else options.time_budget,
        )

        async def go() -> SyncReport:
            opened = context.pool(credentials) if shared is None else nullcontext(shared[0])
            async with opened as pool:
                sync = Sync(
                    context.config, pool, context.store, options, now=moment, progress=progress
                )
                with stop_on_signals(sync) if shared is None else nullcontext():
                    report = await sync.run()
                    if repair and options.repair and not (options.dry_run or sync.stopping):
                        await repair(sync, pool)
                    return report

        # A link or special file under the state folder stops the run before anything is read.
        context.store.check()
        if not options.dry_run and output is None:
            # Uncommitted state is what a killed run left behind; the registries are the truth.
            context.repo.discard_changes(context.store.root)

        if shared is None:
            report = run_async(go)
        else:
            report = asyncio.run_coroutine_threadsafe(go(), shared[1]).result()
        outcome = SyncOutcome(report)
        if options.dry_run:
            return outcome
        changes = sorted(report.changes, key=lambda c: (c.namespace, c.image, c.tag))
        if output is not None:
            index, count = options.shard or (1, 1)
            fragment = Fragment(
                index=index,
                count=count,
                when=iso_utc(moment),
                changes=tuple(changes),
                # Fragments travel as artifacts and are printed by publish: redacted here.
                failures=tuple(
                    {"upstream": f.upstream, "target": f.target, "error": redact(f.error)}
                    for f in report.failures
                ),
                errors=tuple(redact(error) for error in report.listing_errors),
            )
            outcome.fragment = fragment.write(output)
            return outcome
        outcome.commit, outcome.pushed = publish_changes(context, changes, moment, push=push)
        return outcome


def shard_matrix(report: SyncReport, count: int) -> dict[str, object]:
    """What ``plan --shards N --json`` adds: the Actions matrix and the image assignment."""
    weights = report.shard_weights()
    assignments = assign(weights, count)
    loads = [0] * count
    for key, shard in assignments.items():
        loads[shard - 1] += weights[key]
    return {
        "matrix": {"shard": [f"{index}/{count}" for index in range(1, count + 1)]},
        "assignments": dict(sorted(assignments.items())),
        "loads": loads,
    }
