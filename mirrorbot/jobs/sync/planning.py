"""Sync's planning stage: re-check mutable tags upstream, plan each namespace, pick this shard's part.

Planning one namespace may fail or outlast the time budget without touching the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from mirrorbot.domain.planner import NamespacePlan, PlanItem, plan_namespace, tags_to_recheck
from mirrorbot.domain.shards import assign, shard_of
from mirrorbot.engine.concurrency import bounded_map
from mirrorbot.engine.sources import Listing
from mirrorbot.errors import MirrorbotError
from mirrorbot.jobs.outcome import NamespaceRun
from mirrorbot.jobs.sync.listing import ListingStage
from mirrorbot.state.store import NamespaceState

__all__ = ["PlanningStage"]

log = logging.getLogger("mirrorbot.sync")


class PlanningStage(ListingStage):
    """Plans from listings and state; decides which images are this shard's."""

    async def recheck(
        self, run: NamespaceRun, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], str | None]:
        """HEAD the source for mutable tags: cheap, and not counted as a pull by Docker Hub."""
        ns = run.namespace
        client = self.pool.reader(ns.registry)
        found: dict[tuple[str, str], str | None] = {}

        async def head(key: tuple[str, str]) -> None:
            image, tag = key
            repository = f"{ns.path}/{image}" if ns.path else image
            try:
                descriptor = await client.manifest_head(repository, tag)
            except MirrorbotError as exc:
                self.report.warnings.append(
                    f"{ns.registry}/{repository}:{tag}: not re-checked: {exc}"
                )
                return
            found[key] = descriptor.digest if descriptor else None

        async def guarded(key: tuple[str, str]) -> None:
            async with self._head_slots:  # shared by every namespace planned at once
                await head(key)

        await bounded_map(guarded, keys)
        return found

    async def plan(self, run: NamespaceRun, *, signatures: bool) -> NamespacePlan | None:
        if run.listing is None or run.state is None:
            return None
        state = self._state_with_changes(run) if signatures else run.state
        known = tuple(r for r in run.listing.repositories if r.path in run.targets)
        listing = Listing(run.listing.source, known, run.listing.skipped)
        keys = tags_to_recheck(run.rules, listing, state, signatures_phase=signatures)
        heads = await self.recheck(run, keys) if keys else {}
        plan = plan_namespace(
            run.rules,
            listing,
            state,
            mirror=run.mirror,
            targets=run.targets,
            head_digests=heads,
            signatures=signatures,
            retry_skipped=self.options.retry_skipped,
            keep=None if run.requested else run.namespace.keep,  # a named tag is wanted
        )
        if plan.keep_note:
            self.report.warnings.append(plan.keep_note)
        run.plans.append(plan)
        return plan

    def _mine(self, run: NamespaceRun, item: PlanItem) -> bool:
        return self._mine_image(run, item.image)

    def _mine_image(self, run: NamespaceRun, image: str) -> bool:
        if self.options.shard is None:
            return True
        index, count = self.options.shard
        if self._assignments is None:
            self._assignments = {
                **assign(self.report.shard_weights(), count),
                **self.options.assignments,
            }
        return shard_of(run.image_key(image), self._assignments, count) == index

    def _state_with_changes(self, run: NamespaceRun) -> NamespaceState:
        assert run.state is not None
        state = run.state.copy()
        for change in self.report.changes:
            if change.namespace == run.namespace.source and change.kind not in (
                "skipped",
                "pruned",
            ):
                state.record(change.image, change.target_repository, change.tag, change.record)
        return state

    async def _plan_guarded(self, run: NamespaceRun, *, signatures: bool) -> NamespacePlan | None:
        """Planning one namespace may fail or outlast the budget without touching the others."""
        limit = asyncio.timeout_at(self._budget.deadline)
        try:
            async with limit:
                return await self.plan(run, signatures=signatures)
        except Exception as exc:
            run.error = self._namespace_error("planned", exc, expired=limit.expired())
        log.error("%s: %s", run.namespace.source, run.error)
        return None
