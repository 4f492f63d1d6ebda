"""One process at a time in a clone: an exclusive ``flock``, re-entrant within the process.

``flock`` (rather than a lock file that exists or not) dies with its process:
a killed run never leaves a lock behind for the next one. The lock file is
never deleted: a second process would lock a new inode and run alongside.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mirrorbot.errors import LockError

__all__ = ["RepoLock"]

log = logging.getLogger("mirrorbot.state")


class RepoLock:
    """An exclusive ``flock`` on ``path``; waits (and says so once) while another holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._guard = threading.RLock()
        self._depth = 0
        self._descriptor: int | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._guard:
            if self._depth == 0:
                self._descriptor = self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._descriptor is not None:
                    os.close(self._descriptor)  # closing releases the lock
                    self._descriptor = None

    def _acquire(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            descriptor = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise LockError(f"cannot open the lock {self.path}: {exc.strerror}") from None
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.warning("waiting for another mirrorbot run to release %s", self.path)
                fcntl.flock(descriptor, fcntl.LOCK_EX)
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor
