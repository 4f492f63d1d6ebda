"""``prune: true``: delete from the mirror the tags gone upstream (off by default).

The registry API deletes manifests by digest, and a manifest deleted takes
every tag pointing to it. So a gone tag is deleted only when no other tag of
its repository in state (a tag still listed upstream, or a backup tag) shares
its digest; otherwise it is kept and one line says why. Docker Hub's registry
API does not delete: a 405 or ``UNSUPPORTED`` answer stops pruning on that
registry with one line, and state stays as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from mirrorbot.errors import ErrorCode, MirrorbotError, RegistryError
from mirrorbot.state.store import NamespaceState, TagRecord

__all__ = ["Deleter", "PruneCandidate", "PrunePlan", "Pruner", "plan_prune"]

TagKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class PruneCandidate:
    """One digest of one image to delete, and the gone tags it takes with it."""

    image: str
    target: str  # full mirror repository, "registry/namespace/name"
    digest: str
    tags: tuple[tuple[str, TagRecord], ...]

    @property
    def references(self) -> list[str]:
        return [f"{self.target}:{tag}" for tag, _ in self.tags]


@dataclass(slots=True)
class PrunePlan:
    deletes: list[PruneCandidate] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # one line per gone tag that must stay


def plan_prune(state: NamespaceState, gone: Iterable[TagKey]) -> PrunePlan:
    """Group gone tags by (image, digest); keep those whose digest another recorded tag holds."""
    plan = PrunePlan()
    by_image: dict[str, set[str]] = {}
    for image, tag in gone:
        if state.lookup(image, tag) is not None:
            by_image.setdefault(image, set()).add(tag)
    for image, tags in sorted(by_image.items()):
        entry = state.images[image]
        groups: dict[str, list[tuple[str, TagRecord]]] = {}
        for tag in sorted(tags):
            record = entry.tags[tag]
            groups.setdefault(record.digest, []).append((tag, record))
        for digest, members in groups.items():
            sharers = sorted(
                tag
                for tag, record in entry.tags.items()
                if record.digest == digest and tag not in tags
            )
            if sharers:
                holder = _describe_holder(entry.tags[sharers[0]], sharers[0])
                plan.kept.extend(
                    f"{entry.target}:{tag}: not pruned: {holder} holds the same image ({digest[:19]})"
                    for tag, _ in members
                )
                continue
            plan.deletes.append(PruneCandidate(image, entry.target, digest, tuple(members)))
    return plan


def _describe_holder(record: TagRecord, tag: str) -> str:
    return f"backup tag {tag}" if record.backup_of is not None else f"tag {tag}"


class Pruner:
    """Deletes planned digests; remembers registries that said they do not delete."""

    def __init__(self) -> None:
        self.refusing: set[str] = set()

    async def delete(self, client: Deleter, registry: str, candidate: PruneCandidate) -> str | None:
        """None when deleted (or already absent); else one line saying why not."""
        if registry in self.refusing:
            return ""  # said once already for this registry
        repository = candidate.target.partition("/")[2]
        try:
            await client.manifest_delete(repository, candidate.digest)
        except RegistryError as exc:
            if exc.not_found or exc.has(ErrorCode.MANIFEST_UNKNOWN):
                return None  # nothing left to delete: state may forget it
            if exc.status == 405 or exc.has(ErrorCode.UNSUPPORTED):
                self.refusing.add(registry)
                return f"{registry}: does not delete manifests (prune skipped, state unchanged)"
            return f"{', '.join(candidate.references)}: not pruned: {exc}"
        except MirrorbotError as exc:
            return f"{', '.join(candidate.references)}: not pruned: {exc}"
        return None


class Deleter(Protocol):
    async def manifest_delete(self, repository: str, digest: str) -> None: ...
