"""Recording a run's changes: state files, CHANGELOG and index in one commit, pushed.

Also ``publish``: merging shard fragments, each record confirmed in the mirror
first (a fragment is an artifact, not proof).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mirrorbot.config.credentials import Need
from mirrorbot.domain.changes import Change, apply_changes, pending_changes
from mirrorbot.domain.shards import merge_changes, missing_shards, read_fragments
from mirrorbot.errors import FragmentError
from mirrorbot.jobs.context.wiring import JobContext, run_async
from mirrorbot.jobs.verify import confirm_changes
from mirrorbot.reference import split_registry
from mirrorbot.state.gitrepo import MetadataRepo
from mirrorbot.state.store import StateStore

__all__ = [
    "PublishOutcome",
    "StateHome",
    "commit_message",
    "confirm_in_mirror",
    "publish_changes",
    "run_publish",
]


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


@dataclass(slots=True)
class PublishOutcome:
    changes: list[Change]
    fragments: int
    missing: list[int]
    failures: list[dict[str, str]]
    errors: list[str]
    commit: str | None = None
    pushed: bool = False
    # Fragment records that failed validation: dropped, never recorded, always reported.
    rejected: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.missing or self.failures or self.errors or self.rejected else 0


def run_publish(context: JobContext, directories: list[Path], *, push: bool) -> PublishOutcome:
    """Merge shard fragments into state, one CHANGELOG section and the index; commit once."""
    context.store.check()
    fragments = read_fragments(directories)
    if not fragments:
        raise FragmentError("no fragment-*.json found in " + ", ".join(str(d) for d in directories))
    changes, unconfirmed = confirm_in_mirror(context, merge_changes(fragments))
    when = min(fragment.when for fragment in fragments)
    outcome = PublishOutcome(
        changes=changes,
        fragments=len(fragments),
        missing=missing_shards(fragments),
        failures=[failure for fragment in fragments for failure in fragment.failures],
        errors=[error for fragment in fragments for error in fragment.errors],
        rejected=[line for fragment in fragments for line in fragment.rejected] + unconfirmed,
    )
    moment = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    outcome.commit, outcome.pushed = publish_changes(context, changes, moment, push=push)
    return outcome


def confirm_in_mirror(context: JobContext, changes: list[Change]) -> tuple[list[Change], list[str]]:
    """Keep the fragments' records the mirror verifiably holds (read-only HEADs).

    The mirror is read with its credentials when they are set, anonymously otherwise
    (a public Docker Hub repository answers HEADs to anyone).
    """
    if not changes:
        return [], []
    hosts = {split_registry(change.target_repository)[0] for change in changes}
    credentials = context.credentials(hosts, Need.OPTIONAL)

    async def go() -> tuple[list[Change], list[str]]:
        async with context.pool(credentials) as pool:
            return await confirm_changes(changes, pool)

    return run_async(go)
