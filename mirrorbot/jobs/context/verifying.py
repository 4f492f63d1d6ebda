"""``verify`` (with ``--repair``) and the repair step of ``sync --repair``: the mirror against state.

Apart from :mod:`mirrorbot.jobs.context.runs` so that a plain sync never loads the
verify job: the command that repairs passes :func:`repair_after_sync` to ``run_sync``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from mirrorbot.config.credentials import Need
from mirrorbot.domain.changes import Change
from mirrorbot.engine.copier import Copier
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.jobs.context.publishing import publish_changes
from mirrorbot.jobs.context.wiring import JobContext, iso_utc, run_async, verify_hosts
from mirrorbot.jobs.outcome import Failure
from mirrorbot.jobs.sync import Sync
from mirrorbot.jobs.verify import (
    RepairFailure,
    VerifyResult,
    describe_repair,
    recheck_repairs,
    repair_drifts,
    verify_states,
)

__all__ = ["VerifyOutcome", "repair_after_sync", "run_verify"]


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
