"""One namespace's trouble never costs the others, and no run outlasts its budget.

Real registries and real git throughout; the hostile parts are thin fronts on
loopback (a catalog that redirects to itself, a blob that stalls forever).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.jobs.timebudget import TimeBudget, format_duration, parse_duration
from tests.support.faults import FaultProxy
from tests.support.fronts import Front, FrontHandler
from tests.support.world import World, git, write_config


class LoopingCatalog(Front):
    """A registry whose catalog redirects to itself forever; everything else is proxied."""

    def handle(self, handler: FrontHandler) -> None:
        if handler.path.startswith("/v2/_catalog"):
            handler.reply(302, b"", {"Location": handler.path})
            return
        self.proxy(handler)


@pytest.fixture
def fronts() -> Iterator[list[Front]]:
    started: list[Front] = []
    try:
        yield started
    finally:
        for front in started:
            front.stop()


def recorded_tags(world: World, host: str, namespace: str) -> set[tuple[str, str]]:
    try:
        text = world.remote_file(f"state/{host}/{namespace}.json")
    except subprocess.CalledProcessError:
        return set()
    state: dict[str, Any] = json.loads(text)
    return {(image, tag) for image, entry in state["images"].items() for tag in entry["tags"]}


@pytest.mark.hostile("upstream listings")
def test_a_namespace_whose_catalog_loops_fails_alone(world: World, fronts: list[Front]) -> None:
    """A redirect loop on one upstream's catalog: that namespace fails in one line, exit 1;
    the healthy namespace on another registry is still copied, recorded and pushed."""
    f = ImageFactory(world.ns)
    world.seed("app", "v1", f.image("app-1"))
    looping = LoopingCatalog(world.upstream).start()
    fronts.append(looping)
    extra = f"  - source: {looping.host}/{world.ns}\n    list: catalog\n"
    write_config(world, extra_namespace=extra)

    result = world.run("sync")

    assert result.returncode == 1, result.stdout + result.stderr
    assert recorded_tags(world, world.upstream.host, world.ns) == {("app", "v1")}
    assert "Traceback" not in result.stderr
    failing = [line for line in result.stderr.splitlines() if f"{looping.host}/{world.ns}" in line]
    assert failing, result.stderr
    assert all(len(line) < 400 for line in failing)
    assert "redirect" in " ".join(failing).lower()


@pytest.mark.hostile("upstream listings")
def test_a_colliding_repository_that_appears_upstream_fails_alone(world: World) -> None:
    """Two namespaces' listings claim one mirror name: the repository already mirrored
    keeps it, the newcomer fails (exit 1, both named), everything else is mirrored."""
    f = ImageFactory(world.ns)
    world.seed("a/pause", "v1", f.image("a-pause"))
    world.seed("b/etcd", "v1", f.image("b-etcd"))
    extra = f"  - source: {world.upstream.host}/{world.ns}/b\n    list: catalog\n"
    write_config(world, source=f"{world.upstream.host}/{world.ns}/a", extra_namespace=extra)
    first = world.run("sync")
    assert first.returncode == 0, first.stdout + first.stderr

    world.seed("b/pause", "v1", f.image("b-pause"))  # upstream b now claims "pause" too
    world.seed("b/kube-proxy", "v1", f.image("b-kube-proxy"))
    second = world.run("sync")

    assert second.returncode == 1, second.stdout + second.stderr
    output = second.stdout + second.stderr
    assert f"{world.ns}/a/pause" in output
    assert f"{world.ns}/b/pause" in output
    assert recorded_tags(world, world.upstream.host, f"{world.ns}/b") == {
        ("etcd", "v1"),
        ("kube-proxy", "v1"),
    }
    assert recorded_tags(world, world.upstream.host, f"{world.ns}/a") == {("pause", "v1")}
    changelog = world.remote_file("state/CHANGELOG.md")
    assert f"{world.ns}/b/pause" not in changelog


def test_two_newcomers_claiming_one_name_both_fail_and_the_rest_is_mirrored(
    world: World,
) -> None:
    f = ImageFactory(world.ns)
    world.seed("a/pause", "v1", f.image("a-pause"))
    world.seed("b/pause", "v1", f.image("b-pause"))
    world.seed("b/etcd", "v1", f.image("b-etcd"))
    extra = f"  - source: {world.upstream.host}/{world.ns}/b\n    list: catalog\n"
    write_config(world, source=f"{world.upstream.host}/{world.ns}/a", extra_namespace=extra)

    result = world.run("sync")

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{world.ns}/a/pause" in result.stdout + result.stderr
    assert f"{world.ns}/b/pause" in result.stdout + result.stderr
    assert recorded_tags(world, world.upstream.host, f"{world.ns}/b") == {("etcd", "v1")}
    assert recorded_tags(world, world.upstream.host, f"{world.ns}/a") == set()


def _blob_gets_of(repository: str) -> Any:
    def chosen(method: str, path: str) -> bool:
        return method == "GET" and path.startswith(f"/v2/{repository}/blobs/")

    return chosen


def _stalling_upstream(world: World, fronts: list[Front]) -> FaultProxy:
    """The upstream, except that blob downloads of ``stuck`` stall far past the budget;
    the config reads through it, with a read timeout no stall reaches."""
    stalling = FaultProxy(
        world.upstream,
        rate=1.0,
        seed=1,
        kinds=("stall",),
        stall_seconds=120,
        only=_blob_gets_of(f"{world.ns}/stuck"),
    ).start()
    fronts.append(stalling)
    write_config(world, source=f"{stalling.host}/{world.ns}")
    text = world.config.read_text() + "network:\n  read_timeout: 300\n  retries: 1\n"
    world.config.write_text(text)
    return stalling


@pytest.mark.slow(seconds=9)
@pytest.mark.hostile("registry answers (manifests, bodies, headers)")
def test_the_time_budget_ends_a_stalled_run_and_publishes_what_finished(
    world: World, fronts: list[Front]
) -> None:
    """One image's blob stalls forever (inside every read timeout the config allows):
    past ``--time-budget`` nothing new starts, the stalled copy is abandoned after the
    grace period, the finished images are committed and pushed, exit 1."""
    f = ImageFactory(world.ns)
    world.seed("quick", "v1", f.image("quick-1"))
    world.seed("other", "v1", f.image("other-1"))
    world.seed("stuck", "v1", f.image("stuck-1", layer_size=200_000))
    stalling = _stalling_upstream(world, fronts)

    began = time.monotonic()
    result = world.run("sync", "--time-budget", "6s")
    took = time.monotonic() - began

    assert result.returncode == 1, result.stdout + result.stderr
    assert took < 60, f"the run took {took:.0f} s despite a 6 s budget"
    assert stalling.injected["stall"] >= 1
    assert "the time budget of 6 s ran out" in result.stdout + result.stderr
    assert recorded_tags(world, stalling.host, world.ns) == {("quick", "v1"), ("other", "v1")}
    assert "stuck" not in world.remote_file("state/CHANGELOG.md")


@pytest.mark.parametrize("value", ["soon", "0", "-5m", "5x", ""])
def test_a_bad_time_budget_is_a_usage_error(world: World, value: str) -> None:
    result = world.run("sync", "--time-budget", value)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--time-budget" in result.stderr
    assert git("rev-list", "--count", "main", cwd=world.remote).strip() == "1"


def test_time_budget_does_not_apply_to_image_syncer_rules(world: World) -> None:
    rules = world.tmp / "images.yaml"
    rules.write_text(f"{world.upstream.host}/{world.ns}/app: {world.mirror.host}/x/app\n")
    result = world.run("sync", "--images", str(rules), "--time-budget", "1h")
    assert result.returncode == 2
    assert "--time-budget" in result.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5h", 18000), ("90m", 5400), ("1h30m", 5400), ("45s", 45), ("3600", 3600), ("2.5", 2.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_durations_read_back() -> None:
    assert format_duration(18000) == "5h"
    assert format_duration(5400) == "1h30m"
    assert format_duration(6) == "6 s"
    assert TimeBudget().describe() == "the time budget"
    assert TimeBudget(90.0).grace == 9.0
    assert TimeBudget(86400.0).grace == 600.0
    assert TimeBudget().deadline is None


@pytest.mark.parametrize("command", ["sync", "plan"])
def test_an_unknown_namespace_is_a_usage_error(world: World, command: str) -> None:
    """A typo'd dispatch namespace: exit 2 and one line naming it, not an empty plan."""
    result = world.run(command, "--namespace", "example.invalid/nope")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "example.invalid/nope" in lines[0]
    assert f"{world.upstream.host}/{world.ns}" in lines[0]


@pytest.mark.slow(seconds=11)
def test_a_shard_stopped_by_its_budget_leaves_a_fragment_that_publishes(
    world: World, fronts: list[Front]
) -> None:
    """In the nightly a shard writes a fragment instead of committing: when its time
    budget runs out, what it finished is in the fragment, and ``publish`` records it."""
    f = ImageFactory(world.ns)
    world.seed("quick", "v1", f.image("quick-1"))
    world.seed("stuck", "v1", f.image("stuck-1", layer_size=200_000))
    stalling = _stalling_upstream(world, fronts)
    fragments = world.tmp / "fragments"

    shard = world.run(
        "sync", "--shard", "1/1", "--no-push", "--output", str(fragments), "--time-budget", "6s"
    )

    assert shard.returncode == 1, shard.stdout + shard.stderr
    [fragment] = fragments.glob("fragment-*.json")
    document = json.loads(fragment.read_text())
    assert {(c["image"], c["tag"]) for c in document["changes"]} == {("quick", "v1")}
    published = world.run("publish", str(fragments))
    assert published.returncode == 0, published.stdout + published.stderr
    assert recorded_tags(world, stalling.host, world.ns) == {("quick", "v1")}
