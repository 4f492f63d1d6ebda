"""Upstream-friendly pulls: HEAD to resolve, one GET per digest, Docker Hub's rate limit.

Counted where it cannot be fooled: the upstream registry's own access log, or
a Hub-shaped front (tests/support/ratelimit.py) over a real registry.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx
import pytest

from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.engine.registry.media import Manifest, parse_manifest
from mirrorbot.engine.registry.pulls import ManifestCache, PullMeter, parse_ratelimit
from mirrorbot.errors import PullBudgetError
from tests.support.ratelimit import RateLimitedFront
from tests.support.world import World, write_config


def _manifest_gets(world: World, mark: int) -> Counter[str]:
    return Counter(
        r.uri
        for r in world.upstream.requests(mark)
        if r.method == "GET" and f"/{world.ns}/" in r.uri and "/manifests/" in r.uri
    )


def _recorded(world: World, host: str) -> dict[str, str]:
    state = json.loads(world.remote_file(f"state/{host}/{world.ns}.json"))
    return {tag: record["digest"] for tag, record in state["images"]["app"]["tags"].items()}


def test_fifty_tags_sharing_one_digest_cost_one_get_per_manifest(world: World) -> None:
    image = ImageFactory(world.ns).index("shared", attestations=True)
    tags = [f"v1.{n}" for n in range(50)]
    for tag in tags:
        world.seed("app", tag, image)
    mark = world.upstream.log_mark()
    result = world.run("sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _recorded(world, world.upstream.host) == dict.fromkeys(tags, image.digest)
    gets = _manifest_gets(world, mark)
    # The index once and each child once, by digest; the 50 tags were resolved with HEAD.
    assert set(gets.values()) == {1}, gets
    assert len(gets) == len(image.manifests), gets
    assert all("/manifests/sha256:" in uri for uri in gets)


def test_a_hub_shaped_upstream_is_paced_not_429d(world: World) -> None:
    f = ImageFactory(world.ns)
    tags = [f"1.{n}" for n in range(5)]
    for tag in tags:
        world.seed("app", tag, f.image(f"app-{tag}"))
    with RateLimitedFront(world.upstream, limit=3) as hub:
        write_config(world, source=f"{hub.host}/{world.ns}")
        first = world.run("sync")
        assert first.returncode == 0, first.stdout + first.stderr
        assert hub.refused == 0  # stopped before the limit, never 429'd
        assert hub.pulls == 3
        assert len(_recorded(world, hub.host)) == 3
        assert "pulls used: 3, remaining 0 of 3" in first.stdout
        assert f"deferred 2 tags: {hub.host} pull budget" in first.stdout
        assert "\nfailed:" not in first.stdout, first.stdout

        with hub._lock:
            hub.remaining = 3  # the next night: the window has moved on
        second = world.run("sync")
        assert second.returncode == 0, second.stdout + second.stderr
        assert hub.refused == 0
        assert set(_recorded(world, hub.host)) == set(tags)
        assert "deferred" not in second.stdout


def test_a_429_that_says_none_are_left_defers_instead_of_retrying(world: World) -> None:
    f = ImageFactory(world.ns)
    for n in range(4):
        world.seed("app", f"3.{n}", f.image(f"unannounced-{n}"))
    with RateLimitedFront(world.upstream, limit=2, announce=False) as hub:
        write_config(world, source=f"{hub.host}/{world.ns}")
        world.config.write_text(world.config.read_text() + "network:\n  image_concurrency: 1\n")
        result = world.run("sync")
        host = hub.host
    assert result.returncode == 0, result.stdout + result.stderr
    assert hub.refused == 1  # the one 429 said ratelimit-remaining 0: no retry, no more GETs
    assert len(_recorded(world, host)) == 2
    assert f"deferred 2 tags: {host} pull budget" in result.stdout


def test_a_pull_budget_defers_the_rest_to_the_next_run(world: World) -> None:
    f = ImageFactory(world.ns)
    for n in range(4):
        world.seed("app", f"2.{n}", f.image(f"budget-{n}"))
    world.config.write_text(world.config.read_text() + "network:\n  pull_budget: 2\n")
    mark = world.upstream.log_mark()
    result = world.run("sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sum(_manifest_gets(world, mark).values()) == 2
    assert len(_recorded(world, world.upstream.host)) == 2
    assert f"{world.upstream.host} pulls used: 2" in result.stdout
    assert f"deferred 2 tags: {world.upstream.host} pull budget" in result.stdout


def test_ratelimit_headers_are_parsed_strictly() -> None:
    assert parse_ratelimit("100;w=21600") == 100
    assert parse_ratelimit(" 7 ") == 7
    for hostile in (None, "", "-1", "1e9", "\uff19", "9" * 13, "abc;w=1"):
        assert parse_ratelimit(hostile) is None


def test_the_meter_stops_at_the_budget_and_at_the_reserve() -> None:
    meter = PullMeter("docker.io", budget=2)
    meter.release(meter.acquire("a"))
    meter.release(meter.acquire("b"))
    with pytest.raises(PullBudgetError, match="Docker Hub pull budget"):
        meter.acquire("c")
    hub = PullMeter("docker.io", reserve=1)
    hub.observe(httpx.Response(200, headers={"ratelimit-remaining": "3;w=21600"}))
    hub.acquire("x")  # 3 left, none in flight
    hub.acquire("y")  # 3 left less 1 in flight = 2 > 1: allowed
    with pytest.raises(PullBudgetError, match="3 pulls left upstream, 2 in flight"):
        hub.acquire("z")  # 3 - 2 in flight = 1 ≤ reserve: refused
    # A stale, higher count arriving late does not undo a lower one.
    hub.observe(httpx.Response(200, headers={"ratelimit-remaining": "9"}))
    assert hub.remaining == 3


def test_a_head_answered_while_a_get_is_in_flight_is_not_counted_twice() -> None:
    # The registry counted the in-flight GET before it answered a HEAD with 2 left:
    # 3 - 1 pulls are left, not 2 - 1 in flight (which would defer the third tag).
    meter = PullMeter("docker.io")
    meter.observe(httpx.Response(200, headers={"ratelimit-remaining": "3"}))
    first = meter.acquire("a")
    meter.observe(httpx.Response(200, headers={"ratelimit-remaining": "2"}))
    meter.acquire("b")
    meter.acquire("c")
    with pytest.raises(PullBudgetError, match="in flight"):
        meter.acquire("d")
    meter.release(first)
    # Somebody else pulls on the same quota: a lower count than ours wins.
    shared = PullMeter("docker.io")
    shared.observe(httpx.Response(200, headers={"ratelimit-remaining": "5"}))
    shared.acquire("a")
    shared.observe(httpx.Response(200, headers={"ratelimit-remaining": "1"}))
    shared.acquire("b")  # the one the registry says is left
    with pytest.raises(PullBudgetError, match="1 pulls left upstream"):
        shared.acquire("c")


def test_the_manifest_cache_is_bounded_and_asks_once_per_digest() -> None:
    def manifest(n: int) -> bytes:
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [],
                "annotations": {"n": str(n), "pad": "x" * 1000},
            }
        ).encode()

    manifests = [
        parse_manifest(manifest(n), "application/vnd.oci.image.index.v1+json", f"m{n}")
        for n in range(3)
    ]
    fetched: list[int] = []

    async def scenario() -> None:
        cache = ManifestCache(max_bytes=manifests[0].size * 2)

        def fetch(n: int) -> Callable[[], Awaitable[Manifest]]:
            async def go() -> Manifest:
                fetched.append(n)
                await asyncio.sleep(0)
                return manifests[n]

            return go

        got = await asyncio.gather(
            *(cache.get("r", manifests[0].digest, fetch(0)) for _ in range(10))
        )
        assert all(m is manifests[0] for m in got)
        await cache.get("r", manifests[1].digest, fetch(1))
        await cache.get("r", manifests[2].digest, fetch(2))  # evicts the oldest
        assert len(cache) == 2
        assert cache.size <= cache.max_bytes
        await cache.get("r", manifests[0].digest, fetch(0))

    asyncio.run(scenario())
    assert fetched == [0, 1, 2, 0]
