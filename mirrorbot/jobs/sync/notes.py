"""Sync's changes that copy nothing from upstream: gone and returned marks, backups, prunes, skips.

Each is recorded through :meth:`NamespaceRun.note` (or :func:`skip_change`), so
state, the index and the CHANGELOG show them like any copied tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mirrorbot.domain.backups import make_backup
from mirrorbot.domain.changes import Change, ChangeKind
from mirrorbot.domain.planner import NamespacePlan, PlanItem
from mirrorbot.domain.prune import Pruner, plan_prune
from mirrorbot.engine.registry.media import SCHEMA1_TYPES
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.errors import MirrorbotError, UnsupportedManifestError
from mirrorbot.jobs.outcome import NamespaceRun
from mirrorbot.jobs.sync.planning import PlanningStage
from mirrorbot.reference import Reference
from mirrorbot.state.store import TagRecord

__all__ = ["NotesStage", "skip_change", "unsupported_reason"]


def unsupported_reason(exc: MirrorbotError) -> str | None:
    """Why a tag can never be copied, or None when another run might succeed.

    Only what upstream's manifest *is* counts (schema1): never a parse error a
    broken proxy could cause, nor a platform filter the config may change.
    """
    if isinstance(exc, UnsupportedManifestError) and exc.media_type in SCHEMA1_TYPES:
        return f"unsupported manifest {exc.media_type} (Docker schema1, deprecated)"
    return None


async def skip_change(
    pool: RegistryPool,
    source: Reference,
    *,
    namespace: str,
    mirror: str,
    image: str,
    target_repository: str,
    reason: str,
    synced: str,
    digest: str | None = None,
) -> Change:
    """What state records for a tag it will not try again: upstream's digest (one HEAD) and why."""
    if digest is None:
        try:
            found = await pool.reader(source.registry, source.repository).manifest_head(
                source.repository, source.identifier
            )
        except MirrorbotError:
            found = None
        digest = found.digest if found is not None else ""
    return Change(
        kind="skipped",
        namespace=namespace,
        mirror=mirror,
        image=image,
        tag=source.tag or "",
        upstream=str(source),
        target_repository=target_repository,
        record=TagRecord(digest=digest, media_type="", platforms=(), size=0, synced=synced),
        reason=reason,
    )


class NotesStage(PlanningStage):
    """Gone marks, backups before an overwrite, prunes and skips: what a run notes besides copies."""

    def _note_gone(self, planned: Sequence[tuple[NamespaceRun, NamespacePlan]]) -> None:
        """Mark in state the tags upstream no longer lists (they stay mirrored), and unmark
        the ones it lists again: what the index and CHANGELOG show as gone upstream."""
        for run, plan in planned:
            if run.requested or run.state is None:
                continue  # a targeted run lists only what it was asked for
            marks = [(key, self.synced_stamp) for key in plan.gone] + [
                (key, None) for key in plan.returned
            ]
            for (image, tag), gone in marks:
                record = run.state.lookup(image, tag)
                if record is None or (record.gone is None) == (gone is None):  # already so
                    continue
                if not self._mine_image(run, image):
                    continue
                kind: ChangeKind = "gone" if gone else "returned"
                target = run.state.images[image].target
                self.report.changes.append(
                    run.note(kind, image, tag, target, replace(record, gone=gone))
                )

    async def _backup(self, run: NamespaceRun, item: PlanItem) -> None:
        """``backup:``: keep the mirror's old image of a moved tag before it is overwritten."""
        template = run.namespace.backup
        old = run.state.lookup(item.image, item.tag) if run.state else None
        if template is None or item.kind != "updated" or old is None or run.state is None:
            return
        client = self.pool.client(item.target.registry, item.target.repository)
        backup = await make_backup(client, item.target.repository, template, item.tag, old)
        target = run.state.images[item.image].target
        self.report.changes.append(
            run.note("backup", item.image, backup.tag, target, backup.record)
        )

    async def _prune(self, planned: Sequence[tuple[NamespaceRun, NamespacePlan]]) -> None:
        """``prune: true``: delete gone tags from the mirror (a dry run only lists them)."""
        pruner = Pruner()
        for run, plan in planned:
            if not run.namespace.prune or run.requested or run.state is None or self.stopping:
                continue
            mine = [key for key in plan.gone if self._mine_image(run, key[0])]
            pruning = plan_prune(run.state, mine)
            self.report.warnings.extend(pruning.kept)
            for candidate in pruning.deletes:
                if self.options.dry_run:
                    self.report.pruning.extend(candidate.references)
                    continue
                registry = candidate.target.partition("/")[0]
                client = self.pool.client(registry, candidate.target.partition("/")[2])
                problem = await pruner.delete(client, registry, candidate)
                if problem is not None:
                    if problem:
                        self.report.warnings.append(problem)
                    continue
                self.report.changes.extend(
                    run.note("pruned", candidate.image, tag, candidate.target, record)
                    for tag, record in candidate.tags
                )

    async def _skip(self, run: NamespaceRun, item: PlanItem, reason: str) -> None:
        """Never copyable: recorded once as skipped, reported, not a failure."""
        self.report.warnings.append(f"{item.source}: skipped (unsupported): {reason}")
        change = await skip_change(
            self.pool,
            item.source,
            namespace=run.namespace.source,
            mirror=run.mirror,
            image=item.image,
            target_repository=item.target.name,
            reason=reason,
            synced=self.synced_stamp,
            digest=item.upstream_digest,
        )
        known = run.state.skipped_record(item.image, item.tag) if run.state else None
        if known is None or known.digest != change.record.digest:  # --retry-skipped: same as before
            self.report.changes.append(change)
        self.progress.finished(run.namespace.source, ok=True)
