"""``keep: {newest: N, by: semver|uploaded}``: only the newest N image tags of each repository.

Applied after ``include``/``exclude``, before planning, per repository:

- **Counted** are the selected image tags. Artifact tags (cosign
  ``sha256-<hex>.sig/.att/.sbom``, referrers ``sha256-<hex>``) are about an
  image, not images: they are neither counted nor dropped here, and follow
  their images as they always have (a signature is mirrored only next to the
  image it signs).
- **Mutable tags** (``mutable:``, ``latest`` by default) are always kept and
  not counted: they name the current image, which is what someone who wants
  "only the newest" wants first, and under ``semver`` a word like ``latest``
  would otherwise rank below every version and never be mirrored.
- ``semver`` orders like :mod:`mirrorbot.domain.tagorder`: releases newest first,
  then pre-releases (``v1.21-rc1`` ranks below every release), then tags
  that are no version, ties by tag text.
- ``uploaded`` orders by upload time, newest first: gcr's ``timeUploadedMs``,
  Docker Hub's ``last_updated`` (its tag pages, read by the ``dockerhub``
  listing for this), else the image config's ``created``
  (:mod:`mirrorbot.jobs.uploadtimes`, read by sync for the counted tags of a
  repository that has no other time). Tags without one rank below those with
  one, by semver. Only when no tag has a time at all (configs without
  ``created``, too many tags to look up) is it ordered by semver instead,
  said once per namespace.

A tag left out is not deleted from the mirror, not marked gone, and not
re-checked: ``keep`` decides what is mirrored from now on, pruning is separate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from mirrorbot.domain.tagorder import is_artifact_tag, tag_sort_key
from mirrorbot.engine.sources.base import ListedTag, Listing

__all__ = ["KEEP_ORDERS", "KeepOrder", "KeepRule", "Kept", "apply_keep"]

KeepOrder = Literal["semver", "uploaded"]
KEEP_ORDERS: tuple[KeepOrder, ...] = ("semver", "uploaded")
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class KeepRule:
    """``newest`` image tags per repository, ordered ``by`` semver or upload time."""

    newest: int
    by: KeepOrder = "semver"

    def describe(self) -> str:
        return f"newest {self.newest} by {self.by}"


@dataclass(frozen=True, slots=True)
class Kept:
    """What ``keep`` left out of a listing, and whether it had to order by semver instead."""

    dropped: frozenset[tuple[str, str]]
    fallback: bool = False


def _semver_key(tag: ListedTag) -> tuple[object, ...]:
    return tag_sort_key(tag.name, "")


def _uploaded_key(tag: ListedTag) -> tuple[object, ...]:
    return (tag.uploaded is not None, tag.uploaded or _NEVER, *_semver_key(tag))


def apply_keep(
    rule: KeepRule,
    listing: Listing,
    *,
    selected: Callable[[str], bool],
    mutable: Callable[[str], bool],
) -> Kept:
    """The (image, tag) pairs beyond the newest ``rule.newest`` counted tags of each repository."""
    candidates = {
        repository.path: [
            tag
            for tag in repository.tags
            if not is_artifact_tag(tag.name) and selected(tag.name) and not mutable(tag.name)
        ]
        for repository in listing.repositories
    }
    by_upload = rule.by == "uploaded" and any(
        tag.uploaded is not None for tags in candidates.values() for tag in tags
    )
    key = _uploaded_key if by_upload else _semver_key
    dropped = frozenset(
        (image, tag.name)
        for image, tags in candidates.items()
        for tag in sorted(tags, key=key, reverse=True)[rule.newest :]
    )
    fallback = rule.by == "uploaded" and not by_upload and any(candidates.values())
    return Kept(dropped, fallback)
