"""A CNCF Distribution storage directory (or a tarball of one) as an upstream registry.

When all that is left of a registry is its ``rootdirectory``, this reads it
directly: tags from ``repositories/<name>/_manifests/tags/<tag>/current/link``,
manifests and blobs from ``blobs/sha256/<xx>/<hex>/data``, every byte
verified against its digest. :class:`StorageRegistry` answers the same calls
the copier and the catalog listing make of a :class:`RegistryClient`, so the
rest of mirrorbot does not know the difference.

Nothing outside the root is ever read: symlinks and paths that leave it are
refused. A ``.tar`` is read in place (members by offset); a ``.tar.gz`` is
first unpacked into a private temporary directory with tarfile's ``data``
filter (no links, no absolute paths, no device files).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tarfile
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol, TypeVar

from mirrorbot.engine.registry.integrity import verified_stream
from mirrorbot.engine.registry.media import MAX_MANIFEST_SIZE, Descriptor, Manifest, parse_manifest
from mirrorbot.engine.registry.session import RequestCounter
from mirrorbot.errors import (
    DigestMismatchError,
    InvalidReferenceError,
    ManifestTooLargeError,
    MissingFileError,
    StorageError,
)
from mirrorbot.reference import validate_repository, validate_tag

__all__ = ["StorageRegistry", "open_storage"]

T = TypeVar("T")
CHUNK_SIZE = 1024 * 1024
_LINK_RE = re.compile(r"sha256:[0-9a-f]{64}")
_V2 = PurePosixPath("docker/registry/v2")


class _Reader(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class _Tree:
    """Read-only access to the files of a storage root, refusing anything that leaves it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, relative: PurePosixPath) -> Path:
        if relative.is_absolute() or ".." in relative.parts:
            raise StorageError(f"refusing path {relative}: it leaves the storage root")
        path = self.root.joinpath(*relative.parts)
        current = self.root
        for part in relative.parts:
            current = current / part
            if current.is_symlink():
                raise StorageError(f"refusing {relative}: {part} is a symbolic link")
        if not path.resolve().is_relative_to(self.root):
            raise StorageError(f"refusing {relative}: it resolves outside the storage root")
        return path

    def exists(self, relative: PurePosixPath) -> bool:
        try:
            return self._path(relative).exists()
        except StorageError:
            return False

    def read(self, relative: PurePosixPath, limit: int) -> bytes:
        path = self._path(relative)
        try:
            with path.open("rb") as handle:
                data = handle.read(limit + 1)
        except FileNotFoundError:
            raise MissingFileError(f"{relative}: missing") from None
        except IsADirectoryError:
            raise StorageError(f"{relative}: not a file") from None
        return data

    def open(self, relative: PurePosixPath) -> _Reader:
        path = self._path(relative)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise MissingFileError(f"{relative}: missing") from None

    def children(self, relative: PurePosixPath) -> list[str]:
        path = self._path(relative)
        if not path.is_dir():
            return []
        return sorted(entry.name for entry in path.iterdir() if not entry.is_symlink())

    def is_dir(self, relative: PurePosixPath) -> bool:
        try:
            path = self._path(relative)
        except StorageError:
            return False
        return path.is_dir() and not path.is_symlink()


class _TarTree(_Tree):
    """An uncompressed tarball read in place: regular files only, by their offsets."""

    def __init__(self, archive: Path) -> None:
        self.root = archive
        self._archive = archive
        self._members: dict[PurePosixPath, tarfile.TarInfo] = {}
        self._dirs: dict[PurePosixPath, set[str]] = {}
        with tarfile.open(archive, "r:") as tar:
            for member in tar:
                stripped = member.name
                while stripped.startswith("./"):
                    stripped = stripped[2:]
                name = PurePosixPath(stripped or ".")
                if member.name.startswith("/") or ".." in name.parts:
                    raise StorageError(
                        f"{archive.name}: member {member.name!r} leaves the archive root"
                    )
                if member.issym() or member.islnk():
                    continue  # links are refused: never followed
                if member.isfile():
                    self._members[name] = member
                if name.parts:
                    self._dirs.setdefault(PurePosixPath("."), set()).add(name.parts[0])
                for depth in range(1, len(name.parts)):
                    parent = PurePosixPath(*name.parts[:depth])
                    self._dirs.setdefault(parent, set()).add(name.parts[depth])
                if member.isdir():
                    self._dirs.setdefault(name, set())

    def _strip(self, relative: PurePosixPath) -> PurePosixPath:
        if relative.is_absolute() or ".." in relative.parts:
            raise StorageError(f"refusing path {relative}: it leaves the storage root")
        return relative

    def exists(self, relative: PurePosixPath) -> bool:
        key = self._strip(relative)
        return key in self._members or key in self._dirs

    def read(self, relative: PurePosixPath, limit: int) -> bytes:
        handle = self.open(relative)
        try:
            return handle.read(limit + 1)
        finally:
            handle.close()

    def open(self, relative: PurePosixPath) -> _Reader:
        member = self._members.get(self._strip(relative))
        if member is None:
            raise MissingFileError(f"{relative}: missing")
        handle = self._archive.open("rb")
        return _Window(handle, member.offset_data, member.size)

    def children(self, relative: PurePosixPath) -> list[str]:
        return sorted(self._dirs.get(self._strip(relative), set()))

    def is_dir(self, relative: PurePosixPath) -> bool:
        return self._strip(relative) in self._dirs


class _Window:
    """A read-only view of ``size`` bytes at ``offset`` of an open file."""

    def __init__(self, handle: BinaryIO, offset: int, size: int) -> None:
        self._handle = handle
        self._remaining = size
        handle.seek(offset)

    def read(self, n: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        wanted = self._remaining if n < 0 else min(n, self._remaining)
        data = self._handle.read(wanted)
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()


def _find_v2(tree: _Tree) -> PurePosixPath:
    """Accept the rootdirectory, its ``docker/registry/v2``, or one level of wrapping folder."""
    candidates = [_V2, PurePosixPath("."), PurePosixPath("v2")]
    candidates += [PurePosixPath(name) / _V2 for name in tree.children(PurePosixPath("."))]
    for candidate in candidates:
        if tree.is_dir(candidate / "repositories") and tree.is_dir(candidate / "blobs"):
            return candidate
    raise StorageError(
        "not a Distribution storage root: no docker/registry/v2/{repositories,blobs}"
    )


class StorageRegistry:
    """The read side of a registry, served from its storage directory."""

    def __init__(self, registry: str, tree: _Tree, cleanup: Path | None = None) -> None:
        self.registry = registry
        self.counter = RequestCounter()
        self._tree = tree
        self._v2 = _find_v2(tree)
        self._cleanup = cleanup

    # -- plumbing the copier and sources use --------------------------------

    async def retrying(self, operation: Callable[[], Awaitable[T]], reference: str | None) -> T:
        """Disk reads are not retried: a missing or corrupt file will not heal."""
        return await operation()

    async def aclose(self) -> None:
        if self._cleanup is not None:
            shutil.rmtree(self._cleanup, ignore_errors=True)
            self._cleanup = None

    def _ref(self, repository: str, identifier: str) -> str:
        separator = "@" if ":" in identifier else ":"
        return f"{self.registry}/{repository}{separator}{identifier}"

    def _repository_dir(self, repository: str) -> PurePosixPath:
        try:
            validate_repository(repository)
        except InvalidReferenceError as exc:
            raise StorageError(str(exc)) from None
        return self._v2 / "repositories" / repository

    def _blob_path(self, digest: str) -> PurePosixPath:
        if not _LINK_RE.fullmatch(digest):
            raise StorageError(f"unsupported or malformed digest {digest!r}")
        hex_part = digest[7:]
        return self._v2 / "blobs" / "sha256" / hex_part[:2] / hex_part / "data"

    def _read_link(self, relative: PurePosixPath) -> str | None:
        try:
            raw = self._tree.read(relative, 200)
        except MissingFileError:
            return None
        text = raw.decode("ascii", "replace").strip()
        if not _LINK_RE.fullmatch(text):
            raise StorageError(f"{relative}: malformed link {text[:80]!r}")
        return text

    # -- listing --------------------------------------------------------------

    async def catalog(self, page_size: int | None = None) -> list[str]:
        return await asyncio.to_thread(self._catalog)

    def _catalog(self) -> list[str]:
        found: list[str] = []
        stack = [PurePosixPath()]
        base = self._v2 / "repositories"
        while stack:
            relative = stack.pop()
            for name in self._tree.children(base / relative):
                if name.startswith("_"):
                    continue
                child = relative / name
                if not self._tree.is_dir(base / child):
                    continue
                if self._tree.is_dir(base / child / "_manifests"):
                    found.append(str(child))
                stack.append(child)
        return sorted(found)

    async def tags(self, repository: str, page_size: int | None = None) -> list[str]:
        return await asyncio.to_thread(self._tags, repository)

    def _tags(self, repository: str) -> list[str]:
        directory = self._repository_dir(repository) / "_manifests" / "tags"
        tags = []
        for name in self._tree.children(directory):
            try:
                validate_tag(name)
            except InvalidReferenceError:
                continue
            if self._tree.exists(directory / name / "current" / "link"):
                tags.append(name)
        return tags

    # -- manifests ----------------------------------------------------------

    def _resolve(self, repository: str, identifier: str) -> str | None:
        manifests = self._repository_dir(repository) / "_manifests"
        if identifier.startswith("sha256:"):
            if not _LINK_RE.fullmatch(identifier):
                raise StorageError(f"malformed digest {identifier!r}")
            link = manifests / "revisions" / "sha256" / identifier[7:] / "link"
            return identifier if self._read_link(link) == identifier else None
        validate_tag(identifier)
        return self._read_link(manifests / "tags" / identifier / "current" / "link")

    async def manifest_get(self, repository: str, identifier: str) -> Manifest:
        return await asyncio.to_thread(self._manifest_get, repository, identifier)

    def _manifest_get(self, repository: str, identifier: str) -> Manifest:
        reference = self._ref(repository, identifier)
        digest = self._resolve(repository, identifier)
        if digest is None:
            raise StorageError(f"{reference}: no such manifest in the storage directory")
        raw = self._tree.read(self._blob_path(digest), MAX_MANIFEST_SIZE)
        if len(raw) > MAX_MANIFEST_SIZE:
            raise ManifestTooLargeError(reference, len(raw), MAX_MANIFEST_SIZE)
        manifest = parse_manifest(raw, None, reference)
        if manifest.digest != digest:
            raise DigestMismatchError(reference, digest, manifest.digest, "manifest on disk")
        return manifest

    async def manifest_head(self, repository: str, identifier: str) -> Descriptor | None:
        try:
            manifest = await self.manifest_get(repository, identifier)
        except StorageError:
            return None
        return Descriptor(manifest.media_type, manifest.digest, manifest.size)

    # -- blobs ----------------------------------------------------------------

    @asynccontextmanager
    async def blob_open(
        self, repository: str, descriptor: Descriptor
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        reference = self._ref(repository, descriptor.digest)
        try:
            handle = await asyncio.to_thread(self._tree.open, self._blob_path(descriptor.digest))
        except StorageError as exc:
            raise StorageError(f"{reference}: blob {exc}") from None
        try:
            yield verified_stream(
                _read_chunks(handle),
                descriptor,
                reference,
                self.counter.downloaded,
                where="blob on disk",
            )
        finally:
            handle.close()


async def _read_chunks(handle: _Reader) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
        yield chunk


def open_storage(registry: str, location: Path) -> StorageRegistry:
    """A storage directory, an uncompressed ``.tar`` of one, or a ``.tar.gz``/``.tgz``."""
    if location.is_symlink():
        raise StorageError(f"{location}: refusing a symbolic link as the storage root")
    if location.is_dir():
        return StorageRegistry(registry, _Tree(location))
    if not location.is_file():
        raise StorageError(f"{location}: no such storage directory or archive")
    name = location.name.lower()
    if name.endswith(".tar"):
        try:
            return StorageRegistry(registry, _TarTree(location))
        except tarfile.TarError as exc:
            raise StorageError(f"{location.name}: not a readable tar archive ({exc})") from None
    if name.endswith((".tar.gz", ".tgz")):
        scratch = Path(tempfile.mkdtemp(prefix="mirrorbot-storage-"))
        try:
            with tarfile.open(location, "r:gz") as archive:
                archive.extractall(scratch, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            shutil.rmtree(scratch, ignore_errors=True)
            raise StorageError(
                f"{location.name}: cannot unpack ({type(exc).__name__}: {exc})"
            ) from None
        return StorageRegistry(registry, _Tree(scratch), cleanup=scratch)
    raise StorageError(f"{location.name}: expected a directory, .tar, .tar.gz or .tgz")
