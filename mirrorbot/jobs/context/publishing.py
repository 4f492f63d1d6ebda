"""Recording a run's changes: state files, CHANGELOG and index in one commit, pushed.

``publish`` (merging shard fragments, each record confirmed in the mirror first: a
fragment is an artifact, not proof) is :mod:`mirrorbot.jobs.context.fragments`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Protocol

from mirrorbot.domain.changes import Change, apply_changes, pending_changes
from mirrorbot.state.gitrepo import MetadataRepo
from mirrorbot.state.store import StateStore

__all__ = ["StateHome", "commit_message", "publish_changes"]


class StateHome(Protocol):
    """Where a run records: a state repository and its state folder (any context has both)."""

    @property
    def repo(self) -> MetadataRepo: ...

    @property
    def store(self) -> StateStore: ...


def commit_message(changes: list[Change], when: dt.datetime) -> str:
    new = sum(1 for c in changes if c.kind == "new")
    updated = sum(1 for c in changes if c.kind == "updated")
    images = len({(c.namespace, c.image) for c in changes})
    namespaces = sorted({c.namespace for c in changes})
    subject = f"mirror: {new} new, {updated} updated tags in {images} images"
    labels = {
        "repaired": "repaired",
        "skipped": "skipped",
        "gone": "gone upstream",
        "returned": "back upstream",
    }
    extra = {label: sum(1 for c in changes if c.kind == kind) for kind, label in labels.items()}
    if any(extra.values()):
        subject += "".join(f", {count} {label}" for label, count in extra.items() if count)
    body = "\n".join(f"- {ns}" for ns in namespaces)
    return f"{subject}\n\nRun at {when.astimezone(dt.UTC):%Y-%m-%d %H:%M UTC}.\n\n{body}\n"


def publish_changes(
    context: StateHome, changes: list[Change], moment: dt.datetime, *, push: bool
) -> tuple[str | None, bool]:
    """Record what of ``changes`` the remote state lacks: state, CHANGELOG, index; one commit.

    The changes are re-applied on the remote's tip after every fetch (see
    ``MetadataRepo.publish``), so a concurrent run, a re-run or a second
    ``publish`` of the same fragments never duplicates or loses an entry.
    """
    repo, store = context.repo, context.store
    if not changes and not (push and repo.has_remote and repo.unpushed()):
        return None, False

    def build() -> tuple[list[Path], str]:
        pending = pending_changes(store, changes)
        if not pending:
            return [], ""
        return apply_changes(store, pending, moment), commit_message(pending, moment)

    return repo.publish(build, push=push)
