"""What a run found and did: the per-namespace runs, failures and the report.

Shared by the jobs that copy (``sync``, ``rules``, ``sync --repair``) and read by
the renderers (:mod:`mirrorbot.jobs.report`) and the wiring that publishes:
its own module, so no job imports another to describe its outcome.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mirrorbot.config import ResolvedNamespace
from mirrorbot.domain.changes import Change, ChangeKind
from mirrorbot.domain.planner import NamespacePlan, TagFilter, merge_plans
from mirrorbot.engine.copier import CopyStats
from mirrorbot.engine.registry.pulls import PullUsage
from mirrorbot.engine.sources import Listing
from mirrorbot.reference import Reference
from mirrorbot.state.store import NamespaceState, TagRecord

__all__ = ["INTERRUPTED", "Failure", "NamespaceRun", "SyncReport"]

INTERRUPTED = "interrupted (Ctrl-C)"


@dataclass(frozen=True, slots=True)
class Failure:
    upstream: str
    target: str
    error: str
    cause: str = ""  # code and registry (failure_cause): what failures are grouped by


@dataclass(slots=True)
class NamespaceRun:
    """One namespace through the run: its listing, state, plans and outcome."""

    namespace: ResolvedNamespace
    mirror: str
    listing: Listing | None = None
    state: NamespaceState | None = None
    targets: dict[str, str] = field(default_factory=dict)
    plans: list[NamespacePlan] = field(default_factory=list)
    error: str | None = None
    requested: list[Reference] = field(default_factory=list)  # targeted sync

    @property
    def rules(self) -> TagFilter:
        """Targeted references are always re-checked: the caller says they may have changed."""
        return _RecheckAll(self.namespace) if self.requested else self.namespace

    def image_key(self, image: str) -> str:
        return self.namespace.upstream(image)

    def note(
        self, kind: ChangeKind, image: str, tag: str, target_repository: str, record: TagRecord
    ) -> Change:
        """A change that copies nothing from upstream (a gone mark, a backup, a prune)."""
        return Change(
            kind=kind,
            namespace=self.namespace.source,
            mirror=self.mirror,
            image=image,
            tag=tag,
            upstream=f"{self.namespace.upstream(image)}:{tag}",
            target_repository=target_repository,
            record=record,
        )


@dataclass(frozen=True, slots=True)
class _RecheckAll:
    namespace: ResolvedNamespace

    @property
    def signatures(self) -> bool:
        return self.namespace.signatures

    def tag_selected(self, tag: str) -> bool:
        return self.namespace.tag_selected(tag)

    def is_mutable(self, tag: str) -> bool:
        return True


@dataclass(slots=True)
class SyncReport:
    runs: list[NamespaceRun] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    already_present: int = 0
    stats: CopyStats = field(default_factory=CopyStats)
    started: float = field(default_factory=time.monotonic)
    duration: float = 0.0
    dry_run: bool = False
    stopped: bool = False  # SIGTERM or time budget: stopped early, what completed is recorded
    stop_reason: str = "SIGTERM"
    not_started: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    pruning: list[str] = field(default_factory=list)  # mirror tags a dry run would delete
    # Not started for a pull budget (upstream, registry): not failures, the next run copies them.
    deferred: list[tuple[str, str]] = field(default_factory=list)
    pulls: list[PullUsage] = field(default_factory=list)  # registries that count pulls
    command: str = "sync"  # what the report is headed with: "sync" or "rules"

    @property
    def plans(self) -> list[NamespacePlan]:
        """One plan per namespace (its image and signature phases merged)."""
        merged = (merge_plans(run.plans) for run in self.runs)
        return [plan for plan in merged if plan is not None]

    @property
    def listing_errors(self) -> list[str]:
        return [f"{run.namespace.source}: {run.error}" for run in self.runs if run.error]

    @property
    def exit_code(self) -> int:
        if self.stopped and self.stop_reason == INTERRUPTED:
            return 130  # Ctrl-C: what finished is still published, as after SIGTERM
        return 1 if self.failures or self.listing_errors or self.stopped else 0

    def shard_weights(self) -> dict[str, int]:
        """Tags each image would copy (by upstream repository): what a shard spends time on."""
        weights: dict[str, int] = {}
        for run in self.runs:
            for plan in run.plans:
                for item in plan.items:
                    key = run.image_key(item.image)
                    weights[key] = weights.get(key, 0) + 1
        return weights
