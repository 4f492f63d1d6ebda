"""``mirrorbot find``: from an upstream name, a tag or a mirror name to the pull command."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mirrorbot.state.store import NamespaceState

__all__ = ["Match", "find"]


@dataclass(frozen=True, slots=True)
class Match:
    upstream: str  # upstream repository (no tag)
    mirror: str  # mirror repository (no tag)
    tags: tuple[str, ...]  # matching tags, newest first

    @property
    def pull(self) -> str:
        tag = "latest" if "latest" in self.tags else self.tags[0]
        return f"docker pull {self.mirror}:{tag}"


def find(states: Iterable[NamespaceState], query: str) -> list[Match]:
    """Case-insensitive substring search; ``name:tag`` narrows to matching tags."""
    text = query.strip().lower()
    name_part, _, tag_part = text.rpartition(":") if ":" in text else (text, "", "")
    matches: list[Match] = []
    for state in states:
        for image, entry in sorted(state.images.items()):
            upstream = f"{state.source}/{image}"
            haystack = (upstream.lower(), entry.target.lower(), image.lower())
            ordered = sorted(
                entry.tags.items(), key=lambda item: (item[1].synced, item[0]), reverse=True
            )
            if tag_part:
                if not any(name_part in h for h in haystack):
                    continue
                tags = tuple(tag for tag, _ in ordered if tag_part in tag.lower())
            elif any(text in h for h in haystack):
                tags = tuple(tag for tag, _ in ordered)
            else:
                tags = tuple(tag for tag, _ in ordered if text in tag.lower())
            if tags:
                matches.append(Match(upstream, entry.target, tags))
    return matches
