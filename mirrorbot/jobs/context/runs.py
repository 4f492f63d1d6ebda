"""``sync``, ``plan`` and ``verify`` (with ``--repair``): run the job, then publish what changed.

A sync with ``output`` writes a shard fragment instead of committing; ``publish``
merges fragments later (:mod:`mirrorbot.jobs.context.publishing`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

from mirrorbot.config.credentials import Need
from mirrorbot.domain.changes import Change
from mirrorbot.domain.shards import Fragment, assign
from mirrorbot.engine.copier import Copier
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.jobs.context.publishing import publish_changes
from mirrorbot.jobs.context.wiring import JobContext, iso_utc, run_async, sync_hosts, verify_hosts
from mirrorbot.jobs.outcome import Failure, SyncReport
from mirrorbot.jobs.progress import ProgressSink
from mirrorbot.jobs.sync import Sync, SyncOptions, stop_on_signals
from mirrorbot.jobs.verify import (
    RepairFailure,
    VerifyResult,
    describe_repair,
    recheck_repairs,
    repair_drifts,
    verify_states,
)
from mirrorbot.redact import redact

__all__ = [
    "SyncOutcome",
    "VerifyOutcome",
    "repair_after_sync",
    "run_sync",
    "run_verify",
    "shard_matrix",
]


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
) -> SyncOutcome:
    """Sync, then commit (and push) — or, with ``output``, write a shard fragment instead.

    The clone is this run's from reading state to pushing it: one run at a time on it.
    ``shared`` is a pool kept open on a running event loop (``notify --listen`` keeps
    one for its life); called from a worker thread, the sync runs on that loop with
    that pool, so tokens and connections outlive the run. The loop's owner handles
    signals then.
    """
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
                    if options.repair and not options.dry_run and not sync.stopping:
                        await repair_after_sync(sync, pool)
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


async def repair_after_sync(sync: Sync, pool: RegistryPool) -> None:
    """``sync --repair``: a shallow verify of the namespaces synced; copy again what is missing.

    Tags this run already copied are the mirror's truth now, whatever the
    recorded digest was: they are not repaired.
    """
    report = sync.report
    states = [run.state for run in report.runs if run.state is not None and run.error is None]
    result = await verify_states(states, pool, concurrency=sync.options.head_concurrency)
    copied = {(c.namespace, c.image, c.tag) for c in report.changes}
    holes = [d for d in result.drifts if (d.namespace, d.image, d.tag) not in copied]
    namespaces = {run.namespace.source: run.namespace for run in report.runs}
    changes, failures = await repair_drifts(
        holes,
        states,
        namespaces,
        sync.copier,
        synced=sync.synced_stamp,
        concurrency=sync.options.image_concurrency,
        stopping=lambda: sync.stopping,
    )
    report.changes.extend(changes)
    report.warnings.extend(describe_repair(change) for change in changes)
    report.failures.extend(
        Failure(f.upstream, f.target, f"not repaired: {f.error}") for f in failures
    )


@dataclass(slots=True)
class VerifyOutcome:
    result: VerifyResult
    repair: bool = False
    changes: list[Change] = field(default_factory=list)
    failures: list[RepairFailure] = field(default_factory=list)
    commit: str | None = None
    pushed: bool = False

    @property
    def exit_code(self) -> int:
        """0 when the mirror matches state (again, after a repair)."""
        return 1 if self.failures or (self.result.drifts and not self.repair) else 0


def run_verify(
    context: JobContext,
    *,
    deep: bool = False,
    repair: bool = False,
    push: bool = True,
    now: dt.datetime | None = None,
) -> VerifyOutcome:
    """Verify every state file; with ``repair``, copy the holes again and publish like a sync."""
    moment = now or dt.datetime.now(dt.UTC)
    if repair:
        context.repo.discard_changes(context.store.root)
    states = list(context.store.all())
    namespaces = {ns.source: ns for ns in context.config.namespace_plans()}
    network = context.config.network
    credentials = context.credentials(
        verify_hosts(context.config, states, repair=repair),
        Need.REQUIRED if repair else Need.OPTIONAL,
    )

    async def go() -> VerifyOutcome:
        async with context.pool(credentials) as pool:
            outcome = VerifyOutcome(await verify_states(states, pool, deep=deep), repair)
            if repair and outcome.result.drifts:
                outcome.changes, outcome.failures = await repair_drifts(
                    outcome.result.drifts,
                    states,
                    namespaces,
                    Copier(pool, blob_concurrency=network.blob_concurrency),
                    synced=iso_utc(moment),
                    concurrency=network.image_concurrency,
                )
                outcome.failures += await recheck_repairs(outcome.changes, pool, deep=deep)
            return outcome

    outcome = run_async(go)
    if outcome.changes:
        outcome.commit, outcome.pushed = publish_changes(
            context, outcome.changes, moment, push=push
        )
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
