"""``mirrorbot find``: from an upstream name, a tag or a mirror name to the pull command.

Tags are ordered and the pull tag chosen by ``mirrorbot.domain.tagorder``, exactly as
the index pages do; signature, attestation and referrers tags are reported
apart and never suggested as the pull.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mirrorbot.domain.tagorder import (
    artifact_kind,
    artifact_subject,
    newest_first,
    pull_tag,
    split_artifacts,
)
from mirrorbot.reference import split_tag
from mirrorbot.state.store import NamespaceState, TagRecord

__all__ = ["Match", "find", "matches_to_json"]


@dataclass(frozen=True, slots=True)
class Match:
    upstream: str  # upstream repository (no tag)
    mirror: str  # mirror repository (no tag)
    tags: tuple[str, ...]  # matching image tags, newest first
    artifacts: tuple[str, ...] = ()  # matching signature/attestation/referrers tags
    records: Mapping[str, TagRecord] = field(default_factory=dict, compare=False, hash=False)

    @property
    def pull_tag(self) -> str | None:
        return pull_tag(self.tags)

    @property
    def pull(self) -> str | None:
        """``docker pull`` for the suggested tag; None when only artifacts matched."""
        tag = self.pull_tag
        return f"docker pull {self.mirror}:{tag}" if tag is not None else None

    def to_json(self) -> dict[str, Any]:
        def record(tag: str) -> dict[str, Any]:
            value = self.records.get(tag)
            return {
                "tag": tag,
                "digest": value.digest if value else None,
                "platforms": list(value.platforms) if value else [],
                "synced": value.synced if value else None,
            }

        return {
            "upstream": self.upstream,
            "mirror": self.mirror,
            "pull": self.pull,
            "tags": [
                record(tag) | {"pull": f"docker pull {self.mirror}:{tag}"} for tag in self.tags
            ],
            "artifacts": [
                record(tag) | {"kind": artifact_kind(tag), "subject": artifact_subject(tag)}
                for tag in self.artifacts
            ],
        }


def matches_to_json(matches: Iterable[Match]) -> list[dict[str, Any]]:
    return [match.to_json() for match in matches]


def find(states: Iterable[NamespaceState], query: str) -> list[Match]:
    """Case-insensitive substring search on names; ``name:tag`` narrows to exactly that tag.

    The tag is split off with the reference grammar's rule, so ``127.0.0.1:5000/ns/app``
    is a name (the colon before the last ``/`` is a port) and ``…/app:v1`` names tag ``v1``.
    """
    name, tag = split_tag(query.strip())
    name = name.lower()
    matches: list[Match] = []
    for state in states:
        for image, entry in sorted(state.images.items()):
            upstream = f"{state.source}/{image}"
            named = any(name in h for h in (upstream.lower(), entry.target.lower()))
            if tag is not None:
                wanted = [tag] if named and tag in entry.tags else []
            elif named:
                wanted = newest_first(entry.tags)
            else:
                wanted = [t for t in newest_first(entry.tags) if name in t.lower()]
            if wanted:
                images, artifacts = split_artifacts(wanted)
                matches.append(
                    Match(upstream, entry.target, tuple(images), tuple(artifacts), entry.tags)
                )
    return matches
