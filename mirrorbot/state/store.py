"""State files: one JSON document per upstream namespace, diff-friendly.

``<root>/<registry>/<namespace>.json`` with sorted keys, 2-space indent and a
trailing newline, so a git diff shows one line per changed tag. Files are
written atomically (temp file + rename): a run killed mid-write leaves the
previous version, never half a file. Every file under the state folder is
read and written through :mod:`mirrorbot.state.safefs`: never through a link,
only regular files, size-capped. A namespace covering a whole registry
(empty path) is stored as ``<registry>/_root.json``; ``_`` cannot start a
repository name, so it cannot collide with a real namespace.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirrorbot.errors import (
    CorruptStateError,
    InvalidReferenceError,
    StateError,
)
from mirrorbot.reference import parse_reference, validate_digest, validate_repository, validate_tag
from mirrorbot.state.safefs import SafeTree

__all__ = [
    "STATE_VERSION",
    "ImageRecord",
    "NamespaceState",
    "SkipRecord",
    "StateStore",
    "TagRecord",
    "atomic_write",
    "is_media_type",
]

STATE_VERSION = 1
ROOT_NAMESPACE_FILE = "_root.json"
MAX_REFERRERS = 256  # per image: what one referrers listing may add (mirrorbot.jobs.referrers)


@dataclass(frozen=True, slots=True)
class TagRecord:
    """A tag the mirror verifiably holds."""

    digest: str
    media_type: str
    platforms: tuple[str, ...]
    size: int
    synced: str
    # Only when a platform filter made the mirror's index differ from upstream's.
    source_digest: str | None = None
    # When a sync first found the tag gone upstream (it stays mirrored); None while listed.
    gone: str | None = None
    # A backup tag (config ``backup:``) keeping this tag's previous image; never listed upstream.
    backup_of: str | None = None
    # OCI referrers copied next to this image: (digest, artifactType), sorted; additive field.
    referrers: tuple[tuple[str, str], ...] = ()

    @property
    def upstream_digest(self) -> str:
        return self.source_digest or self.digest

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "digest": self.digest,
            "mediaType": self.media_type,
            "platforms": list(self.platforms),
            "size": self.size,
            "synced": self.synced,
        }
        if self.source_digest and self.source_digest != self.digest:
            document["sourceDigest"] = self.source_digest
        if self.gone:
            document["goneUpstream"] = self.gone
        if self.backup_of:
            document["backupOf"] = self.backup_of
        if self.referrers:
            document["referrers"] = dict(sorted(self.referrers))
        return document

    @classmethod
    def from_json(cls, value: Any, where: str) -> TagRecord:
        if not isinstance(value, Mapping):
            raise StateError(f"{where}: a tag record must be an object")
        try:
            digest = value["digest"]
            media_type = value.get("mediaType", "")
            platforms = value.get("platforms", [])
            size = value.get("size", 0)
            synced = value.get("synced", "")
            source_digest = value.get("sourceDigest")
            gone = value.get("goneUpstream")
            backup_of = value.get("backupOf")
            referrers = value.get("referrers", {})
        except (KeyError, TypeError):
            raise StateError(f"{where}: a tag record needs a digest") from None
        if (
            not isinstance(digest, str)
            or not isinstance(media_type, str)
            or not isinstance(platforms, list)
            or not all(isinstance(p, str) for p in platforms)
            or not isinstance(size, int)
            or not isinstance(synced, str)
            or not (source_digest is None or isinstance(source_digest, str))
            or not (gone is None or isinstance(gone, str))
            or not (backup_of is None or isinstance(backup_of, str))
            or not isinstance(referrers, Mapping)
            or len(referrers) > MAX_REFERRERS
            or not all(isinstance(t, str) for t in referrers.values())
        ):
            raise StateError(f"{where}: malformed tag record")
        for referrer, artifact_type in referrers.items():
            _check_digest(referrer, where)
            if artifact_type and _MEDIA_TYPE_RE.fullmatch(artifact_type) is None:
                raise StateError(
                    f"{where}: referrer type {artifact_type[:80]!r} is not a media type"
                )
        # Every string here reaches the index page: only what mirrorbot writes passes.
        _check_digest(digest, where)
        if source_digest is not None:
            _check_digest(source_digest, where)
        if media_type and _MEDIA_TYPE_RE.fullmatch(media_type) is None:
            raise StateError(f"{where}: mediaType {media_type[:80]!r} is not a media type")
        if not all(_PLATFORM_RE.fullmatch(p) for p in platforms):
            raise StateError(f"{where}: platforms must be os/arch[/variant]")
        if synced and not _is_timestamp(synced):
            raise StateError(f"{where}: synced {synced[:80]!r} is not a timestamp")
        if gone is not None and not _is_timestamp(gone):
            raise StateError(f"{where}: goneUpstream {gone[:80]!r} is not a timestamp")
        if backup_of is not None:
            _check_tag(backup_of, where)
        return cls(
            digest,
            media_type,
            tuple(platforms),
            size,
            synced,
            source_digest,
            gone,
            backup_of,
            tuple(sorted(referrers.items())),
        )


@dataclass(frozen=True, slots=True)
class SkipRecord:
    """A tag never copied because it can never be (schema1, …): not retried until it changes."""

    reason: str
    digest: str  # upstream's digest when it was skipped; "" when upstream did not say
    since: str

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "reason": self.reason, "since": self.since}

    @classmethod
    def from_json(cls, value: Any, where: str) -> SkipRecord:
        if not isinstance(value, Mapping):
            raise StateError(f"{where}: a skipped record must be an object")
        reason, digest, since = value.get("reason"), value.get("digest", ""), value.get("since", "")
        if not (isinstance(reason, str) and isinstance(digest, str) and isinstance(since, str)):
            raise StateError(f"{where}: malformed skipped record")
        return cls(reason, digest, since)


@dataclass(slots=True)
class ImageRecord:
    target: str
    tags: dict[str, TagRecord] = field(default_factory=dict)


@dataclass(slots=True)
class NamespaceState:
    """Everything mirrored from one upstream namespace."""

    source: str
    mirror: str
    images: dict[str, ImageRecord] = field(default_factory=dict)
    # image -> tag -> why it is not mirrored; additive: absent from files that skip nothing.
    skipped: dict[str, dict[str, SkipRecord]] = field(default_factory=dict)

    def record(self, image: str, target: str, tag: str, record: TagRecord) -> None:
        entry = self.images.setdefault(image, ImageRecord(target))
        entry.target = target
        entry.tags[tag] = record
        self.unskip(image, tag)

    def forget(self, image: str, tag: str) -> None:
        """Drop a tag deleted from the mirror (``prune``); an image left with no tags goes too."""
        entry = self.images.get(image)
        if entry is not None and entry.tags.pop(tag, None) is not None and not entry.tags:
            del self.images[image]

    def skip(self, image: str, tag: str, record: SkipRecord) -> None:
        self.skipped.setdefault(image, {})[tag] = record

    def unskip(self, image: str, tag: str) -> None:
        tags = self.skipped.get(image)
        if tags is not None and tags.pop(tag, None) is not None and not tags:
            del self.skipped[image]

    def skipped_record(self, image: str, tag: str) -> SkipRecord | None:
        return self.skipped.get(image, {}).get(tag)

    def lookup(self, image: str, tag: str) -> TagRecord | None:
        entry = self.images.get(image)
        return entry.tags.get(tag) if entry else None

    def tag_count(self) -> int:
        return sum(len(entry.tags) for entry in self.images.values())

    def to_json(self) -> str:
        document = {
            "version": STATE_VERSION,
            "source": self.source,
            "mirror": self.mirror,
            "images": {
                name: {
                    "target": entry.target,
                    "tags": {tag: record.to_json() for tag, record in entry.tags.items()},
                }
                for name, entry in self.images.items()
            },
        }
        if self.skipped:
            document["skipped"] = {
                image: {tag: record.to_json() for tag, record in tags.items()}
                for image, tags in self.skipped.items()
            }
        return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> NamespaceState:
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise CorruptStateError(f"{where}: not valid JSON ({exc})") from None
        except RecursionError:
            raise CorruptStateError(f"{where}: not valid JSON (nested too deeply)") from None
        if not isinstance(document, dict):
            raise StateError(f"{where}: the top level must be an object")
        version = document.get("version")
        if version != STATE_VERSION:
            raise StateError(f"{where}: state version {version!r} is not {STATE_VERSION}")
        source, mirror, images = (
            document.get("source"),
            document.get("mirror"),
            document.get("images", {}),
        )
        if (
            not isinstance(source, str)
            or not isinstance(mirror, str)
            or not isinstance(images, dict)
        ):
            raise StateError(f"{where}: needs string source and mirror and an images object")
        _check_namespace(source, where, "source")
        if mirror:
            _check_namespace(mirror, where, "mirror")
        state = cls(source, mirror)
        for name, entry in images.items():
            _check_name(name, where)
            if not isinstance(entry, dict) or not isinstance(entry.get("target"), str):
                raise StateError(f"{where}: image {name!r} needs a target")
            _check_target(entry["target"], f"{where}: image {name!r}")
            tags = entry.get("tags", {})
            if not isinstance(tags, dict):
                raise StateError(f"{where}: image {name!r} tags must be an object")
            record = ImageRecord(entry["target"])
            for tag, value in tags.items():
                _check_tag(tag, where)
                record.tags[tag] = TagRecord.from_json(value, f"{where}: {name}:{tag}")
            state.images[name] = record
        skipped = document.get("skipped", {})
        if not isinstance(skipped, dict):
            raise StateError(f"{where}: skipped must be an object")
        for name, tags in skipped.items():
            _check_name(name, where)
            if not isinstance(tags, dict):
                raise StateError(f"{where}: skipped {name!r} must be an object")
            for tag, value in tags.items():
                _check_tag(tag, where)
                state.skip(name, tag, SkipRecord.from_json(value, f"{where}: {name}:{tag}"))
        return state

    def copy(self) -> NamespaceState:
        return NamespaceState(
            self.source,
            self.mirror,
            {name: ImageRecord(e.target, dict(e.tags)) for name, e in self.images.items()},
            {name: dict(tags) for name, tags in self.skipped.items()},
        )


def _check_name(name: str, where: str) -> None:
    try:
        validate_repository(name)
    except InvalidReferenceError as exc:
        raise StateError(f"{where}: {exc}") from None


_MEDIA_TYPE_RE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)
_PLATFORM_RE = re.compile(r"[A-Za-z0-9._+-]{1,64}(?:/[A-Za-z0-9._+-]{1,64}){1,2}")
_TIMESTAMP_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.+Z-]{1,30}")


def _is_timestamp(value: str) -> bool:
    if _TIMESTAMP_RE.fullmatch(value) is None:
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def is_media_type(text: str) -> bool:
    """``type/subtype`` as state accepts it (what reaches the index page must pass this)."""
    return _MEDIA_TYPE_RE.fullmatch(text) is not None


def _check_digest(digest: str, where: str) -> None:
    try:
        validate_digest(digest)
    except InvalidReferenceError as exc:
        raise StateError(f"{where}: {exc}") from None


def _check_namespace(value: str, where: str, what: str) -> None:
    """``registry[/path]`` by the reference grammar."""
    try:
        parse_reference(f"{value}/x", default_tag=None)
    except InvalidReferenceError:
        raise StateError(f"{where}: {what} {value[:80]!r} is not registry[/path]") from None


def _check_target(target: str, where: str) -> None:
    """A repository name, without tag or digest."""
    try:
        parsed = parse_reference(target, default_tag=None)
    except InvalidReferenceError as exc:
        raise StateError(f"{where}: target: {exc}") from None
    if parsed.tag is not None or parsed.digest is not None:
        raise StateError(f"{where}: target {target[:80]!r} has a tag or digest")


def _check_tag(tag: str, where: str) -> None:
    try:
        validate_tag(tag)
    except InvalidReferenceError as exc:
        raise StateError(f"{where}: {exc}") from None


def atomic_write(path: Path, text: str) -> bool:
    """Write if the content changed; temp file + fsync + rename. Returns whether it changed.

    ``path`` itself must be a regular file or absent: a link there is refused, never replaced.
    """
    return SafeTree(path.parent, path).write_text(path, text)


class StateStore:
    """The state folder of the metadata repository.

    A namespace's state lives at ``<registry>/<namespace>.json``. Only when one
    upstream namespace is mirrored to more than one place (image-syncer rules
    with several destinations) do the other mirrors get a file of their own,
    ``<registry>/<namespace>@<mirror>.json`` (``/`` in the mirror becomes ``+``).
    """

    def __init__(
        self, root: Path, default_mirror: str | None = None, *, boundary: Path | None = None
    ) -> None:
        """``boundary``: the repository root the folder must stay inside (default: its parent)."""
        self.root = root
        self.default_mirror = default_mirror
        self.tree = SafeTree(root.parent if boundary is None else boundary, root)

    def path_for(self, source: str, mirror: str | None = None) -> Path:
        registry, _, namespace = source.partition("/")
        if not registry or "/" in registry or registry in (".", ".."):
            raise StateError(f"cannot store state for namespace source {source!r}")
        if namespace:
            _check_name(namespace, source)
        stem = namespace if namespace else ROOT_NAMESPACE_FILE.removesuffix(".json")
        if mirror is not None and self.default_mirror is not None and mirror != self.default_mirror:
            mirror_registry, _, mirror_path = mirror.partition("/")
            if mirror_path:
                _check_name(mirror_path, mirror)
            if "/" in mirror_registry or mirror_registry in ("", ".", ".."):
                raise StateError(f"cannot store state for mirror {mirror!r}")
            stem += "@" + mirror.replace("/", "+")
        return self.root / registry / f"{stem}.json"

    def load(self, source: str, mirror: str) -> NamespaceState:
        path = self.path_for(source, mirror)
        text = self.read_text(path)
        if text is None:
            return NamespaceState(source, mirror)
        state = NamespaceState.from_json(text, self.relative(path))
        if state.source != source:
            raise StateError(
                f"{self.relative(path)}: records source {state.source!r}, expected {source!r}"
            )
        return state

    def save(self, state: NamespaceState) -> bool:
        return self.write_text(self.path_for(state.source, state.mirror), state.to_json())

    def check(self) -> None:
        """Refuse the state folder if anything in it, or on the way to it, is a link or special file.

        Run before a job reads or writes anything there; every read and write checks again.
        """
        self.tree.check()

    def read_text(self, path: Path) -> str | None:
        """A file under the state folder (None when absent): never through a link, size-capped."""
        return self.tree.read_text(path)

    def write_text(self, path: Path, text: str) -> bool:
        """Atomically replace a file under the state folder if it changed; links are refused."""
        return self.tree.write_text(path, text)

    def relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.tree.root))
        except ValueError:
            return path.name

    def all(self) -> Iterator[NamespaceState]:
        """Every state file under the root, in a stable order."""
        for path in self.tree.files(_is_state_file):
            text = self.read_text(path)
            if text is not None:
                yield NamespaceState.from_json(text, self.relative(path))


def _is_state_file(name: str) -> bool:
    # Dot files are a killed run's temp files.
    return name.endswith(".json") and not name.startswith(".")
