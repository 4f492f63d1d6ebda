"""Which tags are images, which is newest, which one to pull: one answer for the index and ``find``.

Order, newest first: releases by version (``v1.49.0`` above ``v1.9.0``), then
pre-releases by version (``v2.0.0-rc1`` sits below every release: a reader who
wants the newest image wants a release), then tags that are no version at all
by sync time. Ties fall back to sync time, then the tag text.

Cosign signatures, attestations and SBOMs (``sha256-<hex>.sig/.att/.sbom``) and
OCI referrers tags (``sha256-<hex>``) are artifacts about an image, not images:
they are never counted as an image's tags and never suggested as the pull tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Literal, Protocol

__all__ = [
    "ARTIFACT_TAG",
    "SIGNATURE_TAG",
    "ArtifactKind",
    "Synced",
    "artifact_kind",
    "artifact_subject",
    "follows_subject",
    "is_artifact_tag",
    "is_signature_tag",
    "newest_first",
    "pull_tag",
    "split_artifacts",
    "tag_sort_key",
]

SIGNATURE_TAG = re.compile(r"(sha256)-([0-9a-f]{64})\.(sig|att|sbom)")
# Tags copied only next to the image they are about: cosign's, and the referrers fallback tag.
_FOLLOWER_TAG = re.compile(r"(sha256)-([0-9a-f]{64})(?:\.(sig|att|sbom))?")
# Any tag named after a digest: cosign's suffixed tags, the referrers tag schema's bare one.
ARTIFACT_TAG = re.compile(r"(sha256)-([0-9a-f]{64})(?:\.([a-z0-9]{1,16}))?")
# [v]MAJOR[.MINOR[.PATCH[.MORE]]][-PRERELEASE]; at most 18 digits a part, so no huge ints.
_VERSION = re.compile(r"[vV]?(\d{1,18}(?:\.\d{1,18}){0,3})(?:-([0-9A-Za-z][0-9A-Za-z.-]*))?")
_CHUNK = re.compile(r"\d{1,18}|\D+|\d+")

ArtifactKind = Literal["signature", "attestation", "sbom", "referrers", "artifact"]
_SUFFIX_KINDS: dict[str | None, ArtifactKind] = {
    "sig": "signature",
    "att": "attestation",
    "sbom": "sbom",
    None: "referrers",
}

_RELEASE, _PRERELEASE, _OTHER = 2, 1, 0


class Synced(Protocol):
    """What ordering needs of a tag record: when it was synced (ISO 8601, UTC)."""

    @property
    def synced(self) -> str: ...


def is_signature_tag(tag: str) -> bool:
    """A cosign signature, attestation or SBOM tag (the planner copies these in a second phase)."""
    return SIGNATURE_TAG.fullmatch(tag) is not None


def follows_subject(tag: str) -> bool:
    """cosign's ``.sig/.att/.sbom`` tags and the OCI referrers fallback tag (``sha256-<hex>``).

    Neither is matched against include/exclude: each is mirrored when, and only
    when, the image named by its digest is (the planner's second phase).
    """
    return _FOLLOWER_TAG.fullmatch(tag) is not None


def is_artifact_tag(tag: str) -> bool:
    """Named after a digest: a signature, attestation, SBOM or referrers tag, not an image."""
    return ARTIFACT_TAG.fullmatch(tag) is not None


def artifact_kind(tag: str) -> ArtifactKind | None:
    match = ARTIFACT_TAG.fullmatch(tag)
    if match is None:
        return None
    return _SUFFIX_KINDS.get(match.group(3), "artifact")


def artifact_subject(tag: str) -> str | None:
    """The digest an artifact tag is about: ``sha256-abc….sig`` → ``sha256:abc…``."""
    match = ARTIFACT_TAG.fullmatch(tag)
    return f"{match.group(1)}:{match.group(2)}" if match else None


def _identifier_key(identifier: str) -> tuple[tuple[int, int, str], ...]:
    # Natural order inside a pre-release identifier: rc2 < rc10; numbers below words (semver).
    return tuple(
        (0, int(chunk), "") if chunk.isdigit() and len(chunk) <= 18 else (1, 0, chunk)
        for chunk in _CHUNK.findall(identifier)
    )


@lru_cache(maxsize=65536)
def _version_key(tag: str) -> tuple[int, tuple[object, ...]]:
    """(group, comparable version): cached, since the same tags recur across images."""
    match = _VERSION.fullmatch(tag)
    if match is None:
        return _OTHER, ()
    numbers = tuple(int(part) for part in match.group(1).split("."))
    padded = numbers + (0,) * (4 - len(numbers))
    prerelease = match.group(2)
    if prerelease is None:
        return _RELEASE, (padded, len(numbers))
    identifiers = tuple(_identifier_key(part) for part in prerelease.split("."))
    return _PRERELEASE, (padded, identifiers, len(numbers))


def tag_sort_key(tag: str, synced: str) -> tuple[int, tuple[object, ...], str, str]:
    """Sorts ascending from oldest to newest; use ``reverse=True`` for newest first."""
    group, version = _version_key(tag)
    return group, version, synced, tag


def newest_first(tags: Mapping[str, Synced]) -> list[str]:
    """Tag names, newest first (see the module docstring for what newest means)."""
    return sorted(tags, key=lambda tag: tag_sort_key(tag, tags[tag].synced), reverse=True)


def split_artifacts(tags: Iterable[str]) -> tuple[list[str], list[str]]:
    """(image tags, artifact tags), each in the order given."""
    images: list[str] = []
    artifacts: list[str] = []
    for tag in tags:
        (artifacts if is_artifact_tag(tag) else images).append(tag)
    return images, artifacts


def pull_tag(ordered_images: Iterable[str]) -> str | None:
    """``latest`` when mirrored, else the newest image tag; never an artifact tag.

    ``ordered_images`` is newest first (``newest_first``); artifact tags in it are skipped.
    """
    first: str | None = None
    for tag in ordered_images:
        if is_artifact_tag(tag):
            continue
        if tag == "latest":
            return tag
        if first is None:
            first = tag
    return first
