"""What a run must copy: the upstream listing diffed against state. Pure, no I/O.

- A selected tag absent from state is **new**.
- A tag in state is **updated** when its upstream digest is known (from the
  listing, or from the HEAD the sync made for mutable tags) and differs from the
  upstream digest recorded. Immutable tags are not re-checked: that is what
  keeps a nightly no-op run cheap.
- Tags in state but gone upstream are **reported** (deleted only with ``prune``,
  by :mod:`mirrorbot.domain.prune`); backup tags (``backup:``) are the mirror's own.
- A tag state records as **skipped** (it can never be copied: schema1, …) is
  left alone until upstream's digest for it differs from the one recorded, or
  the run asks to ``retry_skipped``.
- ``keep`` (:mod:`mirrorbot.domain.keep`) leaves out all but the newest N selected
  image tags of each repository; what it left out is counted, never deleted.
- cosign ``sha256-<hex>.sig/.att/.sbom`` tags and the OCI referrers fallback
  tag ``sha256-<hex>`` are planned in a second phase, once the images they are
  about are in state: a signature is mirrored only next to the image it signs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from mirrorbot.collector import collector_paused
from mirrorbot.domain.keep import KeepRule, apply_keep
from mirrorbot.domain.tagorder import (
    SIGNATURE_TAG,
    artifact_subject,
    follows_subject,
    is_signature_tag,
)
from mirrorbot.engine.sources.base import ListedTag, Listing
from mirrorbot.reference import Reference
from mirrorbot.state.store import NamespaceState

__all__ = [
    "SIGNATURE_TAG",
    "NamespacePlan",
    "PlanItem",
    "TagFilter",
    "is_signature_tag",
    "merge_plans",
    "plan_namespace",
    "tags_to_recheck",
]

Kind = Literal["new", "updated"]
TagKey = tuple[str, str]


class TagFilter(Protocol):
    """The part of a resolved namespace the planner needs."""

    @property
    def signatures(self) -> bool: ...

    def tag_selected(self, tag: str) -> bool: ...

    def is_mutable(self, tag: str) -> bool: ...


def signature_subject(tag: str) -> str | None:
    return artifact_subject(tag) if follows_subject(tag) else None


@dataclass(frozen=True, slots=True)
class PlanItem:
    kind: Kind
    image: str
    tag: str
    source: Reference
    target: Reference
    previous: str | None = None
    upstream_digest: str | None = None


@dataclass(frozen=True, slots=True)
class NamespacePlan:
    source: str
    mirror: str
    items: tuple[PlanItem, ...]
    gone: tuple[TagKey, ...] = ()  # recorded, no longer listed upstream (kept in the mirror)
    returned: tuple[TagKey, ...] = ()  # marked gone in state, listed upstream again
    unchanged: int = 0
    filtered_out: int = 0
    kept_out: int = 0  # selected, but beyond keep's newest N (mirrored or not)
    keep_note: str | None = None  # one line when keep could not order as configured

    @property
    def new(self) -> tuple[PlanItem, ...]:
        return tuple(item for item in self.items if item.kind == "new")

    @property
    def updated(self) -> tuple[PlanItem, ...]:
        return tuple(item for item in self.items if item.kind == "updated")


def _wanted(rules: TagFilter, tag: str, *, signatures_phase: bool) -> bool:
    if follows_subject(tag):
        return signatures_phase and rules.signatures
    return not signatures_phase and rules.tag_selected(tag)


def tags_to_recheck(
    rules: TagFilter, listing: Listing, state: NamespaceState, *, signatures_phase: bool = False
) -> list[TagKey]:
    """Tags whose upstream digest must be asked for (HEAD): recorded, re-checkable, not listed with a digest."""
    found: list[TagKey] = []
    for repository in listing.repositories:
        for listed in repository.tags:
            if listed.digest is not None or not _wanted(
                rules, listed.name, signatures_phase=signatures_phase
            ):
                continue
            if (
                state.lookup(repository.path, listed.name) is None
                and state.skipped_record(repository.path, listed.name) is None
            ):
                continue
            if signatures_phase or rules.is_mutable(listed.name):
                found.append((repository.path, listed.name))
    return found


def _decide(
    listed: ListedTag,
    image: str,
    state: NamespaceState,
    head_digests: Mapping[TagKey, str | None],
    retry_skipped: bool = False,
) -> tuple[Kind, str | None, str | None] | None:
    """(kind, previous digest, upstream digest) or None when nothing is to be done."""
    record = state.lookup(image, listed.name)
    if record is None:
        skipped = state.skipped_record(image, listed.name)
        if skipped is not None and not retry_skipped:
            current = listed.digest or head_digests.get((image, listed.name))
            if current is None or current == skipped.digest:
                return None
        return ("new", None, listed.digest)
    current = listed.digest or head_digests.get((image, listed.name))
    if current is None or current == record.upstream_digest:
        return None
    return ("updated", record.digest, current)


def _plan(
    rules: TagFilter,
    listing: Listing,
    state: NamespaceState,
    *,
    mirror: str,
    targets: Mapping[str, str],
    head_digests: Mapping[TagKey, str | None],
    signatures_phase: bool,
    mirrored_digests: Mapping[str, set[str]] | None = None,
    retry_skipped: bool = False,
    keep: KeepRule | None = None,
) -> NamespacePlan:
    source_registry, _, source_path = listing.source.partition("/")
    mirror_registry = mirror.partition("/")[0]
    items: list[PlanItem] = []
    unchanged = filtered_out = 0
    dropped: frozenset[TagKey] = frozenset()
    keep_note: str | None = None
    if keep is not None and not signatures_phase:
        kept = apply_keep(keep, listing, selected=rules.tag_selected, mutable=rules.is_mutable)
        dropped = kept.dropped
        if kept.fallback:
            keep_note = (
                f"{listing.source}: keep by uploaded: no upload or created times found, "
                f"kept the newest {keep.newest} by semver instead"
            )
    for repository in listing.repositories:
        image = repository.path
        upstream = f"{source_path}/{image}" if source_path else image
        for listed in repository.tags:
            if not _wanted(rules, listed.name, signatures_phase=signatures_phase):
                if signatures_phase == follows_subject(listed.name):
                    filtered_out += 1
                continue
            if (image, listed.name) in dropped:
                continue
            if signatures_phase:
                subject = signature_subject(listed.name)
                if mirrored_digests is None or subject not in mirrored_digests.get(image, set()):
                    continue  # signs nothing we mirror
            decision = _decide(listed, image, state, head_digests, retry_skipped)
            if decision is None:
                unchanged += 1
                continue
            kind, previous, digest = decision
            items.append(
                PlanItem(
                    kind=kind,
                    image=image,
                    tag=listed.name,
                    source=Reference(source_registry, upstream, listed.name),
                    target=Reference(mirror_registry, targets[image], listed.name),
                    previous=previous,
                    upstream_digest=digest,
                )
            )
    gone: list[TagKey] = []
    returned: list[TagKey] = []
    if not signatures_phase:
        # Only repositories this listing saw: one that failed to list, or that a
        # targeted run did not ask for, says nothing about its tags.
        listed_names = {r.path: {t.name for t in r.tags} for r in listing.repositories}
        for image, entry in sorted(state.images.items()):
            names = listed_names.get(image)
            if names is None:
                continue
            for tag, record in sorted(entry.tags.items()):
                if record.backup_of is not None:
                    continue  # a backup tag of the mirror: upstream never lists it
                if tag not in names:
                    gone.append((image, tag))
                elif record.gone is not None:
                    returned.append((image, tag))
    return NamespacePlan(
        source=listing.source,
        mirror=mirror,
        items=tuple(items),
        gone=tuple(gone),
        returned=tuple(returned),
        unchanged=unchanged,
        filtered_out=filtered_out,
        kept_out=len(dropped),
        keep_note=keep_note,
    )


def plan_namespace(
    rules: TagFilter,
    listing: Listing,
    state: NamespaceState,
    *,
    mirror: str,
    targets: Mapping[str, str],
    head_digests: Mapping[TagKey, str | None] | None = None,
    signatures: bool = False,
    retry_skipped: bool = False,
    keep: KeepRule | None = None,
) -> NamespacePlan:
    """One phase of a namespace's plan. ``targets`` maps each image to its mirror repository.

    Phase one (``signatures=False``) plans the images, the newest ``keep.newest``
    of each repository when ``keep`` is given; phase two plans the cosign tags
    whose subject digest ``state`` now records as mirrored.
    """
    with collector_paused():  # one plan item per tag, and no cycle among them
        return _plan(
            rules,
            listing,
            state,
            mirror=mirror,
            targets=targets,
            head_digests=head_digests or {},
            signatures_phase=signatures,
            mirrored_digests=mirrored_upstream_digests(state) if signatures else None,
            retry_skipped=retry_skipped,
            keep=keep,
        )


def mirrored_upstream_digests(state: NamespaceState) -> dict[str, set[str]]:
    return {
        image: {
            record.upstream_digest for tag, record in entry.tags.items() if not follows_subject(tag)
        }
        for image, entry in state.images.items()
    }


def merge_plans(plans: Iterable[NamespacePlan]) -> NamespacePlan | None:
    """One namespace's phases (images, then signatures) as one plan."""
    phases = list(plans)
    if not phases:
        return None
    return NamespacePlan(
        source=phases[0].source,
        mirror=phases[0].mirror,
        items=tuple(item for phase in phases for item in phase.items),
        gone=tuple(key for phase in phases for key in phase.gone),
        returned=tuple(key for phase in phases for key in phase.returned),
        unchanged=sum(phase.unchanged for phase in phases),
        filtered_out=sum(phase.filtered_out for phase in phases),
        kept_out=sum(phase.kept_out for phase in phases),
        keep_note=next((p.keep_note for p in phases if p.keep_note), None),
    )
