"""``mirrorbot verify``: does the mirror still hold every tag state claims, with that digest?

A shallow check is one ``HEAD`` per tag. ``--deep`` also fetches every
manifest (verifying its digest) and re-reads every blob it references,
verifying size and sha256 — what a pull would do, without keeping the bytes.

``repair_drifts`` copies again, from upstream, every tag verify found missing,
drifted or damaged: what state records is the truth the mirror must match. A
tag whose upstream digest has moved on since it was recorded gets what
upstream has now, recorded as ``updated`` (the mirror never serves a digest
upstream no longer has under that tag); every other one is ``repaired``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mirrorbot.config import ResolvedNamespace
from mirrorbot.domain.changes import Change, ChangeKind
from mirrorbot.engine.concurrency import bounded_map
from mirrorbot.engine.copier import Copier
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.registry.media import Descriptor, PlatformFilter
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.errors import MirrorbotError
from mirrorbot.reference import Reference, parse_reference
from mirrorbot.state.store import NamespaceState

__all__ = [
    "Drift",
    "RepairFailure",
    "VerifyResult",
    "confirm_changes",
    "describe_repair",
    "recheck_repairs",
    "repair_drifts",
    "verify_states",
]


@dataclass(frozen=True, slots=True)
class Drift:
    reference: str
    expected: str
    found: str | None  # None: the tag is gone from the mirror
    error: str | None = None
    damaged: bool = False  # deep: the manifest is there, its content is not
    # Where state records it: what a repair needs to copy it again.
    namespace: str = ""
    mirror: str = ""
    image: str = ""
    tag: str = ""

    @property
    def repairable(self) -> bool:
        """Missing, drifted or damaged; not a tag that could not be checked at all."""
        return self.error is None or self.damaged

    def describe(self) -> str:
        if self.error:
            return f"{self.reference}: {self.error}"
        if self.found is None:
            return f"{self.reference}: missing from the mirror (state records {self.expected})"
        return f"{self.reference}: mirror has {self.found}, state records {self.expected}"


@dataclass(slots=True)
class VerifyResult:
    tags: int = 0
    blobs: int = 0
    bytes_read: int = 0
    drifts: list[Drift] = field(default_factory=list)


class _Deep:
    """Walks one repository's manifests and blobs, each blob read once per repository."""

    def __init__(self, client: RegistryClient, repository: str, result: VerifyResult) -> None:
        self.client = client
        self.repository = repository
        self.result = result
        self.seen: set[str] = set()

    async def walk(self, digest: str) -> None:
        manifest = await self.client.manifest_get(self.repository, digest)
        for child in manifest.children:
            await self.walk(child.digest)
        for blob in manifest.blobs:
            if blob.digest in self.seen or (blob.is_foreign and blob.urls):
                continue
            self.seen.add(blob.digest)

            async def read(blob: Descriptor = blob) -> int:
                count = 0
                async with self.client.blob_open(self.repository, blob) as chunks:
                    async for chunk in chunks:
                        count += len(chunk)
                return count

            self.result.bytes_read += await self.client.retrying(
                read, f"{self.repository}@{blob.digest}"
            )
            self.result.blobs += 1


async def verify_states(
    states: Iterable[NamespaceState],
    pool: RegistryPool,
    *,
    concurrency: int = 16,
    deep: bool = False,
) -> VerifyResult:
    """HEAD every recorded tag in the mirror (and with ``deep``, re-read everything)."""
    result = VerifyResult()
    checks = [
        (entry.target, tag, record.digest, (state.source, state.mirror, image))
        for state in states
        for image, entry in state.images.items()
        for tag, record in entry.tags.items()
    ]
    result.tags = len(checks)
    walkers: dict[str, _Deep] = {}

    async def check(item: tuple[str, str, str, tuple[str, str, str]]) -> None:
        target, tag, expected, origin = item
        reference = f"{target}:{tag}"
        parsed = parse_reference(reference)
        client = pool.client(parsed.registry)
        namespace, mirror, image = origin

        def drift(found: str | None, error: str | None = None, damaged: bool = False) -> Drift:
            return Drift(reference, expected, found, error, damaged, namespace, mirror, image, tag)

        try:
            found = await client.manifest_head(parsed.repository, tag)
        except MirrorbotError as exc:
            result.drifts.append(drift(None, f"could not check: {exc}"))
            return
        if found is None or found.digest != expected:
            result.drifts.append(drift(found.digest if found else None))
            return
        if not deep:
            return
        walker = walkers.setdefault(parsed.name, _Deep(client, parsed.repository, result))
        try:
            await walker.walk(expected)
        except MirrorbotError as exc:
            result.drifts.append(drift(expected, f"content damaged: {exc}", damaged=True))

    await bounded_map(check, checks, concurrency)
    result.drifts.sort(key=lambda d: d.reference)
    return result


@dataclass(frozen=True, slots=True)
class RepairFailure:
    """A tag the repair could not bring back, and why, in one line."""

    upstream: str
    target: str
    error: str


async def repair_drifts(
    drifts: Sequence[Drift],
    states: Iterable[NamespaceState],
    namespaces: Mapping[str, ResolvedNamespace],
    copier: Copier,
    *,
    synced: str,
    concurrency: int = 4,
    stopping: Callable[[], bool] = lambda: False,
) -> tuple[list[Change], list[RepairFailure]]:
    """Copy every repairable drift again from upstream; one failure line for each that is not."""
    by_key = {(state.source, state.mirror): state for state in states}
    changes: list[Change] = []
    failures: list[RepairFailure] = []

    async def repair(drift: Drift) -> None:
        state = by_key.get((drift.namespace, drift.mirror))
        record = state.lookup(drift.image, drift.tag) if state is not None else None
        ns = namespaces.get(drift.namespace)
        upstream = "/".join(p for p in (drift.namespace, drift.image) if p) + f":{drift.tag}"
        if not drift.repairable or state is None or record is None:
            failures.append(RepairFailure(upstream, drift.reference, drift.error or "not in state"))
            return
        if ns is None:
            error = f"namespace {drift.namespace} is no longer in the config"
            failures.append(RepairFailure(upstream, drift.reference, error))
            return
        repository = "/".join(p for p in (ns.path, drift.image) if p)
        source = Reference(ns.registry, repository, drift.tag)
        target = parse_reference(drift.reference)
        if stopping():
            failures.append(RepairFailure(str(source), drift.reference, "run stopped first"))
            return
        try:
            result = await copier.copy(
                source,
                target,
                platforms=PlatformFilter.parse(ns.platforms),
                force=drift.damaged,
            )
        except MirrorbotError as exc:
            error = " ".join(str(exc).split())  # one line, whatever a registry said
            failures.append(RepairFailure(str(source), drift.reference, error))
            return
        moved = result.source_digest != record.upstream_digest
        kind: ChangeKind = "updated" if moved else "repaired"
        changes.append(
            Change.from_copy(
                result,
                kind=kind,
                namespace=state.source,
                mirror=state.mirror,
                image=drift.image,
                tag=drift.tag,
                synced=synced,
                previous=record.digest if moved else None,
            )
        )

    await bounded_map(repair, drifts, concurrency)
    changes.sort(key=lambda c: (c.namespace, c.image, c.tag))
    failures.sort(key=lambda f: f.target)
    return changes, failures


def describe_repair(change: Change) -> str:
    """One line for a tag a repair copied again."""
    line = f"{change.kind}: {change.upstream} → {change.mirror_reference} ({change.record.digest})"
    if change.previous:
        line += f": upstream moved on since {change.previous} was recorded; copied what it has now"
    return line


async def recheck_repairs(
    changes: Sequence[Change], pool: RegistryPool, *, deep: bool = False
) -> list[RepairFailure]:
    """Verify what a repair recorded: a copy the mirror acknowledged can still be damaged."""
    states: dict[tuple[str, str], NamespaceState] = {}
    for change in changes:
        state = states.setdefault(
            (change.namespace, change.mirror), NamespaceState(change.namespace, change.mirror)
        )
        state.record(change.image, change.target_repository, change.tag, change.record)
    result = await verify_states(states.values(), pool, deep=deep)
    return [
        RepairFailure(
            drift.reference, drift.reference, f"still wrong after the repair: {drift.describe()}"
        )
        for drift in result.drifts
    ]


async def confirm_changes(
    changes: Sequence[Change], pool: RegistryPool, *, concurrency: int = 16
) -> tuple[list[Change], list[str]]:
    """Split changes into those the mirror holds (tag → recorded digest) and one line per other.

    ``publish`` merges what shard jobs reported: a record enters state only when
    the mirror answers a ``HEAD`` for its tag with its digest (a ``HEAD`` is no
    Docker Hub pull). A mirror that cannot be asked confirms nothing. A skip copies
    nothing and has nothing to confirm; a gone or returned mark is a record the
    mirror must still hold.
    """

    async def check(change: Change) -> str | None:
        if change.kind == "skipped":
            return None  # nothing was copied: state records only that it never will be
        reference = change.mirror_reference
        parsed = parse_reference(reference)
        try:
            found = await pool.client(parsed.registry).manifest_head(parsed.repository, change.tag)
        except MirrorbotError as exc:
            return f"{reference}: could not confirm it in the mirror: {exc}"
        if found is None:
            return f"{reference}: not in the mirror; not recorded"
        if found.digest != change.record.digest:
            return (
                f"{reference}: the mirror has {found.digest}, the fragment claims "
                f"{change.record.digest}; not recorded"
            )
        return None

    verdicts = await bounded_map(check, changes, concurrency)
    kept = [change for change, verdict in zip(changes, verdicts, strict=True) if verdict is None]
    return kept, [verdict for verdict in verdicts if verdict is not None]
