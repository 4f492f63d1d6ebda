"""``mirrorbot verify``: does the mirror still hold every tag state claims, with that digest?

A shallow check is one ``HEAD`` per tag. ``--deep`` also fetches every
manifest (verifying its digest) and re-reads every blob it references,
verifying size and sha256 — what a pull would do, without keeping the bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mirrorbot.publish import Change
from mirrorbot.reference import parse_reference
from mirrorbot.registry.client import RegistryClient
from mirrorbot.registry.errors import MirrorbotError
from mirrorbot.registry.media import Descriptor
from mirrorbot.registry.pool import RegistryPool
from mirrorbot.state.store import NamespaceState

__all__ = ["Drift", "VerifyResult", "confirm_changes", "verify_states"]


@dataclass(frozen=True, slots=True)
class Drift:
    reference: str
    expected: str
    found: str | None  # None: the tag is gone from the mirror
    error: str | None = None

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
    slots = asyncio.Semaphore(concurrency)
    result = VerifyResult()
    checks = [
        (entry.target, tag, record.digest)
        for state in states
        for entry in state.images.values()
        for tag, record in entry.tags.items()
    ]
    result.tags = len(checks)
    walkers: dict[str, _Deep] = {}

    async def check(target: str, tag: str, expected: str) -> None:
        reference = f"{target}:{tag}"
        parsed = parse_reference(reference)
        client = pool.client(parsed.registry)
        async with slots:
            try:
                found = await client.manifest_head(parsed.repository, tag)
            except MirrorbotError as exc:
                result.drifts.append(Drift(reference, expected, None, f"could not check: {exc}"))
                return
            if found is None or found.digest != expected:
                result.drifts.append(Drift(reference, expected, found.digest if found else None))
                return
            if not deep:
                return
            walker = walkers.setdefault(parsed.name, _Deep(client, parsed.repository, result))
            try:
                await walker.walk(expected)
            except MirrorbotError as exc:
                result.drifts.append(
                    Drift(reference, expected, expected, f"content damaged: {exc}")
                )

    await asyncio.gather(*(check(*item) for item in checks))
    result.drifts.sort(key=lambda d: d.reference)
    return result


async def confirm_changes(
    changes: Sequence[Change], pool: RegistryPool, *, concurrency: int = 16
) -> tuple[list[Change], list[str]]:
    """Split changes into those the mirror holds (tag → recorded digest) and one line per other.

    ``publish`` merges what shard jobs reported: a record enters state only when
    the mirror answers a ``HEAD`` for its tag with its digest (a ``HEAD`` is no
    Docker Hub pull). A mirror that cannot be asked confirms nothing.
    """
    slots = asyncio.Semaphore(concurrency)

    async def check(change: Change) -> str | None:
        reference = change.mirror_reference
        parsed = parse_reference(reference)
        async with slots:
            try:
                found = await pool.client(parsed.registry).manifest_head(
                    parsed.repository, change.tag
                )
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

    verdicts = await asyncio.gather(*(check(change) for change in changes))
    kept = [change for change, verdict in zip(changes, verdicts, strict=True) if verdict is None]
    return kept, [verdict for verdict in verdicts if verdict is not None]
