"""Scale-out: split a run's images across N jobs, and merge what the jobs did.

An image (all its tags, signatures included) belongs to exactly one shard, so
two jobs never push the same manifests. Images are balanced by the number of
tags the plan would copy for them (greedy, heaviest first), which is what
takes time. The plan job publishes its assignment; shard jobs that receive it
follow it exactly, and anything it does not name falls back to a stable hash.

Each shard writes a *fragment*: the changes it verified and the failures it
saw. ``publish`` merges fragments into state, one CHANGELOG section and the
index, and commits once — so a shard that fails loses nothing the others did.

Fragments arrive as downloaded artifacts: data to check, not to trust. A
fragment file must be a plain file (never a link) of bounded size; every
field of every record must fit the grammar mirrorbot writes (digests, tags and
names by the reference grammar, media types, timestamps, bounded sizes and
counts), so nothing can carry Markdown, HTML or a newline into the CHANGELOG
or the index. A record that does not fit is dropped and reported; a file that
does not fit is refused whole.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirrorbot.domain.changes import Change
from mirrorbot.engine.registry.media import MAX_MANIFEST_SIZE
from mirrorbot.errors import (
    FragmentError,
    InvalidFragmentRecordError,
    InvalidReferenceError,
    StateError,
    UnsafeStatePathError,
)
from mirrorbot.reference import parse_reference, validate_repository, validate_tag
from mirrorbot.state.safefs import SafeTree
from mirrorbot.state.store import MAX_REFERRERS, TagRecord, atomic_write

__all__ = [
    "FRAGMENT_VERSION",
    "Fragment",
    "assign",
    "change_from_fragment",
    "check_timestamp",
    "fragment_name",
    "merge_changes",
    "read_fragments",
    "shard_of",
]

FRAGMENT_VERSION = 1
MAX_FRAGMENT_BYTES = 64 * 1024 * 1024
MAX_SHARDS = 256  # plan --shards allows no more
MAX_RECORDS = 500_000  # changes, failures or errors in one fragment
MAX_PLATFORMS = 256
MAX_TEXT = 16 * 1024  # one failure or error message
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_TIMESTAMP_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_MEDIA_TYPE_RE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)
_PLATFORM_RE = re.compile(r"[A-Za-z0-9._+-]{1,64}(?:/[A-Za-z0-9._+-]{1,64}){1,2}")
_SHARD_RE = re.compile(r"([1-9][0-9]{0,2})/([1-9][0-9]{0,2})")
_CHANGE_KEYS = frozenset(
    {"kind", "namespace", "mirror", "image", "tag", "upstream", "targetRepository", "record"}
)
_RECORD_KEYS = frozenset(
    {
        "digest",
        "mediaType",
        "platforms",
        "size",
        "synced",
        "sourceDigest",
        "goneUpstream",
        "referrers",
        "backupOf",
    }
)
# What `sync --output` writes (`repaired` comes from `--repair`, which writes no fragment).
_FRAGMENT_KINDS = ("new", "updated", "skipped", "gone", "returned", "backup", "pruned")
# A skip's reason reaches the CHANGELOG: mirrorbot's own words, nothing that renders as markup.
_REASON_RE = re.compile(r"[A-Za-z0-9 .,:;()/+_-]{1,300}")
_FAILURE_KEYS = frozenset({"upstream", "target", "error"})


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
    # Records dropped when read, each a one-line reason: never merged, always reported.
    rejected: tuple[str, ...] = field(default=(), compare=False)

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
    def read(cls, path: Path, *, root: Path | None = None) -> Fragment:
        """Read and check one fragment file; ``root`` is the folder it was found in."""
        tree = SafeTree(path.parent if root is None else root, path, max_bytes=MAX_FRAGMENT_BYTES)
        where = tree.display(tree.parts(path))
        try:
            data = tree.read_bytes(path)
            if data is None:
                raise FragmentError(f"{where}: no such fragment")
            document = json.loads(data.decode("utf-8"))
        except UnsafeStatePathError as exc:
            raise FragmentError(
                f"{where} is a {exc.what}, not a regular file: a fragment is never followed"
            ) from None
        except StateError as exc:
            raise FragmentError(f"{where}: {str(exc).partition(': ')[2] or exc}") from None
        except UnicodeDecodeError as exc:
            raise FragmentError(f"{where}: not valid UTF-8 (byte {exc.start})") from None
        except RecursionError:
            raise FragmentError(f"{where}: not valid JSON (nested too deeply)") from None
        except ValueError as exc:
            raise FragmentError(f"{where}: not valid JSON ({exc})") from None
        return cls.from_document(document, where)

    @classmethod
    def from_document(cls, document: Any, where: str) -> Fragment:
        """A fragment from parsed JSON: file-level faults raise, bad records are dropped."""
        if not isinstance(document, dict):
            raise FragmentError(f"{where}: not a mirrorbot fragment (the top level is no object)")
        if document.get("version") != FRAGMENT_VERSION:
            raise FragmentError(
                f"{where}: unsupported fragment version {_shown(document.get('version'))}"
            )
        shard = document.get("shard")
        match = _SHARD_RE.fullmatch(shard) if isinstance(shard, str) else None
        if match is None or not int(match[1]) <= int(match[2]) <= MAX_SHARDS:
            raise FragmentError(
                f"{where}: shard {_shown(shard)} is not I/N with 1 <= I <= N <= 256"
            )
        try:
            when = check_timestamp(document.get("when"), "when")
        except InvalidFragmentRecordError as exc:
            raise FragmentError(f"{where}: {exc}") from None
        changes: list[Change] = []
        rejected: list[str] = []
        for number, item in enumerate(_bounded_list(document, "changes", where), start=1):
            try:
                changes.append(change_from_fragment(item))
            except InvalidFragmentRecordError as exc:
                rejected.append(f"{where}: change {number} dropped: {exc}")
        failures = tuple(
            _failure(item, f"{where}: failure {number}")
            for number, item in enumerate(_bounded_list(document, "failures", where), start=1)
        )
        errors = tuple(
            _text(item, f"{where}: error {number}")
            for number, item in enumerate(_bounded_list(document, "errors", where), start=1)
        )
        return cls(
            index=int(match[1]),
            count=int(match[2]),
            when=when,
            changes=tuple(changes),
            failures=failures,
            errors=errors,
            rejected=tuple(rejected),
        )


def _shown(value: Any) -> str:
    """A hostile value quoted for a one-line message: repr, and not too much of it."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bounded_list(document: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise FragmentError(f"{where}: {key} is not a list")
    if len(value) > MAX_RECORDS:
        raise FragmentError(f"{where}: more than {MAX_RECORDS} {key}")
    return value


def _text(value: Any, where: str) -> str:
    """Free text a shard reported (printed, never published): one bounded line."""
    if not isinstance(value, str):
        raise FragmentError(f"{where}: not a string")
    line = " ".join(value[:MAX_TEXT].split())
    return "".join(ch if ch.isprintable() else "?" for ch in line)


def _failure(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not set(value) <= _FAILURE_KEYS:
        raise FragmentError(f"{where}: a failure is an object with upstream, target and error")
    return {key: _text(item, f"{where}: {key}") for key, item in value.items()}


def check_timestamp(value: Any, name: str) -> str:
    """``2026-11-23T03:04:05Z``, and a real moment: what mirrorbot writes, nothing else."""
    if not isinstance(value, str) or _TIMESTAMP_RE.fullmatch(value) is None:
        raise InvalidFragmentRecordError(
            f"{name} {_shown(value)} is not a UTC timestamp like 2026-11-23T03:04:05Z"
        )
    try:
        dt.datetime.strptime(value, TIMESTAMP_FORMAT)
    except ValueError:
        raise InvalidFragmentRecordError(f"{name} {_shown(value)} is not a real moment") from None
    return value


def _field(value: Mapping[str, Any], key: str) -> str:
    item = value.get(key)
    if not isinstance(item, str):
        raise InvalidFragmentRecordError(f"{key} {_shown(item)} is not a string")
    return item


def _digest(value: Any, name: str) -> str:
    if not isinstance(value, str) or _DIGEST_RE.fullmatch(value) is None:
        raise InvalidFragmentRecordError(f"{name} {_shown(value)} is not sha256:<64 hex>")
    return value


def _grammar(check: Any, value: str, name: str) -> None:
    try:
        check(value)
    except InvalidReferenceError as exc:
        raise InvalidFragmentRecordError(f"{name}: {exc}") from None


def _namespace(value: str, name: str) -> None:
    """``registry[/path]``, by the reference grammar (checked as the name of a repository in it)."""
    _grammar(lambda v: parse_reference(f"{v}/x", default_tag=None), value, name)


def _record(value: Any, *, skipped: bool = False) -> TagRecord:
    """A tag record; a skip's carries only upstream's digest (maybe unknown) and the time."""
    if not isinstance(value, dict) or not set(value) <= _RECORD_KEYS:
        raise InvalidFragmentRecordError(f"record {_shown(value)} has unknown fields")
    if skipped:
        raw = value.get("digest")
        digest = "" if raw == "" else _digest(raw, "digest")
        synced = check_timestamp(value.get("synced"), "synced")
        return TagRecord(digest, "", (), 0, synced)
    digest = _digest(value.get("digest"), "digest")
    media_type = _field(value, "mediaType")
    if _MEDIA_TYPE_RE.fullmatch(media_type) is None:
        raise InvalidFragmentRecordError(f"mediaType {_shown(media_type)} is not a media type")
    platforms = value.get("platforms", [])
    if (
        not isinstance(platforms, list)
        or len(platforms) > MAX_PLATFORMS
        or not all(isinstance(p, str) and _PLATFORM_RE.fullmatch(p) for p in platforms)
    ):
        raise InvalidFragmentRecordError(f"platforms {_shown(platforms)} are not os/arch[/variant]")
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_MANIFEST_SIZE:
        raise InvalidFragmentRecordError(f"size {_shown(size)} is not a manifest size")
    synced = check_timestamp(value.get("synced"), "synced")
    source = value.get("sourceDigest")
    gone = value.get("goneUpstream")
    backup_of = value.get("backupOf")
    if backup_of is not None:
        _grammar(validate_tag, _field(value, "backupOf"), "backupOf")
    referrers = value.get("referrers", {})
    if not isinstance(referrers, dict) or len(referrers) > MAX_REFERRERS:
        raise InvalidFragmentRecordError(f"referrers {_shown(referrers)} is not a digest map")
    for referrer, artifact_type in referrers.items():
        _digest(referrer, "referrer")
        if not isinstance(artifact_type, str) or (
            artifact_type and _MEDIA_TYPE_RE.fullmatch(artifact_type) is None
        ):
            raise InvalidFragmentRecordError(f"referrer type {_shown(artifact_type)} is not a type")
    return TagRecord(
        digest,
        media_type,
        tuple(platforms),
        size,
        synced,
        None if source is None else _digest(source, "sourceDigest"),
        None if gone is None else check_timestamp(gone, "goneUpstream"),
        backup_of,
        tuple(sorted(referrers.items())),
    )


def change_from_fragment(value: Any) -> Change:
    """One change record, every field checked; InvalidFragmentRecordError says which is wrong."""
    if not isinstance(value, dict) or not set(value) - {"previous", "reason"} <= _CHANGE_KEYS:
        raise InvalidFragmentRecordError("a change is an object with the fields sync writes")
    kind = value.get("kind")
    if kind not in _FRAGMENT_KINDS:
        raise InvalidFragmentRecordError(
            f"kind {_shown(kind)} is not one of {', '.join(_FRAGMENT_KINDS)}"
        )
    reason = value.get("reason")
    if (reason is None) != (kind != "skipped") or (
        reason is not None and (not isinstance(reason, str) or not _REASON_RE.fullmatch(reason))
    ):
        raise InvalidFragmentRecordError(f"reason {_shown(reason)} does not fit a {kind} change")
    namespace, mirror = _field(value, "namespace"), _field(value, "mirror")
    image, tag = _field(value, "image"), _field(value, "tag")
    upstream, target = _field(value, "upstream"), _field(value, "targetRepository")
    _namespace(namespace, "namespace")
    _namespace(mirror, "mirror")
    _grammar(validate_repository, image, "image")
    _grammar(validate_tag, tag, "tag")
    _grammar(lambda v: parse_reference(v, default_tag=None), upstream, "upstream")
    if not upstream.endswith(f"/{image}:{tag}"):
        raise InvalidFragmentRecordError(f"upstream {_shown(upstream)} is not {image}:{tag}")
    _grammar(lambda v: parse_reference(v, default_tag=None), target, "targetRepository")
    if ":" in target.rpartition("/")[2] or "@" in target:
        raise InvalidFragmentRecordError(f"targetRepository {_shown(target)} has a tag or digest")
    previous = value.get("previous")
    record = _record(value.get("record"), skipped=kind == "skipped")
    if (kind == "backup") != (record.backup_of is not None):
        raise InvalidFragmentRecordError("backupOf belongs to a backup change, and only there")
    return Change(
        kind=kind,
        namespace=namespace,
        mirror=mirror,
        image=image,
        tag=tag,
        upstream=upstream,
        target_repository=target,
        record=record,
        previous=None if previous is None else _digest(previous, "previous"),
        reason=reason,
    )


def _is_fragment(name: str) -> bool:
    return fnmatch.fnmatchcase(name, "fragment-*.json")


def read_fragments(directories: Iterable[Path]) -> list[Fragment]:
    """Every ``fragment-*.json`` under the given directories (artifact downloads nest them).

    Links are never followed: a fragment that is a link is refused, other links skipped.
    """
    fragments: list[Fragment] = []
    for directory in directories:
        if directory.is_symlink() or directory.is_file():
            fragments.append(Fragment.read(directory))
            continue
        tree = SafeTree(directory, directory, max_bytes=MAX_FRAGMENT_BYTES)
        try:
            paths = tree.files(_is_fragment, strict=False)
        except UnsafeStatePathError as exc:
            raise FragmentError(
                f"{directory}/{exc.path} is a {exc.what}, not a regular file: "
                "a fragment is never followed"
            ) from None
        fragments.extend(Fragment.read(path, root=directory) for path in paths)
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
