"""Run image-syncer rules with mirrorbot's engine, state and CHANGELOG.

Each rule expands into concrete (source, target) pairs: all tags, listed
tags, tags matching a regex, or one digest, to each destination (keeping or
renaming tags). A pair is recorded in state like any mirrored tag — under the
upstream namespace (the source repository's parent), with the destination
repository as the mirror, in a state file of its own
(``<registry>/<namespace>@<destination>.json``: one image may go to several
places) — so ``verify``, ``find``, the index and the CHANGELOG work unchanged. Digest-only rules without a destination tag are copied (when
the target lacks the digest) and logged in the CHANGELOG, but have no tag to
record in state. A pair named twice (by two rules) is copied and recorded once.
With ``--os``/``--arch``, an image with none of the wanted platforms is
skipped with one line, not failed (image-syncer's behaviour).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from mirrorbot.config.imagesyncer import Rule
from mirrorbot.config.regex import compile_tag_regexes
from mirrorbot.domain.changes import Change
from mirrorbot.engine.concurrency import bounded_settle
from mirrorbot.engine.copier import Copier, CopyResult
from mirrorbot.engine.registry.media import PlatformFilter
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.engine.registry.retry import failure_cause
from mirrorbot.errors import MirrorbotError, NoMatchingPlatformError
from mirrorbot.jobs.outcome import Failure, SyncReport
from mirrorbot.jobs.rounds import copy_in_rounds
from mirrorbot.reference import Reference
from mirrorbot.state.store import NamespaceState, StateStore

__all__ = ["RuleOptions", "RulePair", "RuleWork", "expand_rules", "run_rules"]

log = logging.getLogger("mirrorbot.rules")


@dataclass(frozen=True, slots=True)
class RuleOptions:
    force: bool = False  # image-syncer --force: push even what the target already has
    platforms: PlatformFilter = field(default_factory=PlatformFilter)
    concurrency: int = 5  # image-syncer --proc
    retry_rounds: int = 2  # image-syncer --retries
    mutable: tuple[str, ...] = ("latest",)


@dataclass(frozen=True, slots=True)
class RulePair:
    rule: str
    source: Reference  # with tag or digest
    target: Reference  # with tag, or digest only

    @property
    def namespace(self) -> str:
        """The source's parent: ``registry/namespace``, or the registry for ``registry/repository``."""
        parent, _, _ = self.source.repository.rpartition("/")
        return f"{self.source.registry}/{parent}" if parent else self.source.registry

    @property
    def image(self) -> str:
        return self.source.repository.rpartition("/")[2]

    @property
    def mirror(self) -> str:
        """The destination repository: rules may send one image to several places."""
        return self.target.name


@dataclass(frozen=True, slots=True)
class RuleWork:
    """One pair to copy; ``source`` is what logs name it by (see ``rounds._describe_item``)."""

    pair: RulePair
    previous: str | None  # the digest state holds, for an update
    kind: Literal["new", "updated"]

    @property
    def source(self) -> str:
        return f"{self.pair.source} → {self.pair.target}"


async def expand_rules(
    rules: Sequence[Rule], pool: RegistryPool, report: SyncReport
) -> list[RulePair]:
    """Concrete pairs; a rule whose source cannot be listed is a failure, not a crash."""

    async def expand(rule: Rule) -> list[RulePair]:
        if rule.digest is not None:
            source = Reference(rule.source.registry, rule.source.repository, None, rule.digest)
            return [
                RulePair(
                    rule.key,
                    source,
                    _target(destination.repository, destination.tags[:1], rule.digest),
                )
                for destination in rule.destinations
            ]
        tags = list(rule.tags)
        if not tags:
            reader = pool.reader(rule.source.registry, rule.source.repository)
            listed = await reader.tags(rule.source.repository)
            # image-syncer matches unanchored (Go regexp.MatchString): /a+/ takes `banana`.
            tags = [t for t in listed if rule.regex is None or rule.regex.search(t)]
            if not listed:
                report.warnings.append(f"{rule.key}: no tags upstream")
        pairs = []
        for destination in rule.destinations:
            renamed = destination.tags or tuple(tags)
            for tag, new_tag in zip(tags, renamed, strict=True):
                pairs.append(
                    RulePair(
                        rule.key,
                        rule.source.with_tag(tag),
                        Reference(
                            destination.repository.registry,
                            destination.repository.repository,
                            new_tag,
                        ),
                    )
                )
        return pairs

    # Every rule is expanded whatever the others do: a listing failure is that rule's result.
    results = await bounded_settle(expand, rules, expected=MirrorbotError)
    pairs: dict[tuple[Reference, Reference], RulePair] = {}
    for rule, result in zip(rules, results, strict=True):
        if isinstance(result, MirrorbotError):
            report.failures.append(Failure(rule.key, "", f"listing failed: {result}"))
        else:
            for pair in result:  # the same source → target from two rules: once
                pairs.setdefault((pair.source, pair.target), pair)
    return list(pairs.values())


def _target(repository: Reference, tags: tuple[str, ...], digest: str) -> Reference:
    if tags:
        return Reference(repository.registry, repository.repository, tags[0])
    return Reference(repository.registry, repository.repository, None, digest)


async def run_rules(
    rules: Sequence[Rule],
    pool: RegistryPool,
    store: StateStore,
    options: RuleOptions,
    *,
    now: dt.datetime,
    dry_run: bool = False,
) -> SyncReport:
    """Expand, skip what state already holds (re-checking mutable tags), copy, record."""
    report = SyncReport(dry_run=dry_run, command="rules")
    pairs = await expand_rules(rules, pool, report)
    states: dict[tuple[str, str], NamespaceState] = {}
    mutable = compile_tag_regexes(options.mutable)
    work: list[RuleWork] = []
    for pair in pairs:
        key = (pair.namespace, pair.mirror)
        if key not in states:
            states[key] = store.load(pair.namespace, pair.mirror)
        record = states[key].lookup(pair.image, pair.target.tag) if pair.target.tag else None
        if record is None:
            work.append(RuleWork(pair, None, "new"))
            continue
        if options.force or any(p.fullmatch(pair.target.tag or "") for p in mutable):
            head = await pool.reader(pair.source.registry, pair.source.repository).manifest_head(
                pair.source.repository, pair.source.identifier
            )
            if options.force or (head is not None and head.digest != record.upstream_digest):
                work.append(RuleWork(pair, record.digest, "updated"))
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if dry_run:
        for item in work:
            report.warnings.append(f"would copy ({item.kind}): {item.source}")
        report.duration = time.monotonic() - report.started
        return report
    copier = Copier(pool, blob_concurrency=max(2, options.concurrency), probe_targets=True)

    async def copy_one(item: RuleWork) -> None:
        pair = item.pair
        try:
            result = await copier.copy(
                pair.source,
                pair.target,
                platforms=options.platforms,
                force=options.force,
                skip_other_platforms=True,
            )
        except NoMatchingPlatformError as exc:
            report.warnings.append(f"skipped {item.source}: {exc}")
            return
        _record(report, pair, item.previous, item.kind, result, stamp)

    failures = await copy_in_rounds(
        work, copy_one, concurrency=options.concurrency, retry_rounds=options.retry_rounds
    )
    for item, exc in failures:
        report.failures.append(
            Failure(str(item.pair.source), str(item.pair.target), str(exc), failure_cause(exc))
        )
    report.duration = time.monotonic() - report.started
    return report


def _record(
    report: SyncReport,
    pair: RulePair,
    previous: str | None,
    kind: Literal["new", "updated"],
    result: CopyResult,
    stamp: str,
) -> None:
    report.stats.add(result.stats)
    if result.already_present:
        report.already_present += 1
    if pair.target.tag is None:
        report.warnings.append(
            f"{pair.source} → {pair.target.name}@{result.digest} (by digest: not in state)"
        )
        return
    if kind == "updated" and previous == result.digest:
        return  # --force pushed the digest state already holds: nothing changed
    report.changes.append(
        Change.from_copy(
            result,
            kind=kind,
            namespace=pair.namespace,
            mirror=pair.mirror,
            image=pair.image,
            tag=pair.target.tag,
            synced=stamp,
            previous=previous,
        )
    )
