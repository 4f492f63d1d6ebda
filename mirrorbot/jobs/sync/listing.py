"""Sync's first stage: list every namespace (or only the requested references) and name mirrors.

A namespace that cannot be listed fails alone, with one line; a mirror name two
upstream repositories would share is refused for the newcomer.
"""

from __future__ import annotations

import asyncio
import logging

from mirrorbot.domain.naming import mirror_repository
from mirrorbot.engine.concurrency import bounded_map
from mirrorbot.engine.sources import ListedRepository, ListedTag, Listing, namespace_source
from mirrorbot.errors import ConfigError, MirrorbotError, NameCollisionError
from mirrorbot.jobs.outcome import Failure, NamespaceRun
from mirrorbot.jobs.sync.base import SyncBase
from mirrorbot.jobs.uploadtimes import with_created_times

__all__ = ["ListingStage"]

log = logging.getLogger("mirrorbot.sync")


class ListingStage(SyncBase):
    """Listing and naming: fills ``report.runs`` with listings, state and mirror names."""

    async def list_all(self) -> None:
        runs = [NamespaceRun(ns, self.mirror) for ns in self.selected_namespaces()]
        if self.options.images:
            runs = self._targeted(runs)
        self.report.runs = runs
        await bounded_map(self._list_one, runs, self.options.listing_concurrency)

    def _targeted(self, runs: list[NamespaceRun]) -> list[NamespaceRun]:
        """Attach each requested reference to the namespace holding it (longest prefix)."""
        for reference in self.options.images:
            if reference.digest is not None and reference.tag is None:
                raise ConfigError(
                    f"{reference}: targeted sync mirrors tags; give the tag, not only a digest"
                )
            owners = [
                run
                for run in runs
                if reference.name.startswith(run.namespace.upstream("") + "/")
                or (not run.namespace.path and reference.registry == run.namespace.registry)
            ]
            if not owners:
                raise ConfigError(f"{reference}: no configured namespace holds this image")
            owner = max(owners, key=lambda run: len(run.namespace.upstream("")))
            owner.requested.append(reference)
        return [run for run in runs if run.requested]

    async def _list_one(self, run: NamespaceRun) -> None:
        ns = run.namespace
        limit = asyncio.timeout_at(self._budget.deadline)
        try:
            async with limit:
                await self._list(run)
        except Exception as exc:
            run.error = self._namespace_error("listed", exc, expired=limit.expired())
        if run.error is not None:
            log.error("%s: %s", ns.source, run.error)
            self.progress.listed(ns.source, None, run.error)
            return
        assert run.listing is not None
        self.progress.listed(ns.source, len(run.listing.repositories), None)
        self.report.warnings.extend(f"{ns.source}: {w}" for w in run.listing.skipped)

    async def _list(self, run: NamespaceRun) -> None:
        ns = run.namespace
        if run.requested:
            run.listing = await self._requested_listing(run)
            return
        by_upload = ns.keep is not None and ns.keep.by == "uploaded"
        source = namespace_source(
            ns, self.pool.reader(ns.registry), hub_client=self._hub_client, upload_times=by_upload
        )
        run.listing = await source.list()
        if by_upload:
            run.listing = await self._created_times(run, run.listing)

    async def _created_times(self, run: NamespaceRun, listing: Listing) -> Listing:
        """``keep: {by: uploaded}`` over a listing without times: the configs' ``created``."""
        ns = run.namespace
        found = await with_created_times(
            listing,
            namespace=ns.path,
            reader=self.pool.reader(ns.registry),
            cache=self.copier.manifests,
            wanted=lambda tag: ns.tag_selected(tag) and not ns.is_mutable(tag),
        )
        self.report.warnings.extend(found.warnings())
        return found.listing

    async def _requested_listing(self, run: NamespaceRun) -> Listing:
        """A listing of just the requested references (a bare repository means all its tags)."""
        ns = run.namespace
        prefix = ns.source + "/"  # registry/path, or the registry alone for a whole registry
        wanted: dict[str, set[str]] = {}
        for reference in run.requested:
            image = reference.name[len(prefix) :]
            tags = wanted.setdefault(image, set())
            if reference.tag is not None:
                tags.add(reference.tag)
            else:
                found = await self.pool.reader(ns.registry).tags(reference.repository)
                tags.update(found)
        repositories = tuple(
            ListedRepository(image, tuple(ListedTag(tag) for tag in sorted(tags)))
            for image, tags in sorted(wanted.items())
            if tags
        )
        return Listing(ns.source, repositories, ())

    def map_names(self) -> None:
        """Mirror names for every listed repository.

        A name two upstream repositories would share is refused for the listed
        newcomer(s): a repository already recorded in state keeps its name, and
        every other claimant fails as one image (exit 1) while the rest of its
        namespace and every other namespace is still mirrored. Collisions the
        config alone makes are caught when it is loaded (exit 2).
        """
        established: dict[str, str] = {}  # mirror repository -> upstream recorded in state
        listed: list[tuple[NamespaceRun, str, str, str]] = []  # run, repo path, upstream, mirror
        for run in self.report.runs:
            ns = run.namespace
            run.state = self.store.load(ns.source, run.mirror)
            for image, entry in run.state.images.items():
                established.setdefault(entry.target, ns.upstream(image))
            if run.listing is None:
                continue
            for repository in run.listing.repositories:
                try:
                    name = mirror_repository(
                        ns.name_template,
                        mirror_namespace=self.config.mirror.namespace,
                        source_registry=ns.registry,
                        source_path=ns.path,
                        repo=repository.path,
                        separator=ns.separator,
                    )
                except MirrorbotError as exc:
                    self.report.warnings.append(f"{ns.upstream(repository.path)}: skipped: {exc}")
                    continue
                target = f"{self.config.mirror.registry}/{name}"
                listed.append((run, repository.path, ns.upstream(repository.path), target))
                run.targets[repository.path] = name
        claimants: dict[str, set[str]] = {}
        for _, _, upstream, target in listed:
            claimants.setdefault(target, set()).add(upstream)
        for run, path, upstream, target in listed:
            owner = established.get(target)
            rivals = sorted(claimants[target] - {upstream} | ({owner} if owner else set()))
            if owner == upstream or not rivals:
                continue
            del run.targets[path]
            self.report.failures.append(
                Failure(upstream, target, str(NameCollisionError(upstream, rivals[0], target)))
            )
            log.error("%s: not mirrored: %s is also the mirror of %s", upstream, target, rivals[0])
