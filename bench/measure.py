"""Measuring instruments: a process runner (wall, CPU, peak RSS) and registry log analysis.

Requests are counted from the registries' *own* access logs, attributed to a
tool by its ``User-Agent``: nothing in the tools under test is instrumented.
"""

from __future__ import annotations

import compileall
import os
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import psutil

from mirrorbot.demo.registry import LocalRegistry, LoggedRequest


def write_bytecode(package_dir: Path) -> None:
    """Compile a package's modules to their ``__pycache__``, as installing it would.

    pip compiles at install; a source tree run with ``PYTHONDONTWRITEBYTECODE=1``
    (and no caches yet) would compile mirrorbot's ~130 modules again in every
    measured run (≈ +0.1 s of CPU that no installed copy pays).
    """
    compileall.compile_dir(package_dir, quiet=1)


# -- processes -------------------------------------------------------------------------

GNU_TIME = "/usr/bin/time"


@dataclass(slots=True)
class ProcessRun:
    command: list[str]
    returncode: int
    wall_s: float
    user_s: float
    system_s: float
    peak_rss_bytes: int  # sum of the process tree's RSS, polled every 20 ms
    max_rss_bytes: int  # ru_maxrss as GNU time reports it: the largest process's exact peak
    stdout_path: Path
    stderr_tail: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.system_s


class _RssPoller(threading.Thread):
    """Samples the RSS of a process and its descendants until it exits."""

    def __init__(self, pid: int, interval: float, *, include_root: bool = True) -> None:
        super().__init__(daemon=True, name=f"rss-{pid}")
        self.pid = pid
        self.interval = interval
        self.include_root = include_root
        self.peak = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._halt.is_set():
            total = 0
            try:
                processes = root.children(recursive=True)
                if self.include_root:
                    processes.append(root)
            except psutil.Error:
                return
            for process in processes:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.samples += 1
            self.peak = max(self.peak, total)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()


def run_measured(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdout_path: Path,
    timeout: float = 900.0,
    poll_interval: float = 0.02,
) -> ProcessRun:
    """Run ``command`` to completion, timing it and watching its memory.

    Peak RSS two ways: psutil polls the process tree (the figure the targets
    use), and GNU ``time`` (when installed) reports the kernel's ``ru_maxrss``.
    ``time`` is needed for the latter: a child's ``ru_maxrss`` as ``wait4``
    returns it starts from its parent's high-water mark (exec keeps it), so
    it would show the bench's own memory.
    """
    stderr_path = stdout_path.with_suffix(".stderr")
    time_path = stdout_path.with_suffix(".time")
    wrapped = Path(GNU_TIME).exists()
    argv = [GNU_TIME, "-f", "%M", "-o", str(time_path), *command] if wrapped else list(command)
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, cwd=cwd, env=dict(env), stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        poller = _RssPoller(process.pid, poll_interval, include_root=not wrapped)
        poller.start()
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            # wait4, not wait: it hands back the CPU times of the command and its children.
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        poller.stop()
        poller.join(timeout=5)
    stderr = stderr_path.read_text(errors="replace")
    max_rss = 0
    if wrapped:
        try:
            max_rss = int(time_path.read_text().split()[-1]) * 1024
        except (OSError, ValueError, IndexError):
            max_rss = 0
    return ProcessRun(
        command=list(command),
        returncode=process.returncode,
        wall_s=wall,
        user_s=usage.ru_utime,
        system_s=usage.ru_stime,
        peak_rss_bytes=poller.peak,
        max_rss_bytes=max_rss,
        stdout_path=stdout_path,
        stderr_tail=stderr[-4000:],
    )


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds a running process has used so far, from ``/proc/<pid>/stat``.

    The registries are long-lived processes the bench does not wait for, so ``wait4``
    cannot give their CPU: it is read before and after each measured run instead.
    """
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: fields are counted after its ')'.
    fields = stat.rpartition(")")[2].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class RegistryCpu:
    """CPU seconds each named registry process spends between :meth:`start` and :meth:`stop`."""

    pids: dict[str, int | None]
    before: dict[str, float | None] = field(default_factory=dict)
    spent: dict[str, float | None] = field(default_factory=dict)

    def start(self) -> RegistryCpu:
        self.before = {name: process_cpu_s(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict[str, float | None]:
        for name, pid in self.pids.items():
            now, then = process_cpu_s(pid), self.before.get(name)
            self.spent[name] = None if now is None or then is None else round(now - then, 3)
        return self.spent

    def floor_s(self) -> float | None:
        """The registries' CPU spread over every core: no client can finish faster than this."""
        values = [value for value in self.spent.values() if value is not None]
        return round(sum(values) / (os.cpu_count() or 1), 3) if values else None


# -- registry logs ---------------------------------------------------------------------

_BLOB = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
_UPLOADS = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/(?P<session>[^/]*)$")
_MANIFEST = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)$")
_TAGS = re.compile(r"^/v2/(?P<repo>.+)/tags/list$")


def classify(request: LoggedRequest) -> str:
    """A request's kind: method plus the API endpoint, e.g. ``HEAD blob``, ``POST mount``."""
    split = urlsplit(request.uri)
    path = unquote(split.path)
    query = parse_qs(split.query)
    method = request.method
    if path in ("/v2/", "/v2"):
        return f"{method} ping"
    if path == "/v2/_catalog":
        return f"{method} catalog"
    if _TAGS.match(path):
        return f"{method} tags/list"
    match = _MANIFEST.match(path)
    if match:
        by = "digest" if match["ref"].startswith("sha256:") else "tag"
        return f"{method} manifest by {by}"
    if _BLOB.match(path):
        return f"{method} blob"
    if _UPLOADS.match(path):
        if method == "POST" and "mount" in query:
            return (
                "POST mount (201 mounted)" if request.status == 201 else "POST mount (202 refused)"
            )
        if method == "POST":
            return "POST upload start"
        if method == "PATCH":
            return "PATCH upload chunk"
        if method == "PUT":
            return "PUT upload finish"
        return f"{method} upload session"
    return f"{method} other"


@dataclass(slots=True)
class Traffic:
    """What one tool asked of one registry during one measured run."""

    requests: int = 0
    by_method: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    blobs_uploaded: int = 0
    uploaded_digests: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0  # blob bytes of completed uploads + manifest bytes pushed
    blob_bytes_uploaded: int = 0
    manifest_bytes_pushed: int = 0
    blobs_mounted: int = 0
    bytes_served: int = 0  # response bytes (what the tool downloaded)

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_method": dict(sorted(self.by_method.items())),
            "by_kind": dict(sorted(self.by_kind.items())),
            "by_status": dict(sorted(self.by_status.items())),
            "blobs_uploaded": self.blobs_uploaded,
            "blobs_mounted": self.blobs_mounted,
            "bytes_uploaded": self.bytes_uploaded,
            "blob_bytes_uploaded": self.blob_bytes_uploaded,
            "manifest_bytes_pushed": self.manifest_bytes_pushed,
            "bytes_served": self.bytes_served,
        }


def _storage_blob_size(registry: LocalRegistry, digest: str) -> int:
    hex_part = digest.partition(":")[2]
    data = registry.storage / "docker/registry/v2/blobs/sha256" / hex_part[:2] / hex_part / "data"
    try:
        return data.stat().st_size
    except OSError:
        return 0


def tag_digest(registry: LocalRegistry, repository: str, tag: str) -> str | None:
    link = (
        registry.storage
        / "docker/registry/v2/repositories"
        / repository
        / "_manifests/tags"
        / tag
        / "current/link"
    )
    try:
        return link.read_text().strip()
    except OSError:
        return None


def traffic(registry: LocalRegistry, since: int, user_agent_prefixes: Iterable[str]) -> Traffic:
    """Requests to ``registry`` after log position ``since`` whose UA starts with a prefix.

    Upload sizes come from the registry's own storage (the log has no request
    sizes): a completed upload (``PUT …?digest=`` → 201) counts its blob's
    size, a manifest ``PUT`` (→ 201) its stored size.
    """
    prefixes = tuple(user_agent_prefixes)
    found = Traffic()
    for request in registry.requests(since):
        if not request.user_agent.startswith(prefixes):
            continue
        found.requests += 1
        found.by_method[request.method] += 1
        found.by_kind[classify(request)] += 1
        found.by_status[str(request.status)] += 1
        found.bytes_served += request.written
        split = urlsplit(request.uri)
        path = unquote(split.path)
        query = parse_qs(split.query)
        if request.status != 201:
            continue
        if request.method == "PUT" and _UPLOADS.match(path) and "digest" in query:
            digest = query["digest"][0]
            size = _storage_blob_size(registry, digest)
            found.blobs_uploaded += 1
            found.uploaded_digests.append(digest)
            found.blob_bytes_uploaded += size
        elif request.method == "POST" and _UPLOADS.match(path) and "mount" in query:
            found.blobs_mounted += 1
        elif request.method == "PUT" and (match := _MANIFEST.match(path)):
            reference = match["ref"]
            digest = (
                reference
                if reference.startswith("sha256:")
                else tag_digest(registry, match["repo"], reference)
            )
            found.manifest_bytes_pushed += _storage_blob_size(registry, digest) if digest else 0
    found.bytes_uploaded = found.blob_bytes_uploaded + found.manifest_bytes_pushed
    return found


def agents(registry: LocalRegistry, since: int) -> Counter[str]:
    """Requests per user agent after ``since``: shows who talked to a registry."""
    return Counter(request.user_agent for request in registry.requests(since))
