"""The copy engine: registry to registry, streaming, children before parents.

For each image: blobs first (already there → skip; known in another target
repository this run → cross-repo mount; otherwise stream source → target with
the digest verified on the fly), then the child manifests of an index, then
the tagged manifest with the source's exact bytes. Each blob is uploaded at
most once per run per target registry; every other repository mounts it.
Nothing touches local disk, and memory is bounded by the number of streams in
flight times the chunk size.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from mirrorbot.engine.backends.readable import ReadableRegistry
from mirrorbot.engine.concurrency import run_all
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.registry.integrity import verified_stream
from mirrorbot.engine.registry.media import (
    IMAGE_CONFIG_TYPES,
    Descriptor,
    Manifest,
    Platform,
    PlatformFilter,
    filter_index,
    platform_of_config,
)
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.engine.registry.pulls import ManifestCache
from mirrorbot.errors import MirrorbotError, NoMatchingPlatformError
from mirrorbot.reference import Reference

__all__ = ["BlobLedger", "Copier", "CopyResult", "CopyStats", "fallback_tag", "signature_tags"]

SIGNATURE_SUFFIXES = (".sig", ".att", ".sbom")
MAX_CONFIG_SIZE = 1024 * 1024


@dataclass(slots=True)
class CopyStats:
    """What a copy did to the target (summed over a run for the report)."""

    blobs_uploaded: int = 0
    bytes_uploaded: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    manifests_pushed: int = 0
    manifests_skipped: int = 0

    def add(self, other: CopyStats) -> None:
        self.blobs_uploaded += other.blobs_uploaded
        self.bytes_uploaded += other.bytes_uploaded
        self.blobs_mounted += other.blobs_mounted
        self.blobs_skipped += other.blobs_skipped
        self.manifests_pushed += other.manifests_pushed
        self.manifests_skipped += other.manifests_skipped


@dataclass(frozen=True, slots=True)
class CopyResult:
    """A verified copy: the target acknowledged ``digest`` for ``target``."""

    source: Reference
    target: Reference
    digest: str
    media_type: str
    size: int
    platforms: tuple[str, ...]
    source_digest: str
    already_present: bool = False
    stats: CopyStats = field(default_factory=CopyStats)
    referrers: tuple[tuple[str, str], ...] = ()  # (digest, artifactType): mirrorbot.jobs.referrers

    @property
    def filtered(self) -> bool:
        """True when a platform filter produced a new index (and so a new digest)."""
        return self.digest != self.source_digest


class BlobLedger:
    """What this run has learned about which target repositories hold which blobs."""

    def __init__(self) -> None:
        self._holders: dict[str, set[str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._manifests: set[tuple[str, str]] = set()
        self._manifest_locks: dict[tuple[str, str], asyncio.Lock] = {}

    def holders(self, digest: str) -> set[str]:
        return self._holders.get(digest, set())

    def record(self, digest: str, repository: str) -> None:
        self._holders.setdefault(digest, set()).add(repository)

    def lock(self, digest: str) -> asyncio.Lock:
        """Serialises decisions about one blob so that it is uploaded once, then mounted."""
        return self._locks.setdefault(digest, asyncio.Lock())

    def has_manifest(self, repository: str, digest: str) -> bool:
        return (repository, digest) in self._manifests

    def record_manifest(self, repository: str, digest: str) -> None:
        self._manifests.add((repository, digest))

    def manifest_lock(self, repository: str, digest: str) -> asyncio.Lock:
        """One push of a manifest at a time: Distribution races on concurrent identical pushes."""
        return self._manifest_locks.setdefault((repository, digest), asyncio.Lock())


def fallback_tag(digest: str) -> str:
    """The referrers tag schema: ``sha256:abc…`` → ``sha256-abc…``."""
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}-{hex_part}"


def signature_tags(digest: str) -> tuple[str, ...]:
    """cosign's tag convention: ``sha256-<hex>.sig`` / ``.att`` / ``.sbom``."""
    return tuple(f"{fallback_tag(digest)}{suffix}" for suffix in SIGNATURE_SUFFIXES)


@dataclass(slots=True)
class _Job:
    """One copy in progress: the two ends and its own counters."""

    source: ReadableRegistry
    source_repository: str
    target: RegistryClient
    target_repository: str
    reference: str
    stats: CopyStats = field(default_factory=CopyStats)
    # Config blobs already read (for the platform): uploaded from here, not fetched twice.
    small_blobs: dict[str, bytes] = field(default_factory=dict)
    # The target repository had no tags when this run first looked: nothing to HEAD for.
    fresh_target: bool = False


class Copier:
    """Copies images between registries of a :class:`RegistryPool`."""

    def __init__(
        self,
        pool: RegistryPool,
        *,
        blob_concurrency: int = 8,
        manifest_concurrency: int = 8,
        probe_targets: bool = False,
        on_uploaded: Callable[[int], None] | None = None,
    ) -> None:
        self.pool = pool
        self._on_uploaded = on_uploaded  # bytes of each blob once the target has it (progress)
        # With probe_targets, one tags/list per target repository replaces the HEADs a
        # copy would make to find out what is already there (a sync copies many tags
        # into each repository; a cold one finds them all empty).
        self._probe_targets = probe_targets
        self._target_tags: dict[tuple[str, str], set[str] | None] = {}
        self._probe_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._blob_slots = asyncio.Semaphore(blob_concurrency)
        self._manifest_slots = asyncio.Semaphore(manifest_concurrency)
        self._ledgers: dict[str, BlobLedger] = {}
        # Upstream manifests read this run: each digest is one GET (one Docker Hub pull).
        self.manifests = ManifestCache()

    def ledger(self, registry: str) -> BlobLedger:
        return self._ledgers.setdefault(registry, BlobLedger())

    async def _tags_before_run(self, target: RegistryClient, repository: str) -> set[str] | None:
        """The target repository's tags as this run first saw them; None when unknown."""
        key = (target.registry, repository)
        async with self._probe_locks.setdefault(key, asyncio.Lock()):
            if key not in self._target_tags:
                try:
                    self._target_tags[key] = set(await target.tags(repository))
                except MirrorbotError:
                    self._target_tags[key] = None  # cannot list: HEAD everything as usual
            return self._target_tags[key]

    async def copy(
        self,
        source: Reference,
        target: Reference,
        *,
        platforms: PlatformFilter | None = None,
        force: bool = False,
        source_manifest: Manifest | None = None,
        skip_other_platforms: bool = False,
        source_digest: str | None = None,
        reshape: Callable[[Manifest], Manifest] | None = None,
    ) -> CopyResult:
        """Copy one reference (tag or digest; every platform unless filtered).

        Without ``force``, a target that already holds the same digest under
        the target tag is left alone (one HEAD request). ``source_digest`` is the
        tag's digest when the caller already knows it (a listing that carries
        digests, a re-check HEAD of this run): the source is then not asked again.
        ``reshape`` rewrites the (platform-filtered) manifest before it is pushed,
        e.g. :func:`mirrorbot.jobs.referrers.fallback_types_filter`; a new digest is
        recorded as a platform filter's is.
        """
        job = _Job(
            source=self.pool.reader(source.registry, source.repository),
            source_repository=source.repository,
            target=self.pool.client(target.registry, target.repository),
            target_repository=target.repository,
            reference=str(source),
        )
        manifest = source_manifest or await self._source_manifest(job, source, source_digest)
        wanted = platforms or PlatformFilter()
        top = filter_index(manifest, wanted, str(source)) if manifest.is_index else manifest
        if reshape is not None:
            top = reshape(top)
        if target.digest is not None and target.digest != top.digest:
            raise MirrorbotError(
                f"{target}: a digest reference can only receive {top.digest} from {source}"
            )
        identifier = target.tag if target.tag is not None else top.digest
        platforms_found = top.platforms() if top.is_index else await self._image_platform(job, top)
        if (
            skip_other_platforms  # image-syncer: a single image of another platform is skipped
            and not top.is_index
            and platforms_found
            and not wanted.matches(Platform.parse(platforms_found[0]))
        ):
            raise NoMatchingPlatformError(
                str(source), top.media_type, f"its platform {platforms_found[0]} is not wanted"
            )
        result = CopyResult(
            source=source,
            target=Reference(target.registry, target.repository, target.tag, top.digest),
            digest=top.digest,
            media_type=top.media_type,
            size=top.size,
            platforms=platforms_found,
            source_digest=manifest.digest,
            stats=job.stats,
        )
        known_tags = (
            await self._tags_before_run(job.target, target.repository)
            if self._probe_targets
            else None
        )
        job.fresh_target = known_tags == set()
        needs_head = known_tags is None or target.tag is None or target.tag in known_tags
        if not force and needs_head:
            existing = await job.target.manifest_head(target.repository, identifier)
            if existing is not None and existing.digest == top.digest:
                job.stats.manifests_skipped += 1
                return replace(result, already_present=True)
        await self._copy_contents(job, top)
        ledger = self.ledger(job.target.registry)
        async with ledger.manifest_lock(target.repository, top.digest):
            await job.target.manifest_put(target.repository, identifier, top)
            ledger.record_manifest(target.repository, top.digest)
        job.stats.manifests_pushed += 1
        return result

    async def _source_manifest(
        self, job: _Job, source: Reference, known: str | None = None
    ) -> Manifest:
        """A tag is resolved with HEAD (not a pull), its digest read through the run's cache."""
        digest = source.digest or known
        if digest is None:
            found = await job.source.manifest_head(source.repository, source.identifier)
            if found is None or not found.digest.startswith("sha256:"):
                # Absent (the GET says so, typed) or a registry without digests on HEAD.
                return await job.source.manifest_get(source.repository, source.identifier)
            digest = found.digest
        return await self._manifest_by_digest(job, digest)

    async def _manifest_by_digest(self, job: _Job, digest: str) -> Manifest:
        source = job.source
        return await self.manifests.get(
            source.registry,
            digest,
            lambda: source.manifest_get(job.source_repository, digest),
        )

    async def _image_platform(self, job: _Job, manifest: Manifest) -> tuple[str, ...]:
        """The platform of a single image, from its (small) config blob; () for artifacts."""
        config = manifest.config
        if (
            config is None
            or config.media_type not in IMAGE_CONFIG_TYPES
            or config.size > MAX_CONFIG_SIZE
        ):
            return ()

        async def read() -> bytes:
            data = bytearray()
            async with job.source.blob_open(job.source_repository, config) as chunks:
                async for chunk in chunks:
                    data += chunk
            return bytes(data)

        data = await job.source.retrying(read, f"{job.reference} config {config.digest}")
        job.small_blobs[config.digest] = data
        platform = platform_of_config(data)
        return (str(platform),) if platform is not None else ()

    async def _copy_contents(self, job: _Job, manifest: Manifest) -> None:
        """Everything a manifest points at, so that pushing it cannot fail for a missing part."""
        if manifest.is_index:
            await run_all(self._copy_child(job, child) for child in manifest.children)
        else:
            await run_all(
                self._copy_blob(job, blob)
                for blob in manifest.blobs
                if not (blob.is_foreign and blob.urls)
            )

    async def _copy_child(self, job: _Job, child: Descriptor) -> None:
        ledger = self.ledger(job.target.registry)
        async with ledger.manifest_lock(job.target_repository, child.digest):
            if ledger.has_manifest(job.target_repository, child.digest):
                job.stats.manifests_skipped += 1
                return
            existing = None
            if not job.fresh_target:
                async with self._manifest_slots:
                    existing = await job.target.manifest_head(job.target_repository, child.digest)
            if existing is None:
                async with self._manifest_slots:
                    manifest = await self._manifest_by_digest(job, child.digest)
                await self._copy_contents(job, manifest)
                async with self._manifest_slots:
                    await job.target.manifest_put(job.target_repository, child.digest, manifest)
                job.stats.manifests_pushed += 1
            else:
                job.stats.manifests_skipped += 1
            ledger.record_manifest(job.target_repository, child.digest)

    async def _copy_blob(self, job: _Job, blob: Descriptor) -> None:
        ledger = self.ledger(job.target.registry)
        async with ledger.lock(blob.digest):
            holders = ledger.holders(blob.digest)
            if job.target_repository in holders:
                job.stats.blobs_skipped += 1
                return
            async with self._blob_slots:
                await self._place_blob(job, blob, holders)
            ledger.record(blob.digest, job.target_repository)

    async def _place_blob(self, job: _Job, blob: Descriptor, holders: set[str]) -> None:
        candidates = sorted(holders)
        if job.source.registry == job.target.registry and job.source_repository not in candidates:
            candidates.insert(0, job.source_repository)
        upload_url: str | None = None
        for from_repository in candidates[:2]:
            mount = await job.target.blob_mount(job.target_repository, blob.digest, from_repository)
            if mount.mounted:
                job.stats.blobs_mounted += 1
                return
            upload_url = mount.upload_url
        if (
            not candidates
            and not job.fresh_target
            and await job.target.blob_head(job.target_repository, blob.digest) is not None
        ):
            job.stats.blobs_skipped += 1
            return
        await self._upload_blob(job, blob, upload_url)

    async def _upload_blob(self, job: _Job, blob: Descriptor, upload_url: str | None) -> None:
        """Stream source → target; a failed attempt restarts from a fresh download."""
        session = upload_url

        async def attempt() -> None:
            nonlocal session
            if session is None:
                session = await job.target.blob_upload_start(job.target_repository)
            try:
                async with _source_stream(job, blob) as chunks:
                    await job.target.blob_upload(
                        job.target_repository, session, blob.digest, blob.size, chunks
                    )
            except Exception:
                abandoned, session = session, None
                await job.target.blob_upload_cancel(abandoned)
                raise

        await job.target.retrying(attempt, f"{job.reference} blob {blob.digest}")
        job.stats.blobs_uploaded += 1
        job.stats.bytes_uploaded += blob.size
        if self._on_uploaded is not None:
            self._on_uploaded(blob.size)


@asynccontextmanager
async def _source_stream(job: _Job, blob: Descriptor) -> AsyncIterator[AsyncIterator[bytes]]:
    """The blob's bytes: from memory when this copy already read them, else from the source."""
    cached = job.small_blobs.get(blob.digest)
    if cached is None:
        async with job.source.blob_open(job.source_repository, blob) as chunks:
            yield chunks
        return
    yield verified_stream(_single(cached), blob, f"{job.reference} blob {blob.digest}")


async def _single(data: bytes) -> AsyncIterator[bytes]:
    yield data
