"""Progress of a sync on stderr, so nobody watches a blank screen for hours.

On a terminal: a live display (tags done of planned, bytes and rate, ETA, the
images in flight, failures so far). Off a terminal (a CI log): one plain line
at a steady interval and one at each namespace boundary, e.g.
``progress: 120/5,000 tags, 3.1 GiB, 41 MiB/s, 2 failed``. The final report
on stdout is unchanged; progress never goes there.

:class:`Tracker` only counts (sync feeds it through :class:`ProgressSink`);
:class:`PlainProgress` and :class:`LiveProgress` only render what it counts.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import IO, Any, Protocol

__all__ = [
    "DEFAULT_INTERVAL",
    "LiveProgress",
    "NullProgress",
    "PlainProgress",
    "ProgressSink",
    "Tracker",
    "format_bytes",
    "progress_for",
]

DEFAULT_INTERVAL = 30.0  # seconds between plain lines; MIRRORBOT_PROGRESS_INTERVAL overrides


def format_bytes(count: float) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class ProgressSink(Protocol):
    """What a sync tells about itself as it goes."""

    def listed(self, namespace: str, repositories: int | None, error: str | None) -> None: ...
    def planned(self, namespace: str, tags: int) -> None: ...
    def started(self, reference: str) -> None: ...
    def left(self, reference: str) -> None: ...
    def finished(self, namespace: str, *, ok: bool) -> None: ...
    def uploaded(self, size: int) -> None: ...
    async def __aenter__(self) -> Any: ...
    async def __aexit__(self, *exc_info: object) -> None: ...


class Tracker:
    """Counts of one run; every renderer reads these and only these."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.began = clock()
        self.tags_total = 0
        self.tags_done = 0
        self.failed = 0
        self.bytes_done = 0
        self.in_flight: dict[str, None] = {}  # insertion-ordered set
        self.per_namespace: dict[str, list[int]] = {}  # namespace -> [planned, done, failed]
        self.boundaries: list[str] = []  # namespace lines not yet shown

    def listed(self, namespace: str, repositories: int | None, error: str | None) -> None:
        if error is not None:
            self.boundaries.append(f"{namespace}: listing failed")
        else:
            self.boundaries.append(f"{namespace}: listed {repositories:,} repositories")

    def planned(self, namespace: str, tags: int) -> None:
        self.tags_total += tags
        counts = self.per_namespace.setdefault(namespace, [0, 0, 0])
        counts[0] += tags
        if tags == 0 and counts[1] + counts[2] == counts[0]:
            return
        self.boundaries.append(f"{namespace}: {counts[0]:,} tags to copy")

    def started(self, reference: str) -> None:
        self.in_flight[reference] = None

    def left(self, reference: str) -> None:
        self.in_flight.pop(reference, None)

    def finished(self, namespace: str, *, ok: bool) -> None:
        counts = self.per_namespace.setdefault(namespace, [0, 0, 0])
        if ok:
            self.tags_done += 1
            counts[1] += 1
        else:
            self.failed += 1
            counts[2] += 1
        if counts[0] and counts[1] + counts[2] == counts[0]:
            failed = f", {counts[2]:,} failed" if counts[2] else ""
            self.boundaries.append(f"{namespace}: done, {counts[1]:,} copied{failed}")

    def uploaded(self, size: int) -> None:
        self.bytes_done += size

    def rate(self) -> float:
        """Bytes per second since the run began."""
        return self.bytes_done / max(self.clock() - self.began, 1e-6)

    def eta(self) -> float | None:
        finished = self.tags_done + self.failed
        remaining = self.tags_total - finished
        if finished == 0 or remaining <= 0:
            return None
        return (self.clock() - self.began) / finished * remaining

    def line(self) -> str:
        parts = [
            f"{self.tags_done + self.failed:,}/{self.tags_total:,} tags",
            format_bytes(self.bytes_done),
            f"{format_bytes(self.rate())}/s",
        ]
        eta = self.eta()
        if eta is not None:
            parts.append(f"ETA {_clock(eta)}")
        parts.append(f"{self.failed:,} failed")
        return "progress: " + ", ".join(parts)

    def take_boundaries(self) -> list[str]:
        taken, self.boundaries = self.boundaries, []
        return taken


def _clock(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Reporter(Tracker):
    """A tracker that renders itself while the run goes (an async context manager)."""

    async def __aenter__(self) -> _Reporter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class NullProgress(_Reporter):
    """Counts, shows nothing: library use, ``plan``, tests of other things."""


class PlainProgress(_Reporter):
    """One line at a steady interval and at each namespace boundary (CI logs)."""

    def __init__(self, stream: IO[str], interval: float = DEFAULT_INTERVAL) -> None:
        super().__init__()
        self.stream = stream
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def _emit(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _flush_boundaries(self) -> None:
        for boundary in self.take_boundaries():
            self._emit(f"progress: {boundary} ({self.line().removeprefix('progress: ')})")

    def listed(self, namespace: str, repositories: int | None, error: str | None) -> None:
        super().listed(namespace, repositories, error)
        self._flush_boundaries()

    def planned(self, namespace: str, tags: int) -> None:
        super().planned(namespace, tags)
        self._flush_boundaries()

    def finished(self, namespace: str, *, ok: bool) -> None:
        super().finished(namespace, ok=ok)
        self._flush_boundaries()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._emit(self.line())

    async def __aenter__(self) -> PlainProgress:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class LiveProgress(_Reporter):
    """A rich live display on a terminal; namespace boundaries print above it."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self.stream = stream
        self._live: Any = None

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.text import Text

        done = self.tags_done + self.failed
        bar = ProgressBar(total=max(self.tags_total, 1), completed=done, width=40)
        status = Text(self.line().removeprefix("progress: "))
        flying = list(self.in_flight)
        shown = ", ".join(flying[:3]) + (f" and {len(flying) - 3} more" if len(flying) > 3 else "")
        lines: list[Any] = [bar, status]
        if shown:
            lines.append(Text(f"copying {shown}", overflow="ellipsis", no_wrap=True))
        return Group(*lines)

    def _refresh(self) -> None:
        if self._live is None:
            return
        for boundary in self.take_boundaries():
            self._live.console.print(boundary, highlight=False, markup=False)
        self._live.update(self._render())

    def listed(self, namespace: str, repositories: int | None, error: str | None) -> None:
        super().listed(namespace, repositories, error)
        self._refresh()

    def planned(self, namespace: str, tags: int) -> None:
        super().planned(namespace, tags)
        self._refresh()

    def finished(self, namespace: str, *, ok: bool) -> None:
        super().finished(namespace, ok=ok)
        self._refresh()

    def started(self, reference: str) -> None:
        super().started(reference)
        self._refresh()

    def uploaded(self, size: int) -> None:
        super().uploaded(size)
        self._refresh()

    async def __aenter__(self) -> LiveProgress:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self.stream, stderr=self.stream is sys.stderr)
        self._live = Live(
            self._render(),
            console=console,
            refresh_per_second=4,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=True,  # log lines print above the display (logs write to sys.stderr)
        )
        self._live.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._refresh()
            self._live.stop()
            self._live = None


def progress_for(stream: IO[str] | None = None, environ: dict[str, str] | None = None) -> _Reporter:
    """Live on a terminal, plain lines elsewhere (CI sets ``CI``; a pipe is not a tty)."""
    target = stream if stream is not None else sys.stderr
    env = os.environ if environ is None else environ
    interval = env.get("MIRRORBOT_PROGRESS_INTERVAL", "")
    try:
        seconds = float(interval) if interval else DEFAULT_INTERVAL
    except ValueError:
        seconds = DEFAULT_INTERVAL
    if target.isatty() and not env.get("CI") and env.get("TERM") != "dumb":
        return LiveProgress(target)
    return PlainProgress(target, max(seconds, 0.05))
