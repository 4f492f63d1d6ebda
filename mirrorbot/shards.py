"""Scale-out: split a run's images across N jobs, and merge what the jobs did.

An image (all its tags, signatures included) belongs to exactly one shard, so
two jobs never push the same manifests. Images are balanced by the number of
tags the plan would copy for them (greedy, heaviest first), which is what
takes time. The plan job publishes its assignment; shard jobs that receive it
follow it exactly, and anything it does not name falls back to a stable hash.

Each shard writes a *fragment*: the changes it verified and the failures it
saw. ``publish`` merges fragments into state, one CHANGELOG section and the
index, and commits once — so a shard that fails loses nothing the others did.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirrorbot.publish import Change
from mirrorbot.registry.errors import MirrorbotError
from mirrorbot.state.store import atomic_write

__all__ = [
    "FRAGMENT_VERSION",
    "Fragment",
    "FragmentError",
    "assign",
    "fragment_name",
    "merge_changes",
    "read_fragments",
    "shard_of",
]

FRAGMENT_VERSION = 1


class FragmentError(MirrorbotError):
    """A fragment that cannot be read or does not fit with the others."""


def assign(weights: Mapping[str, int], count: int) -> dict[str, int]:
    """Image key → shard (1-based), balancing total weight; deterministic."""
    loads = [0] * count
    assignment: dict[str, int] = {}
    for key, weight in sorted(weights.items(), key=lambda item: (-item[1], item[0])):
        index = min(range(count), key=lambda i: (loads[i], i))
        loads[index] += weight
        assignment[key] = index + 1
    return assignment


def hashed_shard(key: str, count: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % count + 1


def shard_of(key: str, assignments: Mapping[str, int], count: int) -> int:
    return assignments.get(key) or hashed_shard(key, count)


def fragment_name(index: int, count: int) -> str:
    return f"fragment-{index}-of-{count}.json"


@dataclass(frozen=True, slots=True)
class Fragment:
    index: int
    count: int
    when: str  # the run's timestamp, shared by all shards of one run
    changes: tuple[Change, ...]
    failures: tuple[dict[str, str], ...] = ()
    errors: tuple[str, ...] = field(default=())

    def to_json(self) -> str:
        document: dict[str, Any] = {
            "version": FRAGMENT_VERSION,
            "shard": f"{self.index}/{self.count}",
            "when": self.when,
            "changes": [change.to_json() for change in self.changes],
            "failures": list(self.failures),
            "errors": list(self.errors),
        }
        return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def write(self, directory: Path) -> Path:
        path = directory / fragment_name(self.index, self.count)
        atomic_write(path, self.to_json())
        return path

    @classmethod
    def read(cls, path: Path) -> Fragment:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("version") != FRAGMENT_VERSION:
                raise FragmentError(
                    f"{path.name}: unsupported fragment version {document.get('version')!r}"
                )
            index_text, _, count_text = str(document["shard"]).partition("/")
            return cls(
                index=int(index_text),
                count=int(count_text),
                when=str(document["when"]),
                changes=tuple(Change.from_json(item) for item in document["changes"]),
                failures=tuple(
                    {str(k): str(v) for k, v in item.items()}
                    for item in document.get("failures", [])
                ),
                errors=tuple(str(e) for e in document.get("errors", [])),
            )
        except FragmentError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FragmentError(
                f"{path.name}: not a mirrorbot fragment ({type(exc).__name__}: {exc})"
            ) from None


def read_fragments(directories: Iterable[Path]) -> list[Fragment]:
    """Every ``fragment-*.json`` under the given directories (artifact downloads nest them)."""
    fragments: list[Fragment] = []
    for directory in directories:
        paths = [directory] if directory.is_file() else sorted(directory.rglob("fragment-*.json"))
        fragments.extend(Fragment.read(path) for path in paths)
    counts = {fragment.count for fragment in fragments}
    if len(counts) > 1:
        raise FragmentError(f"fragments from runs with different shard counts: {sorted(counts)}")
    return sorted(fragments, key=lambda f: f.index)


def missing_shards(fragments: Sequence[Fragment]) -> list[int]:
    if not fragments:
        return []
    count = fragments[0].count
    present = {fragment.index for fragment in fragments}
    return [index for index in range(1, count + 1) if index not in present]


def merge_changes(fragments: Sequence[Fragment]) -> list[Change]:
    """All shards' changes; a tag reported twice (a re-run shard) counts once."""
    merged: dict[tuple[str, str, str, str], Change] = {}
    for fragment in fragments:
        for change in fragment.changes:
            merged.setdefault((change.namespace, change.mirror, change.image, change.tag), change)
    return sorted(merged.values(), key=lambda c: (c.namespace, c.image, c.tag))
