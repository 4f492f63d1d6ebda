"""Turn a run's verified copies into files: state JSON, a CHANGELOG section, the index pages.

``pending_changes`` keeps, of a run's changes, only those the state on disk
does not already record, labelled against that state; the publisher calls it
after every fetch of the remote (see ``MetadataRepo.publish``), so a tag that
another run, an earlier attempt or an earlier ``publish`` of the same fragments
recorded gets no second CHANGELOG line, and none is lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from mirrorbot.domain.indexpages import INDEX_NAME, render_pages, stale_pages
from mirrorbot.domain.templating import format_when, short_digest, templates
from mirrorbot.engine.copier import CopyResult
from mirrorbot.state.store import NamespaceState, SkipRecord, StateStore, TagRecord

__all__ = [
    "CHANGELOG_NAME",
    "CHANGE_KINDS",
    "INDEX_NAME",
    "Change",
    "ChangeKind",
    "apply_changes",
    "pending_changes",
    "render_changelog_section",
    "render_index",
    "short_digest",
]

CHANGELOG_NAME = "CHANGELOG.md"
CHANGELOG_HEADER = (
    "# Changelog\n\nEvery run that mirrored something new or updated adds a section here.\n"
)


ChangeKind = Literal[
    "new", "updated", "repaired", "skipped", "gone", "returned", "backup", "pruned"
]
CHANGE_KINDS: tuple[ChangeKind, ...] = (
    "new",
    "updated",
    "backup",
    "repaired",
    "skipped",
    "gone",
    "returned",
    "pruned",
)
MARK_KINDS: frozenset[str] = frozenset({"gone", "returned"})  # state notes, nothing copied


@dataclass(frozen=True, slots=True)
class Change:
    """One tag the mirror acknowledged this run, and what state now records for it.

    ``repaired``: state already recorded it, the mirror had lost it, it was
    copied again. ``gone`` / ``returned``: nothing was copied; upstream stopped
    (or started again) listing a recorded tag, which stays in the mirror. ``skipped``: nothing was copied and ``record`` only carries
    upstream's digest and the time; state notes ``reason`` so that later runs
    leave the tag alone until its digest changes. ``backup``: ``tag`` is a new tag
    of the mirror holding the old image of ``record.backup_of`` (:mod:`mirrorbot.domain.backups`).
    ``pruned``: the tag, gone upstream, was deleted from the mirror and leaves state.
    """

    kind: ChangeKind
    namespace: str  # state key: the upstream namespace, "gcr.io/google-containers"
    mirror: str  # "docker.io/gcrxio"
    image: str  # repository path below the namespace
    tag: str
    upstream: str  # full upstream reference with tag
    target_repository: str  # full mirror repository, "docker.io/gcrxio/pause"
    record: TagRecord
    previous: str | None = None
    reason: str | None = None  # why a tag is skipped

    @classmethod
    def from_copy(
        cls,
        result: CopyResult,
        *,
        kind: ChangeKind,
        namespace: str,
        mirror: str,
        image: str,
        tag: str,
        synced: str,
        previous: str | None,
    ) -> Change:
        """What state records for a verified copy (upstream's digest too, when filtered)."""
        return cls(
            kind=kind,
            namespace=namespace,
            mirror=mirror,
            image=image,
            tag=tag,
            upstream=str(result.source),
            target_repository=result.target.name,
            record=TagRecord(
                digest=result.digest,
                media_type=result.media_type,
                platforms=result.platforms,
                size=result.size,
                synced=synced,
                source_digest=result.source_digest if result.filtered else None,
                referrers=result.referrers,
            ),
            previous=previous,
        )

    @property
    def mirror_reference(self) -> str:
        return f"{self.target_repository}:{self.tag}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "mirror": self.mirror,
            "image": self.image,
            "tag": self.tag,
            "upstream": self.upstream,
            "targetRepository": self.target_repository,
            "record": self.record.to_json(),
            "previous": self.previous,
        } | ({"reason": self.reason} if self.reason is not None else {})

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Change:
        kind = value["kind"]
        if kind not in CHANGE_KINDS:
            raise ValueError(f"unknown change kind {kind!r}")
        return cls(
            kind=kind,
            namespace=str(value["namespace"]),
            mirror=str(value["mirror"]),
            image=str(value["image"]),
            tag=str(value["tag"]),
            upstream=str(value["upstream"]),
            target_repository=str(value["targetRepository"]),
            record=TagRecord.from_json(value["record"], f"change {value['upstream']}"),
            previous=value.get("previous"),
            reason=value.get("reason"),
        )

    def skip_record(self) -> SkipRecord:
        return SkipRecord(self.reason or "", self.record.digest, self.record.synced)


def render_changelog_section(changes: Sequence[Change], when: dt.datetime) -> str:
    ordered = sorted(changes, key=lambda c: (CHANGE_KINDS.index(c.kind), c.upstream))
    return (
        templates()
        .get_template("changelog_section.md.j2")
        .render(changes=ordered, when=format_when(when))
    )


def render_index(states: Iterable[NamespaceState]) -> dict[str, str]:
    """The README and every namespace page, by path relative to the state folder."""
    return render_pages(states)


def pending_changes(store: StateStore, changes: Sequence[Change]) -> list[Change]:
    """What of ``changes`` the state in ``store`` does not record yet, as it stands now.

    A tag already recorded with the same digest is dropped (another run or an
    earlier publish recorded it), unless this run repaired it in the mirror, and a
    skip already recorded for the same digest is dropped; the rest are re-labelled ``new`` or ``updated``
    (with the digest they replace) against the current state, not against the
    state the run started from. A tag named twice counts once (the last wins).
    """
    latest: dict[tuple[str, str, str, str], Change] = {}
    for change in changes:
        latest[(change.namespace, change.mirror, change.image, change.tag)] = change
    states: dict[tuple[str, str], NamespaceState] = {}
    pending: list[Change] = []
    for (namespace, mirror, image, tag), change in latest.items():
        if (namespace, mirror) not in states:
            states[(namespace, mirror)] = store.load(namespace, mirror)
        state = states[(namespace, mirror)]
        if change.kind in MARK_KINDS:
            # A note on a record as it stands: dropped once the record moved or has the note.
            current = state.lookup(image, tag)
            if (
                current is not None
                and current.digest == change.record.digest
                and (current.gone is None) != (change.record.gone is None)
            ):
                pending.append(change)
            continue
        if change.kind == "pruned":
            # Leaves state once: nothing to say when state no longer holds that record.
            current = state.lookup(image, tag)
            if current is not None and current.digest == change.record.digest:
                pending.append(change)
            continue
        if change.kind == "backup":
            current = state.lookup(image, tag)
            if current != change.record:
                pending.append(change)
            continue
        if change.kind == "skipped":
            # Recorded once: a second run (or publish) skipping the same digest adds nothing.
            known = state.skipped_record(image, tag)
            if known is None or known.digest != change.record.digest:
                pending.append(change)
            continue
        current = state.lookup(image, tag)
        if current is None:
            pending.append(replace(change, kind="new", previous=None))
        elif current.digest != change.record.digest:
            pending.append(replace(change, kind="updated", previous=current.digest))
        elif change.kind == "repaired":
            pending.append(change)  # the record stands; the mirror had lost it
    return pending


def apply_changes(store: StateStore, changes: Sequence[Change], when: dt.datetime) -> list[Path]:
    """Record changes in state, append one CHANGELOG section, regenerate the index pages.

    Returns the files that changed, removed index pages included. No changes → nothing
    written. Every file is read and written through the store: a link or special file
    under the state folder is refused before anything is read or written there.
    """
    if not changes:
        return []
    store.check()
    written: list[Path] = []
    states: dict[tuple[str, str], NamespaceState] = {}
    for change in changes:
        key = (change.namespace, change.mirror)
        if key not in states:
            states[key] = store.load(change.namespace, change.mirror)
        state = states[key]
        state.mirror = change.mirror
        if change.kind == "skipped":
            state.skip(change.image, change.tag, change.skip_record())
        elif change.kind == "pruned":
            state.forget(change.image, change.tag)
        else:
            state.record(change.image, change.target_repository, change.tag, change.record)
    for state in states.values():
        if store.save(state):
            written.append(store.path_for(state.source, state.mirror))
    changelog = store.root / CHANGELOG_NAME
    existing = store.read_text(changelog)
    if existing is None:
        existing = CHANGELOG_HEADER
    if not existing.endswith("\n"):
        existing += "\n"
    store.write_text(changelog, existing + "\n" + render_changelog_section(changes, when))
    written.append(changelog)
    pages = render_index(store.all())
    for relative, text in pages.items():
        if store.write_text(store.root / relative, text):
            written.append(store.root / relative)
    store.check()  # what is removed below is a regular file of ours, never a link
    for stale in stale_pages(store.root, pages):
        stale.unlink()
        written.append(stale)
    return written
