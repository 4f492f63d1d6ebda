"""An upstream that attacks: every answer is bounded in bytes, pages and time, and typed.

Each attack comes from :class:`tests.support.hostile.HostileRegistry` on
loopback. The engine must end it with a one-line :class:`MirrorbotError`,
holding memory and time to a small bound while the attacker would send
gigabytes or take hours; ``mirrorbot sync`` must fail just that namespace and
still mirror, record and push the healthy one beside it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.engine.registry.bounded import LISTING_PAGE_LIMIT, Limits
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.registry.media import Descriptor
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.engine.registry.retry import RetryPolicy
from mirrorbot.engine.sources import make_source
from mirrorbot.engine.sources._listing import DETAILED, MAX_REPOSITORIES
from mirrorbot.errors import (
    DeadlineExceededError,
    ListingError,
    ListingTooLargeError,
    ManifestTooLargeError,
    MirrorbotError,
    ProtocolViolationError,
    RegistryError,
    ResponseTooLargeError,
    TransferTooSlowError,
)
from tests.support.hostile import HostileRegistry
from tests.support.world import World, write_config

FAST = RetryPolicy(attempts=3, timeout=30.0, wait_initial=0.01, wait_max=0.05)
MiB = 1024 * 1024
# Small deadlines so a trickle fails in about a second, not a minute.
QUICK = Limits(request_deadline=1.0, min_transfer_rate=1000)

ROOT = Path(__file__).resolve().parents[2]  # where `-m tests.support.peak_rss` resolves


@pytest.fixture
def hostile(request: pytest.FixtureRequest) -> Iterator[HostileRegistry]:
    with HostileRegistry(request.param) as server:
        yield server


async def _bounded(
    make: Callable[[], Awaitable[Any]], *, seconds: float, memory: int = 64 * MiB
) -> MirrorbotError:
    """Run ``make``; it must raise a one-line MirrorbotError within ``seconds`` and ``memory``."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(MirrorbotError) as caught:
            await make()
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    assert peak < memory, f"peak {peak / MiB:.0f} MiB"
    message = str(caught.value)
    assert "\n" not in message, message
    assert len(message) < 600, message
    return caught.value


def _client(server: HostileRegistry, limits: Limits | None = None) -> RegistryClient:
    return RegistryClient(server.host, retry=FAST, limits=limits)


# -- listings ----------------------------------------------------------------


@pytest.mark.parametrize("hostile", ["endless", "gzip-bomb"], indirect=True)
@pytest.mark.parametrize("listing", ["catalog", "tags"])
async def test_an_endless_or_inflating_listing_stops_at_its_byte_cap(
    hostile: HostileRegistry, listing: str
) -> None:
    async with _client(hostile) as client:
        call = client.catalog if listing == "catalog" else lambda: client.tags("hostile/x")
        error = await _bounded(call, seconds=20, memory=3 * LISTING_PAGE_LIMIT)
    assert isinstance(error, ResponseTooLargeError)
    assert error.limit == LISTING_PAGE_LIMIT
    assert hostile.requests == 1  # refused, not retried


@pytest.mark.parametrize("hostile", ["fake-gzip"], indirect=True)
async def test_a_body_labelled_gzip_that_is_not_is_a_protocol_violation(
    hostile: HostileRegistry,
) -> None:
    async with _client(hostile) as client:
        error = await _bounded(client.catalog, seconds=10)
    assert isinstance(error, ProtocolViolationError)
    assert "gzip" in str(error)


@pytest.mark.parametrize("hostile", ["redirect-loop"], indirect=True)
async def test_a_redirect_loop_is_a_protocol_violation(hostile: HostileRegistry) -> None:
    async with _client(hostile) as client:
        error = await _bounded(client.catalog, seconds=10)
    assert isinstance(error, ProtocolViolationError)
    assert "TooManyRedirects" in str(error)


@pytest.mark.parametrize("hostile", ["bad-link"], indirect=True)
async def test_a_link_that_is_not_a_url_is_a_protocol_violation(
    hostile: HostileRegistry,
) -> None:
    async with _client(hostile) as client:
        error = await _bounded(client.catalog, seconds=10)
    assert isinstance(error, ProtocolViolationError)
    assert "Link" in str(error)


@pytest.mark.parametrize("hostile", ["cross-host", "scheme-change"], indirect=True)
async def test_pagination_never_leaves_the_registry(hostile: HostileRegistry) -> None:
    async with _client(hostile) as client:
        error = await _bounded(lambda: client.tags("hostile/x"), seconds=10)
    assert isinstance(error, ProtocolViolationError)
    assert "Link leaves" in str(error)
    assert hostile.requests == 1  # the other page was never asked for


@pytest.mark.parametrize("hostile", ["links"], indirect=True)
async def test_endless_pagination_stops_at_the_page_cap(hostile: HostileRegistry) -> None:
    async with _client(hostile, Limits(max_pages=25)) as client:
        error = await _bounded(client.catalog, seconds=20)
    assert isinstance(error, ListingTooLargeError)
    assert "more than 25 pages" in str(error)
    assert hostile.requests == 25


def test_the_default_caps_are_the_documented_ones() -> None:
    limits = Limits()
    assert limits.max_pages == 10_000
    assert limits.max_items == 100_000
    assert 16 * MiB == LISTING_PAGE_LIMIT


@pytest.mark.parametrize("hostile", ["links"], indirect=True)
async def test_more_entries_than_the_item_cap_is_refused_not_truncated(
    hostile: HostileRegistry,
) -> None:
    async with _client(hostile, Limits(max_items=10)) as client:
        error = await _bounded(lambda: client.tags("hostile/x"), seconds=20)
    assert isinstance(error, ListingTooLargeError)
    assert "more than 10 tags" in str(error)


# -- time --------------------------------------------------------------------


@pytest.mark.parametrize("hostile", ["trickle"], indirect=True)
async def test_a_trickled_listing_or_manifest_ends_at_the_request_deadline(
    hostile: HostileRegistry,
) -> None:
    async with _client(hostile, QUICK) as client:
        listing = await _bounded(lambda: client.tags("hostile/x"), seconds=5)
        manifest = await _bounded(lambda: client.manifest_get("hostile/x", "v1"), seconds=5)
    for error in (listing, manifest):
        assert isinstance(error, DeadlineExceededError)
        assert "request_deadline" in str(error)


@pytest.mark.parametrize("hostile", ["trickle"], indirect=True)
async def test_a_trickled_blob_fails_the_minimum_transfer_rate(hostile: HostileRegistry) -> None:
    body = b'{"tags": ["' + b"a" * 1_000_000 + b'"]}'  # what the trickle would send, eventually
    descriptor = Descriptor("application/octet-stream", "sha256:" + "0" * 64, len(body))

    async def read() -> None:
        async with client.blob_open("hostile/x", descriptor) as chunks:
            async for _ in chunks:
                pass

    async with _client(hostile, QUICK) as client:
        error = await _bounded(read, seconds=5)
    assert isinstance(error, TransferTooSlowError)
    assert "min_transfer_rate" in str(error)


@pytest.mark.parametrize("hostile", ["token-endless", "token-trickle"], indirect=True)
async def test_a_hostile_token_endpoint_is_bounded(hostile: HostileRegistry) -> None:
    async with _client(hostile, QUICK) as client:
        error = await _bounded(lambda: client.tags("hostile/x"), seconds=10)
    expected = ResponseTooLargeError if hostile.attack == "token-endless" else DeadlineExceededError
    assert isinstance(error, expected)


@pytest.mark.parametrize("hostile", ["gzip-bomb"], indirect=True)
async def test_a_gzip_bomb_manifest_is_refused_while_it_inflates(hostile: HostileRegistry) -> None:
    async with _client(hostile) as client:
        error = await _bounded(lambda: client.manifest_get("hostile/x", "v1"), seconds=10)
    assert isinstance(error, ManifestTooLargeError)


def test_the_pool_carries_the_network_deadlines() -> None:
    pool = RegistryPool(request_deadline=2.5, min_transfer_rate=7)
    assert pool.client("registry.test").limits == Limits(request_deadline=2.5, min_transfer_rate=7)


# -- what the user sees ------------------------------------------------------


async def test_half_a_million_invalid_tags_are_a_few_lines() -> None:
    invalid = [f"-bad{i}" for i in range(50_000)]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/ns/app/tags/list":
            return httpx.Response(200, json={"tags": ["ok", *invalid]})
        return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN"}]})

    async with RegistryClient(
        "registry.test", transport=httpx.MockTransport(handler), retry=FAST
    ) as client:
        source = make_source(
            "images", registry="registry.test", path="ns", client=client, images=["app"]
        )
        listing = await source.list()
    assert [t.name for r in listing.repositories for t in r.tags] == ["ok"]
    assert len(listing.skipped) == DETAILED + 1
    summary = [line for line in listing.skipped if "more invalid tags" in line]
    assert summary == [
        f"registry.test/ns: and {50_000 - DETAILED} more invalid tags skipped "
        f"(the first {DETAILED} are shown)"
    ]


def _sync_measured(world: World, env: dict[str, str] | None = None) -> tuple[int, str, int]:
    """Run ``mirrorbot sync``; exit code, output and the peak RSS (bytes) of that process.

    The peak is measured by a small parent (``tests.support.peak_rss``): measured
    from pytest, a child's peak includes pytest's own memory at the fork."""
    out = world.tmp / "sync.out"
    peak = world.tmp / "sync.rss"
    wrapper = [sys.executable, "-m", "tests.support.peak_rss", str(peak)]
    with out.open("w") as sink:
        process = subprocess.Popen(
            [*wrapper, *world.command("sync")],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=world.environment(env),
            cwd=ROOT,
            start_new_session=True,
        )
        try:
            # A time bound, not a synchronisation: an unbounded run is killed, and fails below.
            process.wait(timeout=150)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, out.read_text(), int(peak.read_text() or 0)


def _hostile_namespace(server: HostileRegistry, network: str = "") -> str:
    return f"  - source: {server.host}/hostile\n    list: catalog\n{network}"


@pytest.mark.parametrize(
    "attack", ["endless", "gzip-bomb", "redirect-loop", "bad-link", "cross-host", "fake-gzip"]
)
def test_sync_fails_only_the_hostile_namespace(world: World, attack: str) -> None:
    f = ImageFactory(world.ns)
    world.seed("good", "v1", f.image("good"))
    with HostileRegistry(attack) as server:
        write_config(world, extra_namespace=_hostile_namespace(server))
        started = time.monotonic()
        code, output, peak = _sync_measured(world)
        hostile_source = f"{server.host}/hostile"
    assert time.monotonic() - started < 120
    assert code == 1, output
    assert "Traceback" not in output, output
    failures = [line for line in output.splitlines() if hostile_source in line]
    assert failures, output
    # The process alone takes about 60 MiB; one listing page is capped at 16 MiB.
    assert peak < 160 * MiB, f"peak RSS {peak / MiB:.0f} MiB"
    images: Any = world.state()["images"]
    assert set(images) == {"good"}  # the healthy namespace was mirrored, recorded and pushed


def test_sync_holds_a_trickle_to_the_configured_deadline(world: World, tmp_path: Path) -> None:
    f = ImageFactory(world.ns)
    world.seed("good", "v1", f.image("good"))
    with HostileRegistry("trickle") as server:
        write_config(world, extra_namespace=_hostile_namespace(server))
        config = world.config.read_text()
        world.config.write_text(config + "network:\n  request_deadline: 1\n")
        started = time.monotonic()
        code, output, _ = _sync_measured(world)
    assert time.monotonic() - started < 60
    assert code == 1, output
    assert "request_deadline" in output, output
    images: Any = world.state()["images"]
    assert set(images) == {"good"}


async def test_deeply_nested_json_is_a_typed_error_not_a_recursion_traceback() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"[" * 200_000, headers={"Content-Type": "x"})

    async with RegistryClient(
        "registry.test", transport=httpx.MockTransport(handler), retry=FAST
    ) as client:
        with pytest.raises(RegistryError, match="not JSON"):
            await client.tags("ns/app")
        with pytest.raises(RegistryError, match="not JSON"):
            await client.get_json(
                "/v2/ns/app/tags/list", scopes=(), reference="registry.test/ns/app"
            )


async def test_a_namespace_past_the_repository_cap_fails_whole() -> None:
    requested: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(request.url.path)
        return httpx.Response(200, json={"tags": ["v1"]})

    async with RegistryClient(
        "registry.test", transport=httpx.MockTransport(handler), retry=FAST
    ) as client:
        source = make_source(
            "images",
            registry="registry.test",
            path="ns",
            client=client,
            images=[f"r{i}" for i in range(MAX_REPOSITORIES + 1)],
        )
        with pytest.raises(ListingError, match=f"more than {MAX_REPOSITORIES} repositories"):
            await source.list()
    assert requested == []  # refused before a single request
