"""The main job: list → plan → copy → record → publish.

One failing image never aborts the run: it is retried within the run, then
reported, and every success is still recorded. A tag enters state only from a
:class:`CopyResult`, i.e. after the target acknowledged the manifest with that
digest. A run that plans nothing sends no request to the target registry.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

import httpx

from mirrorbot.config import Config, ResolvedNamespace
from mirrorbot.domain.backups import make_backup
from mirrorbot.domain.changes import Change, ChangeKind
from mirrorbot.domain.naming import mirror_repository
from mirrorbot.domain.planner import (
    NamespacePlan,
    PlanItem,
    TagFilter,
    merge_plans,
    plan_namespace,
    tags_to_recheck,
)
from mirrorbot.domain.prune import Pruner, plan_prune
from mirrorbot.domain.shards import assign, shard_of
from mirrorbot.engine.copier import Copier, CopyResult, CopyStats
from mirrorbot.engine.registry.media import PlatformFilter
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.engine.registry.pulls import PullUsage, registry_label
from mirrorbot.engine.registry.retry import failure_cause
from mirrorbot.engine.sources import ListedRepository, ListedTag, Listing, namespace_source
from mirrorbot.errors import (
    BackupError,
    BlobIntegrityError,
    BreakerOpenError,
    ConfigError,
    ErrorCode,
    ListingError,
    MirrorbotError,
    NameCollisionError,
    PullBudgetError,
    RegistryError,
    RegistryUnreachableError,
    UnexpectedError,
)
from mirrorbot.jobs.progress import NullProgress, ProgressSink
from mirrorbot.jobs.referrers import with_referrers
from mirrorbot.jobs.timebudget import TimeBudget
from mirrorbot.jobs.verify import skip_change, unsupported_reason
from mirrorbot.reference import Reference
from mirrorbot.state.store import NamespaceState, StateStore, TagRecord

__all__ = [
    "Failure",
    "NamespaceRun",
    "Sync",
    "SyncOptions",
    "SyncReport",
    "copy_in_rounds",
    "stop_on_signals",
]

log = logging.getLogger("mirrorbot.sync")
INTERRUPTED = "interrupted (Ctrl-C)"
W = TypeVar("W")


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
    repair: bool = False  # then copy again what a shallow verify finds missing (job.py)
    retry_skipped: bool = False  # try tags state records as skipped (schema1, …) again


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


def _mirror(config: Config) -> str:
    return f"{config.mirror.registry}/{config.mirror.namespace}"


async def _bounded(limit: int, jobs: Iterable[Callable[[], Awaitable[None]]]) -> None:
    slots = asyncio.Semaphore(limit)

    async def guarded(job: Callable[[], Awaitable[None]]) -> None:
        async with slots:
            await job()

    await asyncio.gather(*(guarded(job) for job in jobs))


class Sync:
    """Runs the stages for a set of namespaces with one registry pool."""

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
        self._head_slots = asyncio.Semaphore(options.head_concurrency)
        self.stopping = False
        self._budget = TimeBudget()
        self._in_flight: set[asyncio.Task[Any]] = set()

    @property
    def synced_stamp(self) -> str:
        return self.now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

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

    # -- stages -------------------------------------------------------------

    async def list_all(self) -> None:
        mirror = _mirror(self.config)
        runs = [NamespaceRun(ns, mirror) for ns in self.selected_namespaces()]
        if self.options.images:
            runs = self._targeted(runs)
        self.report.runs = runs
        await _bounded(
            self.options.listing_concurrency, [partial(self._list_one, run) for run in runs]
        )

    def _targeted(self, runs: list[NamespaceRun]) -> list[NamespaceRun]:
        """Attach each requested reference to the namespace holding it (longest prefix)."""
        for reference in self.options.images:
            if reference.digest is not None and reference.tag is None:
                raise ConfigError(
                    f"{reference}: targeted sync mirrors tags; give the tag, not only a digest"
                )
            owners = [
                run
                for run in runs
                if reference.name.startswith(run.namespace.upstream("") + "/")
                or (not run.namespace.path and reference.registry == run.namespace.registry)
            ]
            if not owners:
                raise ConfigError(f"{reference}: no configured namespace holds this image")
            owner = max(owners, key=lambda run: len(run.namespace.upstream("")))
            owner.requested.append(reference)
        return [run for run in runs if run.requested]

    async def _list_one(self, run: NamespaceRun) -> None:
        ns = run.namespace
        limit = asyncio.timeout_at(self._budget.deadline)
        try:
            async with limit:
                await self._list(run)
        except Exception as exc:
            run.error = self._namespace_error("listed", exc, expired=limit.expired())
        if run.error is not None:
            log.error("%s: %s", ns.source, run.error)
            self.progress.listed(ns.source, None, run.error)
            return
        assert run.listing is not None
        self.progress.listed(ns.source, len(run.listing.repositories), None)
        self.report.warnings.extend(f"{ns.source}: {w}" for w in run.listing.skipped)

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

    async def _list(self, run: NamespaceRun) -> None:
        ns = run.namespace
        if run.requested:
            run.listing = await self._requested_listing(run)
            return
        source = namespace_source(ns, self.pool.reader(ns.registry), hub_client=self._hub_client)
        run.listing = await source.list()

    async def _requested_listing(self, run: NamespaceRun) -> Listing:
        """A listing of just the requested references (a bare repository means all its tags)."""
        ns = run.namespace
        prefix = ns.upstream("") + "/" if ns.path else f"{ns.registry}/"
        wanted: dict[str, set[str]] = {}
        for reference in run.requested:
            image = reference.name[len(prefix) :]
            tags = wanted.setdefault(image, set())
            if reference.tag is not None:
                tags.add(reference.tag)
            else:
                found = await self.pool.reader(ns.registry).tags(reference.repository)
                tags.update(found)
        repositories = tuple(
            ListedRepository(image, tuple(ListedTag(tag) for tag in sorted(tags)))
            for image, tags in sorted(wanted.items())
            if tags
        )
        return Listing(ns.source, repositories, ())

    def map_names(self) -> None:
        """Mirror names for every listed repository.

        A name two upstream repositories would share is refused for the listed
        newcomer(s): a repository already recorded in state keeps its name, and
        every other claimant fails as one image (exit 1) while the rest of its
        namespace and every other namespace is still mirrored. Collisions the
        config alone makes are caught when it is loaded (exit 2).
        """
        established: dict[str, str] = {}  # mirror repository -> upstream recorded in state
        listed: list[tuple[NamespaceRun, str, str, str]] = []  # run, repo path, upstream, mirror
        for run in self.report.runs:
            ns = run.namespace
            run.state = self.store.load(ns.source, run.mirror)
            for image, entry in run.state.images.items():
                established.setdefault(entry.target, ns.upstream(image))
            if run.listing is None:
                continue
            for repository in run.listing.repositories:
                try:
                    name = mirror_repository(
                        ns.name_template,
                        mirror_namespace=self.config.mirror.namespace,
                        source_registry=ns.registry,
                        source_path=ns.path,
                        repo=repository.path,
                        separator=ns.separator,
                    )
                except MirrorbotError as exc:
                    self.report.warnings.append(f"{ns.source}/{repository.path}: skipped: {exc}")
                    continue
                target = f"{self.config.mirror.registry}/{name}"
                listed.append((run, repository.path, ns.upstream(repository.path), target))
                run.targets[repository.path] = name
        claimants: dict[str, set[str]] = {}
        for _, _, upstream, target in listed:
            claimants.setdefault(target, set()).add(upstream)
        for run, path, upstream, target in listed:
            owner = established.get(target)
            rivals = sorted(claimants[target] - {upstream} | ({owner} if owner else set()))
            if owner == upstream or not rivals:
                continue
            del run.targets[path]
            self.report.failures.append(
                Failure(upstream, target, str(NameCollisionError(upstream, rivals[0], target)))
            )
            log.error("%s: not mirrored: %s is also the mirror of %s", upstream, target, rivals[0])

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
            async with self._head_slots:
                await head(key)

        await asyncio.gather(*(guarded(key) for key in keys))
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

    async def _backup(self, run: NamespaceRun, item: PlanItem) -> None:
        """``backup:``: keep the mirror's old image of a moved tag before it is overwritten."""
        template = run.namespace.backup
        old = run.state.lookup(item.image, item.tag) if run.state else None
        if template is None or item.kind != "updated" or old is None or run.state is None:
            return
        client = self.pool.client(item.target.registry, item.target.repository)
        backup = await make_backup(client, item.target.repository, template, item.tag, old)
        target = run.state.images[item.image].target
        self.report.changes.append(
            run.note("backup", item.image, backup.tag, target, backup.record)
        )

    async def _prune(self, planned: Sequence[tuple[NamespaceRun, NamespacePlan]]) -> None:
        """``prune: true``: delete gone tags from the mirror (a dry run only lists them)."""
        pruner = Pruner()
        for run, plan in planned:
            if not run.namespace.prune or run.requested or run.state is None or self.stopping:
                continue
            mine = [key for key in plan.gone if self._mine_image(run, key[0])]
            pruning = plan_prune(run.state, mine)
            self.report.warnings.extend(pruning.kept)
            for candidate in pruning.deletes:
                if self.options.dry_run:
                    self.report.pruning.extend(candidate.references)
                    continue
                registry = candidate.target.partition("/")[0]
                client = self.pool.client(registry, candidate.target.partition("/")[2])
                problem = await pruner.delete(client, registry, candidate)
                if problem is not None:
                    if problem:
                        self.report.warnings.append(problem)
                    continue
                self.report.changes.extend(
                    run.note("pruned", candidate.image, tag, candidate.target, record)
                    for tag, record in candidate.tags
                )

    async def _skip(self, run: NamespaceRun, item: PlanItem, reason: str) -> None:
        """Never copyable: recorded once as skipped, reported, not a failure."""
        self.report.warnings.append(f"{item.source}: skipped (unsupported): {reason}")
        change = await skip_change(
            self.pool,
            item.source,
            namespace=run.namespace.source,
            mirror=run.mirror,
            image=item.image,
            target_repository=item.target.name,
            reason=reason,
            synced=self.synced_stamp,
            digest=item.upstream_digest,
        )
        known = run.state.skipped_record(item.image, item.tag) if run.state else None
        if known is None or known.digest != change.record.digest:  # --retry-skipped: same as before
            self.report.changes.append(change)
        self.progress.finished(run.namespace.source, ok=True)

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
            plans = await asyncio.gather(
                *(self._plan_guarded(r, signatures=signatures) for r in eligible)
            )
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

    def _note_gone(self, planned: Sequence[tuple[NamespaceRun, NamespacePlan]]) -> None:
        """Mark in state the tags upstream no longer lists (they stay mirrored), and unmark
        the ones it lists again: what the index and CHANGELOG show as gone upstream."""
        for run, plan in planned:
            if run.requested or run.state is None:
                continue  # a targeted run lists only what it was asked for
            marks = [(key, self.synced_stamp) for key in plan.gone] + [
                (key, None) for key in plan.returned
            ]
            for (image, tag), gone in marks:
                record = run.state.lookup(image, tag)
                if record is None or (record.gone is None) == (gone is None):  # already so
                    continue
                if not self._mine_image(run, image):
                    continue
                kind: ChangeKind = "gone" if gone else "returned"
                target = run.state.images[image].target
                self.report.changes.append(
                    run.note(kind, image, tag, target, replace(record, gone=gone))
                )

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


async def copy_in_rounds(
    items: Sequence[W],
    copy_one: Callable[[W], Awaitable[None]],
    *,
    concurrency: int,
    retry_rounds: int,
    stopping: Callable[[], bool] = lambda: False,
) -> list[tuple[W, MirrorbotError]]:
    """Run ``copy_one`` over items, bounded; give failures worth it more rounds.

    A round retries only errors another attempt can fix (outages, cut streams);
    a missing image or a lying registry fails at once. Returns what still failed.
    """
    pending = list(items)
    final: list[tuple[W, MirrorbotError]] = []
    for round_number in range(retry_rounds + 1):
        failed: list[tuple[W, MirrorbotError]] = []

        async def attempt(item: W, failed: list[tuple[W, MirrorbotError]] = failed) -> None:
            try:
                await copy_one(item)
            except MirrorbotError as exc:
                failed.append((item, exc))
            except Exception as exc:
                log.debug("unexpected failure", exc_info=True)
                failed.append((item, UnexpectedError(f"{type(exc).__name__}: {exc}")))

        await _bounded(concurrency, [partial(attempt, item) for item in pending])
        last_round = round_number == retry_rounds or stopping()
        retry = [] if last_round else [(i, e) for i, e in failed if _worth_retrying(e)]
        for item, error in failed:
            if retry and any(item is again for again, _ in retry):
                log.warning("%s: will retry: %s", _describe_item(item), error)
                continue
            if not isinstance(error, BreakerOpenError):  # the breaker said it once already
                log.error("%s: %s", _describe_item(item), error)
            final.append((item, error))
        if not retry:
            break
        pending = [item for item, _ in retry]
    return final


def _describe_item(item: object) -> str:
    source = getattr(item, "source", None)
    if source is None and isinstance(item, tuple):
        source = getattr(item[-1], "source", None)
    return str(source if source is not None else item)


def _worth_retrying(exc: MirrorbotError) -> bool:
    """Another round can fix outages and cut streams, not a missing image or a lying registry."""
    if isinstance(exc, BackupError) and isinstance(exc.__cause__, MirrorbotError):
        return _worth_retrying(exc.__cause__)
    if isinstance(exc, RegistryUnreachableError | BlobIntegrityError):
        return True
    if not isinstance(exc, RegistryError):
        return False
    # MANIFEST_BLOB_UNKNOWN on a push: a concurrent writer touched a child; the next round finds it.
    # Not 401: the auth flow already fetched a fresh token; a refusal stays a refusal.
    return exc.temporary or exc.status == 408 or exc.has(ErrorCode.MANIFEST_BLOB_UNKNOWN)


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
