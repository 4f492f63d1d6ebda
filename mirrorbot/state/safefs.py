"""Files in the state repository are data, never links: every read and write goes through here.

Anyone can send the metadata repository a pull request, and git stores
symlinks and (in a working tree) anything else a file can be. A committed
``state/CHANGELOG.md`` linking to ``/proc/self/environ`` would otherwise be read
by the next run and pushed, tokens included; a linked ``state/`` folder would
let a run write outside the clone; a FIFO would hang it.

So every path is opened component by component from the repository root,
each folder held open by descriptor and entered with ``O_NOFOLLOW``: a link
anywhere on the way, even one swapped in between two steps, is refused, never
followed. Only regular files are read (size-capped, opened non-blocking so a
FIFO cannot hang us) or replaced (temp file + fsync + rename in the same
folder; rename replaces a name, it never writes through a link).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from mirrorbot.errors import CorruptStateError, StateError, UnsafeStatePathError

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_TREE_DEPTH",
    "MAX_TREE_ENTRIES",
    "SafeTree",
    "decode_utf8",
    "describe_mode",
]

MAX_FILE_BYTES = 64 * 1024 * 1024  # per state file; GitHub refuses files over 100 MB anyway
MAX_TREE_ENTRIES = 200_000  # files and folders under the state folder
MAX_TREE_DEPTH = 128  # a 255-character repository name has at most 128 components

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def describe_mode(mode: int) -> str:
    """What ``lstat`` says a path is, in the words an error message needs."""
    for test, name in (
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISREG, "regular file"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "special file"


def decode_utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptStateError(f"{where}: not valid UTF-8 (byte {exc.start})") from None


def _close(descriptor: int) -> None:
    os.close(descriptor)


class SafeTree:
    """A folder inside a trusted root (the clone), read and written without following links.

    ``root`` itself is trusted (it may be reached through a link, as ``/tmp`` is
    on some systems); ``folder`` and everything between them must be real
    folders inside it.
    """

    def __init__(self, root: Path, folder: Path, *, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.root = root
        self.folder = folder
        self.max_bytes = max_bytes

    # -- names --------------------------------------------------------------

    def parts(self, path: Path) -> tuple[str, ...]:
        """``path`` relative to the root, lexically; refused when it leaves the root."""
        root = PurePosixPath(os.path.normpath(self.root))
        target = PurePosixPath(os.path.normpath(path))
        try:
            relative = target.relative_to(root)
        except ValueError:
            relative = PurePosixPath("..")
        if ".." in relative.parts:
            raise UnsafeStatePathError(str(path), "path outside the repository", "folder inside it")
        return relative.parts

    def display(self, parts: Sequence[str]) -> str:
        """How an error names a path: relative to the repository root."""
        return "/".join(parts) or "."

    # -- walking ------------------------------------------------------------

    def _enter(self, parts: Sequence[str], *, create: bool) -> int | None:
        """An open descriptor of folder ``parts`` (caller closes); None when it does not exist."""
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            for depth, part in enumerate(parts):
                here = self.display(parts[: depth + 1])
                try:
                    mode = os.stat(part, dir_fd=descriptor, follow_symlinks=False).st_mode
                except FileNotFoundError:
                    if not create:
                        _close(descriptor)
                        return None
                    with contextlib.suppress(FileExistsError):  # made meanwhile: checked below
                        os.mkdir(part, 0o755, dir_fd=descriptor)
                    mode = os.stat(part, dir_fd=descriptor, follow_symlinks=False).st_mode
                if not stat.S_ISDIR(mode):
                    raise UnsafeStatePathError(here, describe_mode(mode), "directory")
                try:
                    inner = os.open(part, _DIRECTORY_FLAGS, dir_fd=descriptor)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise UnsafeStatePathError(here, "symlink", "directory") from None
                    raise
                _close(descriptor)
                descriptor = inner
        except BaseException:
            _close(descriptor)
            raise
        return descriptor

    def _read_at(self, directory: int, name: str, where: str) -> bytes | None:
        """A regular file's bytes (None when absent), refusing links and special files."""
        try:
            mode = os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(mode):
            raise UnsafeStatePathError(where, describe_mode(mode))
        try:
            descriptor = os.open(name, _READ_FLAGS, dir_fd=directory)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
                raise UnsafeStatePathError(where, "symlink or special file") from None
            raise
        try:
            mode = os.fstat(descriptor).st_mode
            if not stat.S_ISREG(mode):  # swapped since the lstat
                raise UnsafeStatePathError(where, describe_mode(mode))
            chunks: list[bytes] = []
            total = 0
            while total <= self.max_bytes:
                chunk = os.read(descriptor, min(1 << 20, self.max_bytes + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            if total > self.max_bytes:
                raise CorruptStateError(
                    f"{where}: larger than {self.max_bytes // (1024 * 1024)} MiB; "
                    "not a file mirrorbot wrote"
                )
            return b"".join(chunks)
        finally:
            _close(descriptor)

    # -- the public operations -----------------------------------------------

    def read_bytes(self, path: Path) -> bytes | None:
        """The bytes of a regular file under the folder; None when it does not exist."""
        parts = self.parts(path)
        if not parts:
            raise UnsafeStatePathError(self.display(parts), "directory")
        directory = self._enter(parts[:-1], create=False)
        if directory is None:
            return None
        try:
            return self._read_at(directory, parts[-1], self.display(parts))
        finally:
            _close(directory)

    def read_text(self, path: Path) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else decode_utf8(data, self.display(self.parts(path)))

    def write_bytes(self, path: Path, data: bytes) -> bool:
        """Replace a regular file atomically if its content changed; returns whether it did.

        A link, folder or special file in its place is refused, never replaced.
        """
        parts = self.parts(path)
        if not parts:
            raise UnsafeStatePathError(self.display(parts), "directory")
        where = self.display(parts)
        directory = self._enter(parts[:-1], create=True)
        assert directory is not None  # created on the way
        try:
            name = parts[-1]
            if self._read_at(directory, name, where) == data:
                return False
            temporary = f".{name}.{secrets.token_hex(6)}.tmp"
            descriptor = os.open(temporary, _CREATE_FLAGS, 0o644, dir_fd=directory)
            try:
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(descriptor, view) :]
                    os.fsync(descriptor)
                finally:
                    _close(descriptor)
                mode = _mode_at(directory, name)
                if mode is not None and not stat.S_ISREG(mode):  # swapped since the read
                    raise UnsafeStatePathError(where, describe_mode(mode))
                os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary, dir_fd=directory)
                raise
            os.fsync(directory)
            return True
        finally:
            _close(directory)

    def write_text(self, path: Path, text: str) -> bool:
        return self.write_bytes(path, text.encode("utf-8"))

    def files(self, wanted: Callable[[str], bool], *, strict: bool = True) -> list[Path]:
        """Regular files under the folder whose name ``wanted`` accepts, sorted.

        ``strict``: anything in the tree that is neither a folder nor a regular
        file is refused (the state folder). Otherwise only wanted names are
        checked, and links are skipped, never followed (a folder of downloads).
        """
        parts = self.parts(self.folder)
        directory = self._enter(parts, create=False)
        if directory is None:
            return []
        found: list[Path] = []
        count = [0]
        try:
            self._scan(directory, list(parts), wanted, strict, found, count)
        finally:
            _close(directory)
        return sorted(found)

    def check(self) -> None:
        """Refuse the whole folder if anything in it (or on the way to it) is not plain data."""
        self.files(lambda _name: False)

    def _scan(
        self,
        directory: int,
        parts: list[str],
        wanted: Callable[[str], bool],
        strict: bool,
        found: list[Path],
        count: list[int],
    ) -> None:
        if len(parts) > MAX_TREE_DEPTH + len(self.parts(self.folder)):
            raise StateError(f"{self.display(parts)}: folders nested deeper than {MAX_TREE_DEPTH}")
        with os.scandir(directory) as entries:
            listed = sorted(
                (entry.name, entry.stat(follow_symlinks=False).st_mode) for entry in entries
            )
        for name, mode in listed:
            if name == ".git":  # never tracked; only there when the state folder is the root
                continue
            count[0] += 1
            if count[0] > MAX_TREE_ENTRIES:
                raise StateError(
                    f"{self.display(parts)}: more than {MAX_TREE_ENTRIES} files and folders"
                )
            here = [*parts, name]
            if stat.S_ISDIR(mode):
                inner = self._enter_child(directory, name, self.display(here))
                try:
                    self._scan(inner, here, wanted, strict, found, count)
                finally:
                    _close(inner)
            elif stat.S_ISREG(mode):
                if wanted(name):
                    found.append(self.root.joinpath(*here))
            elif strict or wanted(name):
                raise UnsafeStatePathError(self.display(here), describe_mode(mode))

    def _enter_child(self, directory: int, name: str, where: str) -> int:
        try:
            return os.open(name, _DIRECTORY_FLAGS, dir_fd=directory)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafeStatePathError(where, "symlink", "directory") from None
            raise


def _mode_at(directory: int, name: str) -> int | None:
    try:
        return os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None
