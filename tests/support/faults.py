"""Registries that misbehave on purpose, in front of a real one.

- :class:`FaultProxy` passes every request through to a real registry
  (streaming both ways, ``Host`` kept, any method; the proxying is
  :class:`tests.support.fronts.Front`'s) and, with a seeded probability
  ``rate``, answers it with a fault instead:

  ``500`` / ``503``
      a registry-style error body; the request never reached the registry.
  ``429-retry-after``
      ``429`` with ``Retry-After: 0`` or ``1``.
  ``429``
      ``429`` without ``Retry-After`` (Docker Hub does that).
  ``cut``
      the request *is* forwarded (it may have landed: an upload finished, a
      manifest pushed), then the answer is cut: its headers with the full
      ``Content-Length``, half the body, and the socket closed; an answer
      without a body is lost whole (closed before the status line).
  ``stall``
      a ``GET`` is forwarded and half its body sent; anything else is
      received but never answered. Either way the server thread then holds
      the connection for ``stall_seconds`` (longer than the client's read
      timeout: that wait *is* the fault) and closes it.

  Decisions come from one ``random.Random(seed)`` in arrival order; kinds are
  dealt from a seeded, reshuffled deck, so every kind comes up before any
  repeats. Under concurrency the arrival order varies between runs, so the
  seed fixes the sequence of decisions, not which request gets which.
  ``only(method, path)`` narrows the requests that may be faulted.
  ``injected`` counts faults by kind; ``rate`` may be changed at any time
  (0 turns the proxy into a faithful one on the same port, so hosts recorded
  in state stay valid). ``latency`` delays every answer (a slow link), which
  makes a run last long enough to be interrupted.

- :class:`CorruptFront` proxies faithfully except for one lie:
  ``mode="bytes"`` serves one chosen blob with a byte flipped (same length),
  ``mode="truncate"`` serves it cut in half with a clean close (no
  ``Content-Length``: the end of the connection ends the body, as HTTP
  allows), ``mode="digest-header"`` answers the manifests of one chosen
  repository with a wrong ``Docker-Content-Digest``.

Both listen on 127.0.0.1 (random port) and are usable as a registry host in
a config (``host`` = ``127.0.0.1:PORT``). They front the registry only: a
token realm on another port is reached directly by the client.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

from mirrorbot.demo.registry import LocalRegistry
from tests.support.fronts import CHUNK, Front, FrontHandler

__all__ = ["FAULT_KINDS", "CorruptFront", "FaultProxy"]

FAULT_KINDS: tuple[str, ...] = ("500", "503", "429-retry-after", "429", "cut", "stall")
_STATUS_FAULTS = {
    "500": (500, "UNKNOWN", "injected: internal server error"),
    "503": (503, "UNAVAILABLE", "injected: service unavailable"),
    "429-retry-after": (429, "TOOMANYREQUESTS", "injected: slow down"),
    "429": (429, "TOOMANYREQUESTS", "injected: slow down"),
}
_BLOB_PATH = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
_MANIFEST_PATH = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$")


def _path(handler: FrontHandler) -> str:
    return handler.path.split("?", 1)[0]


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


class FaultProxy(Front):
    """A proxy in front of a real registry that injects faults at a seeded ``rate``."""

    def __init__(
        self,
        upstream: LocalRegistry,
        *,
        rate: float,
        seed: int,
        kinds: Sequence[str] = FAULT_KINDS,
        stall_seconds: float = 3.0,
        latency: float = 0.0,
        only: Callable[[str, str], bool] | None = None,
    ) -> None:
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown or not kinds:
            raise ValueError(f"fault kinds must be some of {FAULT_KINDS}, not {sorted(unknown)}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate {rate} is not a probability")
        super().__init__(upstream)
        self.rate = rate
        self.seed = seed
        self.kinds = tuple(kinds)
        self.stall_seconds = stall_seconds
        self.latency = latency
        self.only = only
        self.injected: Counter[str] = Counter()
        self.proxied = 0
        self._random = random.Random(seed)  # noqa: S311 - seeded fault schedule, not crypto
        self._decide = threading.Lock()
        self._deck: list[str] = []

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())

    def decide(self, method: str, path: str) -> str | None:
        """The fault for this request, or None to proxy it faithfully."""
        with self._decide:
            if (self.only is not None and not self.only(method, path)) or (
                self._random.random() >= self.rate
            ):
                self.proxied += 1
                return None
            if not self._deck:
                self._deck = list(self.kinds)
                self._random.shuffle(self._deck)
            kind = self._deck.pop()
            self.injected[kind] += 1
            return kind

    def handle(self, handler: FrontHandler) -> None:
        if self.latency:
            self.stopping.wait(self.latency)  # a slow link: the delay is the simulated fault
        kind = self.decide(handler.command, _path(handler))
        if kind is None:
            self.proxy(handler)
        elif kind in _STATUS_FAULTS:
            self._status(handler, kind)
        elif kind == "cut":
            self._cut(handler)
        else:
            self._stall(handler)

    def _status(self, handler: FrontHandler, kind: str) -> None:
        status, code, message = _STATUS_FAULTS[kind]
        handler.drain_request_body()
        headers = {"Content-Type": "application/json"}
        if kind == "429-retry-after":
            with self._decide:
                headers["Retry-After"] = self._random.choice(("0", "1"))
        handler.reply(status, _error_body(code, message), headers)

    def _cut(self, handler: FrontHandler) -> None:
        upstream = self.forward(handler)
        if upstream is None:
            return
        try:
            length = int(upstream.headers.get("content-length") or 0)
            if handler.command == "HEAD" or length < 2:
                handler.close_connection = True  # the answer is lost whole; the request landed
                return
            self.relay(handler, upstream, limit=length // 2)
        finally:
            upstream.close()

    def _stall(self, handler: FrontHandler) -> None:
        if handler.command != "GET":
            handler.drain_request_body()
            self._hold(handler)
            return
        upstream = self.forward(handler)
        if upstream is None:
            return
        try:
            length = int(upstream.headers.get("content-length") or 0)
            if length >= 2:
                self.relay(handler, upstream, limit=length // 2)
            self._hold(handler)
        finally:
            upstream.close()

    def _hold(self, handler: FrontHandler) -> None:
        """Keep the client waiting past its read timeout, then hang up."""
        self.stopping.wait(self.stall_seconds)
        handler.close_connection = True


CorruptMode = Literal["bytes", "truncate", "digest-header"]


class CorruptFront(Front):
    """A faithful proxy except for one lie about one blob or one repository's manifests."""

    def __init__(
        self,
        upstream: LocalRegistry,
        mode: CorruptMode,
        *,
        digest: str | None = None,
        repository: str | None = None,
    ) -> None:
        if mode in ("bytes", "truncate") and digest is None:
            raise ValueError(f"mode {mode!r} needs the digest of the blob to corrupt")
        if mode == "digest-header" and repository is None:
            raise ValueError("mode 'digest-header' needs the repository whose manifests lie")
        if mode not in ("bytes", "truncate", "digest-header"):
            raise ValueError(f"unknown mode {mode!r}")
        super().__init__(upstream)
        self.mode = mode
        self.digest = digest
        self.repository = repository
        self.lies = 0  # answers served corrupted

    def handle(self, handler: FrontHandler) -> None:
        path = _path(handler)
        blob = _BLOB_PATH.match(path)
        manifest = _MANIFEST_PATH.match(path)
        if (
            self.mode in ("bytes", "truncate")
            and handler.command == "GET"
            and blob is not None
            and blob["digest"] == self.digest
        ):
            self._blob(handler)
        elif (
            self.mode == "digest-header"
            and handler.command in ("GET", "HEAD")
            and manifest is not None
            and manifest["name"] == self.repository
        ):
            self._lying_manifest(handler)
        else:
            self.proxy(handler)

    def _blob(self, handler: FrontHandler) -> None:
        upstream = self.forward(handler)
        if upstream is None:
            return
        try:
            if upstream.status_code != 200:
                self.relay(handler, upstream)
                return
            data = bytearray(upstream.read())
            with self._lock:
                self.lies += 1
            if self.mode == "bytes":
                data[len(data) // 2] ^= 0xFF
                self.relay(handler, upstream, body=_chunks(bytes(data)))
                return
            # Truncated, and a clean end: no Content-Length, the close ends the body.
            headers = [
                (name, value)
                for name, value in upstream.headers.multi_items()
                if name.lower() != "content-length"
            ]
            self.relay(
                handler, upstream, headers=headers, body=_chunks(bytes(data[: len(data) // 2]))
            )
        finally:
            upstream.close()

    def _lying_manifest(self, handler: FrontHandler) -> None:
        upstream = self.forward(handler)
        if upstream is None:
            return
        try:
            if upstream.status_code != 200:
                self.relay(handler, upstream)
                return
            true = upstream.headers.get("docker-content-digest", "")
            lie = "sha256:" + hashlib.sha256(f"not {true}".encode()).hexdigest()
            headers = [
                (name, lie if name.lower() == "docker-content-digest" else value)
                for name, value in upstream.headers.multi_items()
            ]
            with self._lock:
                self.lies += 1
            self.relay(handler, upstream, headers=headers)
        finally:
            upstream.close()


def _chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]
