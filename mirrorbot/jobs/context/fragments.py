"""``publish``, the last step of a sharded sync: merge the shards' fragments, confirm, record.

Each fragment record enters state only when the mirror verifiably holds it
(:func:`confirm_in_mirror`); then it is published like any run's changes
(:func:`mirrorbot.jobs.context.publishing.publish_changes`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from mirrorbot.config.credentials import Need
from mirrorbot.domain.changes import Change
from mirrorbot.domain.shards import merge_changes, missing_shards, read_fragments
from mirrorbot.errors import FragmentError
from mirrorbot.jobs.context.publishing import publish_changes
from mirrorbot.jobs.context.wiring import JobContext, run_async
from mirrorbot.jobs.verify import confirm_changes
from mirrorbot.reference import split_registry

__all__ = ["PublishOutcome", "confirm_in_mirror", "run_publish"]


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
