"""Progress on stderr: plain lines in a CI log, a live display on a terminal."""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
from collections.abc import Iterator

import pytest

from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.jobs.progress import LiveProgress, PlainProgress, Tracker, progress_for
from tests.support.faults import FaultProxy
from tests.support.world import World, write_config


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_line_counts_tags_bytes_rate_eta_and_failures() -> None:
    clock = FakeClock()
    tracker = Tracker(clock)
    tracker.planned("gcr.io/x", 5000)
    for _ in range(119):
        tracker.finished("gcr.io/x", ok=True)
    tracker.finished("gcr.io/x", ok=False)
    tracker.uploaded(3 * 1024**3)
    clock.now += 60
    assert tracker.line() == ("progress: 120/5,000 tags, 3.0 GiB, 51.2 MiB/s, ETA 40:40, 1 failed")


def test_namespace_boundaries_are_reported_once_each() -> None:
    tracker = Tracker(FakeClock())
    tracker.listed("quay.io/a", 3, None)
    tracker.listed("quay.io/b", None, "lists no repositories")
    tracker.planned("quay.io/a", 2)
    tracker.planned("quay.io/b", 0)
    tracker.finished("quay.io/a", ok=True)
    tracker.finished("quay.io/a", ok=False)
    assert tracker.take_boundaries() == [
        "quay.io/a: listed 3 repositories",
        "quay.io/b: listing failed",
        "quay.io/a: 2 tags to copy",
        "quay.io/a: done, 1 copied, 1 failed",
    ]
    assert tracker.take_boundaries() == []


def test_the_kind_of_display_follows_the_stream() -> None:
    assert isinstance(progress_for(io.StringIO(), {}), PlainProgress)
    with open(os.devnull, "w") as devnull:
        assert isinstance(progress_for(devnull, {}), PlainProgress)


@pytest.fixture
def slow_upstream(world: World) -> Iterator[FaultProxy]:
    """The upstream behind a slow link: a run lasts long enough for interval lines."""
    front = FaultProxy(world.upstream, rate=0.0, seed=1, latency=0.05).start()
    try:
        yield front
    finally:
        front.stop()


def test_off_a_terminal_progress_is_plain_lines_on_stderr(
    world: World, slow_upstream: FaultProxy
) -> None:
    f = ImageFactory(world.ns)
    world.seed("app", "v1", f.image("app-1"))
    world.seed("app", "v2", f.image("app-2"))
    world.seed("lib", "v1", f.index("lib-1"))
    write_config(world, source=f"{slow_upstream.host}/{world.ns}")

    result = world.run("sync", env={"MIRRORBOT_PROGRESS_INTERVAL": "0.1"})

    assert result.returncode == 0, result.stdout + result.stderr
    ns = f"{slow_upstream.host}/{world.ns}"
    lines = [line for line in result.stderr.splitlines() if line.startswith("progress: ")]
    assert f"progress: {ns}: listed 2 repositories (0/0 tags" in "\n".join(lines)
    assert any(line.startswith(f"progress: {ns}: 3 tags to copy") for line in lines)
    assert any(line.startswith(f"progress: {ns}: done, 3 copied (3/3 tags") for line in lines)
    ticks = [line for line in lines if re.match(r"progress: [\d,]+/[\d,]+ tags, ", line)]
    assert ticks, result.stderr  # at least one line from the steady interval
    assert all("failed" in line for line in lines)
    assert "progress:" not in result.stdout


def test_on_a_terminal_a_live_display_renders(world: World, slow_upstream: FaultProxy) -> None:
    """Run under a pseudo-terminal (``script``): the display draws a bar and the counts,
    and the plain progress lines do not appear."""
    f = ImageFactory(world.ns)
    for number in range(4):
        world.seed(f"app{number}", "v1", f.image(f"app-{number}", layer_size=50_000))
    write_config(world, source=f"{slow_upstream.host}/{world.ns}")
    command = " ".join(shlex.quote(part) for part in world.command("sync"))
    env = world.environment({"TERM": "xterm-256color", "COLUMNS": "120"})
    env.pop("CI", None)
    result = subprocess.run(
        ["script", "-qefc", command, "/dev/null"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    screen = result.stdout
    assert "━" in screen  # rich's bar
    assert "/4 tags" in screen
    assert "copying " in screen or "4/4 tags" in screen
    assert "progress: " not in screen


async def test_live_progress_prints_boundaries_above_the_display() -> None:
    stream = io.StringIO()
    live = LiveProgress(stream)
    async with live:
        live.listed("quay.io/a", 2, None)
        live.planned("quay.io/a", 1)
        live.finished("quay.io/a", ok=True)
    text = stream.getvalue()
    assert "quay.io/a: listed 2 repositories" in text
    assert "quay.io/a: done, 1 copied" in text
