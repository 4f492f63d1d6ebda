"""OCI 1.1 referrers: what refers to a copied image (SBOMs, signatures, attestations).

Discovery on the source: ``GET /v2/<name>/referrers/<digest>`` (an OCI index
of descriptors); a 404 means the registry does not implement the API, and the
fallback tag ``sha256-<hex>`` (an index maintained by the pushing client) is
read instead. Each referrer is a manifest with a ``subject``: it is copied by
digest, never under a tag. On the target, a registry that implements the API
indexes a manifest with ``subject`` when it is pushed; one that does not gets
the fallback tag index maintained (merged with what it already lists).

Everything a source says is untrusted: at most :data:`MAX_REFERRERS` entries,
each a valid descriptor of a manifest; the document is size-capped by the client.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from mirrorbot.config import ReferrersSettings
from mirrorbot.domain.tagorder import artifact_kind, follows_subject
from mirrorbot.engine.backends.readable import ReadableRegistry
from mirrorbot.engine.copier import Copier, CopyResult, fallback_tag
from mirrorbot.engine.registry.auth import pull_scope
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.registry.media import (
    IMAGE_TYPES,
    INDEX_TYPES,
    OCI_INDEX,
    Descriptor,
    Manifest,
    parse_manifest,
)
from mirrorbot.errors import MirrorbotError, RegistryError
from mirrorbot.reference import Reference
from mirrorbot.state.store import MAX_REFERRERS, is_media_type

__all__ = [
    "MAX_REFERRERS",
    "MAX_REFERRER_PAGES",
    "Referrer",
    "copy_referrers",
    "fallback_types_filter",
    "list_referrers",
    "with_referrers",
]


MAX_REFERRER_PAGES = 100  # pages of one referrers answer; MAX_REFERRERS caps the entries
# No referrers API here: fall back to the tag. 200 is a body that is not JSON.
_UNSUPPORTED = frozenset({200, 400, 404, 406})


@dataclass(frozen=True, slots=True)
class Referrer:
    """One entry of a referrers index: its descriptor as served, and its artifactType."""

    digest: str
    artifact_type: str
    entry: Mapping[str, Any]


def _entries(document: Any, reference: str) -> list[Referrer]:
    """The referrer descriptors of an index document; anything else is refused."""
    entries = document.get("manifests") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise MirrorbotError(f"{reference}: referrers answer is not an index")
    if len(entries) > MAX_REFERRERS:
        raise MirrorbotError(f"{reference}: more than {MAX_REFERRERS} referrers")
    found: dict[str, Referrer] = {}
    for entry in entries:
        descriptor = Descriptor.from_json(entry, reference)
        if descriptor.media_type not in IMAGE_TYPES | INDEX_TYPES:
            continue  # a referrer is a manifest; a blob here is not one
        artifact_type = entry.get("artifactType")
        if not isinstance(artifact_type, str) or not is_media_type(artifact_type):
            artifact_type = ""  # recorded in state and shown on the index: only a media type
        # Re-emitted on the target's fallback tag: only the fields the spec defines, checked.
        clean: dict[str, Any] = {
            "mediaType": descriptor.media_type,
            "digest": descriptor.digest,
            "size": descriptor.size,
        }
        if artifact_type:
            clean["artifactType"] = artifact_type
        if descriptor.annotations:
            clean["annotations"] = dict(descriptor.annotations)
        found.setdefault(descriptor.digest, Referrer(descriptor.digest, artifact_type, clean))
    return list(found.values())


async def _api(client: RegistryClient, repository: str, digest: str) -> list[Referrer] | None:
    """The referrers API's answer, every page of it; None when the registry does not implement it.

    As go-containerregistry decides: 404, 400 or 406, or a 200 that is not an
    OCI index, means no API (fall back to the tag); any other failure is an error.
    A long answer is paged with ``Link: <…>; rel="next"`` (OCI distribution
    spec): followed on this registry only, at most :data:`MAX_REFERRER_PAGES`
    pages and :data:`MAX_REFERRERS` entries in all.
    """
    reference = f"{client.registry}/{repository}@{digest}"
    url: str | httpx.URL | None = f"/v2/{repository}/referrers/{digest}"
    found: dict[str, Referrer] = {}
    seen: set[str] = set()
    first = True
    while url is not None:
        if str(url) in seen:
            break  # a page that links back to one already served
        if len(seen) >= MAX_REFERRER_PAGES:
            raise MirrorbotError(f"{reference}: more than {MAX_REFERRER_PAGES} referrers pages")
        seen.add(str(url))
        try:
            document, headers, url = await client.get_json_page(
                url, scopes=(pull_scope(repository),), reference=reference
            )
        except RegistryError as exc:
            if first and exc.status in _UNSUPPORTED:
                return None
            raise
        if headers.get("content-type", "").split(";")[0].strip() != OCI_INDEX:
            if first:
                return None
            raise MirrorbotError(f"{reference}: a referrers page is not an OCI index")
        first = False
        for referrer in _entries(document, reference):
            found.setdefault(referrer.digest, referrer)
        if len(found) > MAX_REFERRERS:
            raise MirrorbotError(f"{reference}: more than {MAX_REFERRERS} referrers")
    return list(found.values())


async def _tagged(reader: ReadableRegistry, repository: str, digest: str) -> list[Referrer]:
    """The fallback tag's index; nothing when there is no such tag."""
    tag = fallback_tag(digest)
    if await reader.manifest_head(repository, tag) is None:
        return []
    manifest = await reader.manifest_get(repository, tag)
    if not manifest.is_index:
        return []  # not the referrers tag schema: not ours to read
    return _entries(json.loads(manifest.raw), f"{reader.registry}/{repository}:{tag}")


async def list_referrers(
    reader: ReadableRegistry, repository: str, digest: str, types: Iterable[str] = ()
) -> list[Referrer]:
    """Referrers of ``digest`` on the source (API first, else fallback tag), by artifactType."""
    found = None
    if isinstance(reader, RegistryClient):
        found = await _api(reader, repository, digest)
    if found is None:
        found = await _tagged(reader, repository, digest)
    wanted = set(types)
    return [r for r in found if not wanted or r.artifact_type in wanted]


async def copy_referrers(
    copier: Copier,
    source: Reference,
    target: Reference,
    digest: str,
    types: Iterable[str] = (),
    *,
    subject: Mapping[str, Any] | None = None,
) -> tuple[tuple[str, str], ...]:
    """Copy what refers to ``digest`` from ``source``'s repository to ``target``'s.

    ``subject`` (a descriptor: mediaType, digest, size) is what the target holds
    instead of ``digest`` when that differs (a platform-filtered index): each
    referrer is then pushed with its ``subject`` rewritten to it, a new manifest
    with a new digest, and is found under that subject on the target.
    Returns (digest, artifactType) of every referrer the target now holds, sorted.
    """
    pool = copier.pool
    reader = pool.reader(source.registry, source.repository)
    found = await list_referrers(reader, source.repository, digest, types)
    if not found:
        return ()
    pushed: list[Referrer] = []
    for referrer in found:
        manifest = None
        if subject is not None:
            manifest = await _resubjected(copier, reader, source, referrer, subject)
        result = await copier.copy(
            Reference(source.registry, source.repository, None, referrer.digest),
            Reference(target.registry, target.repository, None, None),
            source_manifest=manifest,
        )
        entry = {**referrer.entry, "digest": result.digest, "size": result.size}
        pushed.append(Referrer(result.digest, referrer.artifact_type, entry))
    on_target = subject["digest"] if subject is not None else digest
    client = pool.client(target.registry, target.repository)
    if await _api(client, target.repository, on_target) is None:
        await _update_fallback_tag(client, target.repository, on_target, pushed)
    return tuple(sorted((r.digest, r.artifact_type) for r in pushed))


async def _resubjected(
    copier: Copier,
    reader: ReadableRegistry,
    source: Reference,
    referrer: Referrer,
    subject: Mapping[str, Any],
) -> Manifest:
    """The referrer's manifest with ``subject`` in place of upstream's (same layers and config)."""
    manifest = await copier.manifests.get(
        source.registry,
        referrer.digest,
        lambda: reader.manifest_get(source.repository, referrer.digest),
    )
    document = json.loads(manifest.raw)
    if not isinstance(document, dict) or not isinstance(document.get("subject"), dict):
        return manifest  # not about anything (a fallback tag may list such): copied as is
    document["subject"] = dict(subject)
    raw = json.dumps(document, indent=2).encode()
    return parse_manifest(raw, manifest.media_type, f"{source}@{referrer.digest}")


async def _update_fallback_tag(
    client: RegistryClient, repository: str, digest: str, found: list[Referrer]
) -> None:
    """Merge ``found`` into the target's ``sha256-<hex>`` index; push only when it grew."""
    known = await _tagged(client, repository, digest)
    have = {r.digest for r in known}
    added = [r for r in found if r.digest not in have]
    if not added:
        return
    entries = [dict(r.entry) for r in known + added][:MAX_REFERRERS]
    document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    tag = fallback_tag(digest)
    raw = json.dumps(document, indent=2).encode()
    await client.manifest_put(
        repository, tag, parse_manifest(raw, OCI_INDEX, f"{client.registry}/{repository}:{tag}")
    )


def fallback_types_filter(
    settings: ReferrersSettings, tag: str
) -> Callable[[Manifest], Manifest] | None:
    """For the bare fallback tag ``sha256-<hex>`` when ``types`` is set: keep only those entries.

    The signature phase copies that tag like cosign's; with ``referrers.types``
    its index is copied with only the entries of the wanted artifactTypes (a
    new index, a new digest, recorded as such, like a platform filter's).
    """
    if not settings.types or artifact_kind(tag) != "referrers":
        return None
    wanted = frozenset(settings.types)

    def reshape(manifest: Manifest) -> Manifest:
        if not manifest.is_index:
            return manifest
        document = json.loads(manifest.raw)
        entries = document.get("manifests") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            return manifest
        kept = [e for e in entries if isinstance(e, dict) and e.get("artifactType") in wanted]
        if len(kept) == len(entries):
            return manifest
        document["manifests"] = kept
        raw = json.dumps(document, indent=2).encode()
        return parse_manifest(raw, manifest.media_type, tag)

    return reshape


async def with_referrers(
    copier: Copier,
    settings: ReferrersSettings,
    tag: str,
    result: CopyResult,
    warnings: list[str],
) -> CopyResult:
    """``result`` with the referrers copied beside it (when enabled).

    A failure here is one warning, never the image's: the image itself is in
    the mirror and is recorded, without referrers. A platform-filtered index
    has a new digest: upstream's referrers of the index it came from are
    copied with their ``subject`` rewritten to the index the mirror holds.
    """
    if not settings.enabled or follows_subject(tag):
        return result
    subject = None
    if result.filtered:
        subject = {"mediaType": result.media_type, "digest": result.digest, "size": result.size}
    try:
        found = await copy_referrers(
            copier,
            result.source,
            result.target,
            result.source_digest,
            settings.types,
            subject=subject,
        )
    except MirrorbotError as exc:
        warnings.append(f"{result.source}: referrers not copied: {exc}")
        return result
    return replace(result, referrers=found)
