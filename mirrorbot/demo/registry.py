"""Run CNCF Distribution (Debian's ``docker-registry``) on loopback, with temp storage.

Used by the demo, the tests and the bench alike. Readiness is a real request
to ``/v2/`` answering, never a sleep.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "LocalRegistry",
    "LoggedRequest",
    "RegistryBinaryMissingError",
    "free_port",
    "stop_process",
]

STARTUP_TIMEOUT = 30.0
INSTANCE_HEADER = "X-Mirrorbot-Registry-Instance"


class RegistryBinaryMissingError(RuntimeError):
    """``docker-registry`` is not installed (Debian package ``docker-registry``)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request as the registry itself logged it."""

    method: str
    uri: str
    status: int
    user_agent: str
    written: int


class LocalRegistry:
    """One Distribution process. ``auth`` and ``extra`` are merged into its config."""

    def __init__(
        self,
        workdir: Path,
        *,
        name: str = "registry",
        auth: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        binary: str = "docker-registry",
    ) -> None:
        self.workdir = workdir
        self.name = name
        self.storage = workdir / "storage"
        self.config_path = workdir / "config.yml"
        self.log_path = workdir / "registry.log"
        self._auth = dict(auth or {})
        self._extra = dict(extra or {})
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._instance = secrets.token_hex(8)
        self.port = 0

    @property
    def host(self) -> str:
        """The registry as it appears in image references: ``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "json", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": self.host,
                "secret": secrets.token_hex(16),
                # Readiness asks for this: on a port another process took first, the
                # answer is not ours (parallel test workers start registries side by side).
                "headers": {INSTANCE_HEADER: [self._instance]},
            },
        }
        if self._auth:
            config["auth"] = self._auth
        for key, value in self._extra.items():
            config[key] = value
        return config

    def start(self) -> LocalRegistry:
        if shutil.which(self._binary) is None:
            raise RegistryBinaryMissingError(
                f"{self._binary} not found: install Debian's docker-registry package"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # another process may grab the free port between probe and bind
            self.port = free_port()
            # JSON is YAML: no YAML writer needed for the registry's config.
            self.config_path.write_text(json.dumps(self.config(), indent=2))
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    [self._binary, "serve", str(self.config_path)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"{self.name} did not start; see {self.log_path}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        delay = 0.01
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                response = httpx.get(f"{self.url}/v2/", timeout=2.0)
            except httpx.TransportError:
                time.sleep(delay)  # polling a readiness condition, with backoff
                delay = min(delay * 2, 0.2)
                continue
            if response.headers.get(INSTANCE_HEADER) != self._instance:
                return False  # another registry on this port: ours cannot bind it
            return response.status_code in (200, 401)
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        stop_process(process)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The registry process's id while it runs (the bench reads its CPU from /proc)."""
        return self._process.pid if self.running and self._process is not None else None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_mark(self) -> int:
        """A position in the log: pass it to :meth:`requests` to see only what came after."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def requests(self, since: int = 0) -> list[LoggedRequest]:
        """Requests the registry completed, from its own log (an independent count)."""
        found: list[LoggedRequest] = []
        for entry in self._log_entries(since):
            if not str(entry.get("msg", "")).startswith("response completed"):
                continue
            found.append(
                LoggedRequest(
                    method=str(entry.get("http.request.method", "")),
                    uri=str(entry.get("http.request.uri", "")),
                    status=int(entry.get("http.response.status", 0)),
                    user_agent=str(entry.get("http.request.useragent", "")),
                    written=int(entry.get("http.response.written", 0)),
                )
            )
        return found

    def request_counts(self, since: int = 0, user_agent_prefix: str = "") -> Counter[str]:
        return Counter(
            r.method for r in self.requests(since) if r.user_agent.startswith(user_agent_prefix)
        )

    def _log_entries(self, since: int) -> Iterator[dict[str, Any]]:
        if not self.log_path.exists():
            return
        with self.log_path.open("rb") as log:
            log.seek(since)
            for line in log:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    yield entry

    def storage_bytes(self) -> int:
        """Bytes of blob data on disk (what was actually written, deduplicated by digest)."""
        blobs = self.storage / "docker" / "registry" / "v2" / "blobs"
        return sum(p.stat().st_size for p in blobs.rglob("data")) if blobs.exists() else 0


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM, and SIGKILL if it is still there after ``grace`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
