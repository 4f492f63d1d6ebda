"""Listing strategies against real Distribution registries and thin fronts over them.

``catalog`` and ``images`` run on the real registry; ``gcr`` and ``dockerhub``
on :mod:`tests.support.fronts`, which compute gcr's ``tags/list`` extension
and the Hub web API live from a real registry's content. Hostile listings come
from the fronts' injection hooks or from a scripted ``httpx.MockTransport``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mirrorbot.demo.corpus import Image, ImageFactory
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.registry.retry import RetryPolicy
from mirrorbot.engine.sources import ListedRepository, ListedTag, Listing, Source, make_source
from mirrorbot.engine.sources.gcr import parse_upload_time
from mirrorbot.errors import ListingError
from tests.support import skopeo
from tests.support.fronts import GcrFront, HubFront

FAST = RetryPolicy(attempts=3, timeout=30.0, wait_initial=0.01, wait_max=0.05)
LONG = "a" * 300


# -- the seeded namespace -----------------------------------------------------


def _corpus(ns: str) -> dict[str, dict[str, Image]]:
    """Nested repositories below ``ns``, plus neighbours that merely share its prefix."""
    f = ImageFactory(ns)
    base = f.layer("base", 1024)
    pause_39 = f.index("pause-3.9", layers=[base], oci=False)
    return {
        f"{ns}/pause": {
            "3.1": f.image("pause-3.1", layers=[base]),
            "3.9": pause_39,
            "latest": pause_39,
        },
        f"{ns}/etcd": {
            "3.5.9": f.index("etcd-3.5.9", layers=[base], attestations=True),
            "3.4.0": f.image("etcd-3.4.0", oci=True),
        },
        f"{ns}/etcd/backup": {"v1": f.image("backup-1"), "v2": f.image("backup-2", oci=True)},
        f"{ns}/a/b/c": {"1.0": f.image("abc-1"), "2.0": f.image("abc-2")},
        f"{ns}/kube-proxy": {"v1.28.0": f.image("kube-proxy")},
        # Neighbours: a string prefix is not a namespace.
        f"{ns}x/other": {"1": f.image("other")},
        f"{ns}-other/pause": {"1": f.image("other-pause")},
        f"{ns}.other/pause": {"1": f.image("dot-pause")},
    }


def _below(ns: str, corpus: Mapping[str, Mapping[str, Image]]) -> dict[str, dict[str, Image]]:
    prefix = f"{ns}/"
    return {
        repository[len(prefix) :]: dict(tags)
        for repository, tags in corpus.items()
        if repository.startswith(prefix)
    }


def _seed(registry: LocalRegistry, ns: str) -> dict[str, dict[str, Image]]:
    """Push the corpus; return what is expected below ``ns``: ``{path: {tag: image}}``."""
    corpus = _corpus(ns)
    with Seeder(registry.url) as seeder:
        seeder.push_all(corpus)
    return _below(ns, corpus)


def _shape(listing: Listing) -> dict[str, list[str]]:
    return {r.path: [t.name for t in r.tags] for r in listing.repositories}


def _expected_shape(expected: Mapping[str, Mapping[str, Image]]) -> dict[str, list[str]]:
    return {path: sorted(tags) for path, tags in sorted(expected.items())}


def _assert_sorted(listing: Listing) -> None:
    paths = [r.path for r in listing.repositories]
    assert paths == sorted(paths)
    for repository in listing.repositories:
        names = [t.name for t in repository.tags]
        assert names == sorted(names)


@pytest.fixture
def gcr_front(source_registry: LocalRegistry) -> Iterator[GcrFront]:
    with GcrFront(source_registry) as front:
        yield front


# -- catalog ------------------------------------------------------------------


async def test_catalog_lists_the_namespace_through_pages(
    source_registry: LocalRegistry, ns: str
) -> None:
    expected = _seed(source_registry, ns)
    mark = source_registry.log_mark()
    async with RegistryClient(source_registry.host) as client:
        source: Source = make_source(
            "catalog", registry=source_registry.host, path=ns, client=client
        )
        listing = await source.list()
    assert listing.source == f"{source_registry.host}/{ns}"
    assert _shape(listing) == _expected_shape(expected)
    assert [r.path for r in listing.repositories] == [
        "a/b/c",
        "etcd",
        "etcd/backup",
        "kube-proxy",
        "pause",
    ]
    _assert_sorted(listing)
    assert listing.skipped == ()
    assert all(t.digest is None for r in listing.repositories for t in r.tags)
    # maxentries 3: the registry itself logged several catalog pages.
    pages = [r for r in source_registry.requests(mark) if r.uri.startswith("/v2/_catalog")]
    assert len([p for p in pages if p.status == 200]) >= 3


async def test_catalog_top_level_failure_is_a_listing_error(
    token_registry: LocalRegistry, ns: str
) -> None:
    # Anonymous callers of the token registry may pull, never read the catalog.
    async with RegistryClient(token_registry.host, retry=FAST) as client:
        source = make_source("catalog", registry=token_registry.host, path=ns, client=client)
        with pytest.raises(ListingError) as caught:
            await source.list()
    assert caught.value.source == f"{token_registry.host}/{ns}"


async def test_concurrency_is_bounded() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        if request.url.path == "/v2/_catalog":
            return httpx.Response(200, json={"repositories": [f"ns/r{i}" for i in range(10)]})
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(5):
            await asyncio.sleep(0)  # yield to the other tasks: no timing involved
        in_flight -= 1
        return httpx.Response(200, json={"tags": ["1"]})

    async with RegistryClient(
        "registry.test", transport=httpx.MockTransport(handler), retry=FAST
    ) as client:
        listing = await make_source(
            "catalog", registry="registry.test", path="ns", client=client, concurrency=2
        ).list()
    assert len(listing.repositories) == 10
    assert peak == 2


# -- gcr ------------------------------------------------------------------------


@pytest.mark.parametrize("numbers_as_strings", [True, False], ids=["gcr.io", "artifact-registry"])
async def test_gcr_walks_children_and_takes_digests_from_the_map(
    source_registry: LocalRegistry, ns: str, numbers_as_strings: bool
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)
    expected = _seed(source_registry, ns)
    with GcrFront(source_registry, numbers_as_strings=numbers_as_strings) as front:
        async with RegistryClient(front.host) as client:
            listing = await make_source(
                "gcr", registry=front.host, path=ns, client=client, concurrency=3
            ).list()
        requests = list(front.requests)
        listed = front.listed
    after = datetime.now(UTC) + timedelta(seconds=2)

    assert listing.skipped == ()
    assert _shape(listing) == _expected_shape(expected)
    _assert_sorted(listing)
    for repository in listing.repositories:
        for tag in repository.tags:
            image = expected[repository.path][tag.name]
            assert tag.digest == image.digest
            assert tag.media_type == image.media_type
            assert tag.uploaded is not None
            assert before <= tag.uploaded <= after
    # Parents without tags (a, a/b) were walked, not listed; untagged index children ignored.
    assert sorted(listed) == sorted(
        [
            ns,
            f"{ns}/pause",
            f"{ns}/etcd",
            f"{ns}/etcd/backup",
            f"{ns}/a",
            f"{ns}/a/b",
            f"{ns}/a/b/c",
            f"{ns}/kube-proxy",
        ]
    )
    # The map gave every digest: not one manifest request.
    assert all("/manifests/" not in target for _, target in requests)


async def test_gcr_digests_agree_with_skopeo(source_registry: LocalRegistry, ns: str) -> None:
    _seed(source_registry, ns)
    with GcrFront(source_registry) as front:
        async with RegistryClient(front.host) as client:
            listing = await make_source("gcr", registry=front.host, path=ns, client=client).list()
        pause = next(r for r in listing.repositories if r.path == "pause")
        for tag in pause.tags:
            # skopeo reads through the front's proxy: the same bytes as the real registry.
            through_front = skopeo.manifest_digest(f"{front.host}/{ns}/pause:{tag.name}")
            direct = skopeo.manifest_digest(f"{source_registry.host}/{ns}/pause:{tag.name}")
            assert tag.digest == through_front == direct


async def test_gcr_front_serves_as_an_upstream_registry(
    source_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    expected = _seed(source_registry, ns)
    image = expected["etcd"]["3.5.9"]
    with GcrFront(source_registry) as front:
        async with RegistryClient(front.host) as client:
            await client.ping()
            manifest = await client.manifest_get(f"{ns}/etcd", "3.5.9")
            assert manifest.digest == image.digest
            head = await client.manifest_head(f"{ns}/etcd", "3.5.9")
            assert head is not None
            assert head.digest == image.digest
            blob = image.blobs[0]
            assert await client.blob_head(f"{ns}/etcd", blob.digest) == blob.size
        # skopeo pulls every platform through the front and verifies every blob.
        index = skopeo.copy_to_oci(f"{front.host}/{ns}/etcd:3.5.9", tmp_path / "oci")
    assert index["manifests"][0]["digest"] == image.digest


async def test_gcr_unknown_namespace_is_a_listing_error(gcr_front: GcrFront, ns: str) -> None:
    async with RegistryClient(gcr_front.host, retry=FAST) as client:
        source = make_source("gcr", registry=gcr_front.host, path=f"{ns}-absent", client=client)
        with pytest.raises(ListingError, match="listing failed"):
            await source.list()


async def test_gcr_hostile_entries_are_skipped_and_never_requested(
    source_registry: LocalRegistry, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    expected = _seed(source_registry, ns)
    inject: dict[str, dict[str, Any]] = {
        ns: {
            "child": ["../x", "UPPER", LONG, "", "ctl\x07", "/abs", "ghost"],
            "tags": ["bad tag", "-x"],
        },
        f"{ns}/pause": {
            "tags": ["../../etc", "ünï", "a" * 200],
            "manifest": {
                "sha256:zz": {"tag": ["evil"], "mediaType": "x", "timeUploadedMs": "1"},
                "sha256:" + "0" * 64: {"tag": [], "mediaType": "x"},
            },
        },
    }
    caplog.set_level(logging.WARNING, logger="mirrorbot.sources")
    with GcrFront(source_registry, inject=inject) as front:
        async with RegistryClient(front.host, retry=FAST) as client:
            listing = await make_source("gcr", registry=front.host, path=ns, client=client).list()
        listed = front.listed

    # Nothing else was affected: the real repositories, digests and all.
    assert _shape(listing) == _expected_shape(expected)
    pause = next(r for r in listing.repositories if r.path == "pause")
    assert {t.name: t.digest for t in pause.tags} == {
        tag: image.digest for tag, image in expected["pause"].items()
    }
    # Every hostile entry is reported; only the valid (if absent) "ghost" was ever asked for.
    skipped = "\n".join(listing.skipped)
    for needle in ("'../x'", "'UPPER'", "300 characters", "''", "'ctl\\x07'", "'/abs'", "'ghost'"):
        assert needle in skipped, needle
    for needle in ("'bad tag'", "'-x'", "'../../etc'", "'ünï'", "'sha256:zz'"):
        assert needle in skipped, needle
    assert "'evil'" not in skipped  # its manifest entry was refused as a whole
    assert f"{ns}/ghost" in listed
    assert not [path for path in listed if ".." in path or "UPPER" in path or LONG in path]
    logged = [r.getMessage() for r in caplog.records if r.name == "mirrorbot.sources"]
    assert len(logged) == len(listing.skipped)


def test_upload_times_in_both_number_styles() -> None:
    moment = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    millis = int(moment.timestamp() * 1000)
    assert parse_upload_time(str(millis)) == moment
    assert parse_upload_time(millis) == moment
    for junk in (None, "", "0", 0, -5, "12x", "1e12", True, 1.5e12, "9" * 40, "١٢٣"):
        assert parse_upload_time(junk) is None, junk


# -- dockerhub ------------------------------------------------------------------


async def test_dockerhub_pages_and_survives_a_429(source_registry: LocalRegistry, ns: str) -> None:
    expected = _seed(source_registry, ns)
    flat = {path: tags for path, tags in expected.items() if "/" not in path}
    with HubFront(source_registry, max_page_size=2) as hub:
        hub.fail_next(429, {"Retry-After": "0", "Content-Type": "application/json"}, b"{}")
        async with RegistryClient(source_registry.host) as client:
            listing = await make_source(
                "dockerhub",
                registry=source_registry.host,
                path=ns,
                client=client,
                hub_api=hub.url,
            ).list()
        pages = [target for method, target in hub.requests if method == "GET"]
    assert _shape(listing) == _expected_shape(flat)
    assert listing.skipped == ()
    # 3 repositories, 2 per page: page 1 twice (429, then served), then page 2.
    assert len(pages) == 3
    assert pages[0] == pages[1]
    assert "page=2" in pages[2]


async def test_dockerhub_upload_times_from_tag_pages_and_a_hostile_next(
    source_registry: LocalRegistry, ns: str
) -> None:
    """``upload_times``: each tag's ``last_updated``; a page whose ``next`` leaves the API's
    host costs that repository its times (one warning), never its tags."""
    expected = _seed(source_registry, ns)
    flat = {path: tags for path, tags in expected.items() if "/" not in path}
    with HubFront(source_registry, max_page_size=1) as hub:
        async with RegistryClient(source_registry.host) as client:
            source = make_source(
                "dockerhub",
                registry=source_registry.host,
                path=ns,
                client=client,
                hub_api=hub.url,
                upload_times=True,
            )
            listing = await source.list()
            for repository in listing.repositories:
                for tag in repository.tags:
                    pushed = hub.tag_pushed(f"{ns}/{repository.path}", tag.name)
                    assert tag.uploaded is not None
                    assert abs((tag.uploaded - pushed).total_seconds()) < 0.001
            hub.tag_next = "https://elsewhere.example/v2/namespaces/x/repositories/y/tags"
            hostile = await source.list()
    assert _shape(listing) == _expected_shape(flat)
    assert _shape(hostile) == _expected_shape(flat)
    assert all(t.uploaded is None for r in hostile.repositories for t in r.tags)
    assert len(hostile.skipped) == len(flat)
    assert all("no upload times" in line and "elsewhere" in line for line in hostile.skipped)


async def test_dockerhub_with_a_given_client_and_hostile_names(
    source_registry: LocalRegistry, ns: str
) -> None:
    expected = _seed(source_registry, ns)
    flat = {path: tags for path, tags in expected.items() if "/" not in path}
    with HubFront(source_registry, extra_names=["../x", "UPPER", LONG, "gone"]) as hub:
        async with (
            httpx.AsyncClient(timeout=10.0) as hub_client,
            RegistryClient(source_registry.host) as client,
        ):
            listing = await make_source(
                "dockerhub",
                registry=source_registry.host,
                path=ns,
                client=client,
                hub_api=hub.url,
                hub_client=hub_client,
            ).list()
    # "gone" is a valid name without tags upstream: left out silently, like an empty repository.
    assert _shape(listing) == _expected_shape(flat)
    skipped = "\n".join(listing.skipped)
    assert "'../x'" in skipped
    assert "'UPPER'" in skipped
    assert "300 characters" in skipped
    assert len(listing.skipped) == 3


async def test_dockerhub_top_level_failures(source_registry: LocalRegistry, ns: str) -> None:
    _seed(source_registry, ns)
    with HubFront(source_registry) as hub:
        async with RegistryClient(source_registry.host, retry=FAST) as client:
            source = make_source(
                "dockerhub", registry="docker.io", path=ns, client=client, hub_api=hub.url
            )
            hub.fail_next(403, {"Content-Type": "application/json"}, b'{"message": "no"}')
            with pytest.raises(ListingError, match="403"):
                await source.list()
            hub.fail_next(503, times=FAST.attempts)
            with pytest.raises(ListingError, match="503"):
                await source.list()
            assert (await source.list()).repositories  # faults spent: the same source works
            absent = make_source(
                "dockerhub",
                registry="docker.io",
                path=f"{ns}-absent",
                client=client,
                hub_api=hub.url,
            )
            with pytest.raises(ListingError, match="404"):
                await absent.list()


async def test_dockerhub_next_may_not_leave_the_hub() -> None:
    def hub(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"count": 2, "next": "http://elsewhere.test/steal", "results": [{"name": "a"}]},
        )

    def registry(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"tags": ["1"]})

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(hub)) as hub_client,
        RegistryClient("registry.test", transport=httpx.MockTransport(registry)) as client,
    ):
        source = make_source(
            "dockerhub",
            registry="docker.io",
            path="someone",
            client=client,
            hub_api="https://hub.test",
            hub_client=hub_client,
        )
        with pytest.raises(ListingError, match=r"leaves hub\.test"):
            await source.list()


# -- images ---------------------------------------------------------------------


async def test_images_lists_what_exists_and_reports_the_rest(
    source_registry: LocalRegistry, ns: str
) -> None:
    expected = _seed(source_registry, ns)
    async with RegistryClient(source_registry.host) as client:
        listing = await make_source(
            "images",
            registry=source_registry.host,
            path=ns,
            client=client,
            images=["pause", "a/b/c", "nope", "../x", "pause"],
        ).list()
    assert _shape(listing) == _expected_shape({p: expected[p] for p in ("a/b/c", "pause")})
    assert len(listing.skipped) == 2
    assert "'nope'" in listing.skipped[0] or "'nope'" in listing.skipped[1]
    assert any("'../x'" in entry for entry in listing.skipped)


# -- hostile registry, scripted -------------------------------------------------


async def test_hostile_catalog_and_tags_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        path = request.url.path
        if path == "/v2/_catalog" and "last" not in request.url.params:
            return httpx.Response(
                200,
                json={"repositories": ["ns/ok", "ns/../x", "ns/UPPER", f"ns/{LONG}"]},
                headers={"Link": '</v2/_catalog?last=ns%2FUPPER&n=4>; rel="next"'},
            )
        if path == "/v2/_catalog":
            return httpx.Response(
                200,
                json={"repositories": ["ns/", "ns/ctl\x07", "nsx/other", "ns", "ns/denied", 7]},
            )
        if path == "/v2/ns/ok/tags/list":
            return httpx.Response(
                200,
                json={"name": "ns/ok", "tags": ["1.0", "bad tag", "../x", "a" * 200, "", "1.0"]},
            )
        if path == "/v2/ns/denied/tags/list":
            return httpx.Response(
                403, json={"errors": [{"code": "DENIED", "message": "requested access denied"}]}
            )
        return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN"}]})

    caplog.set_level(logging.WARNING, logger="mirrorbot.sources")
    async with RegistryClient(
        "registry.test", transport=httpx.MockTransport(handler), retry=FAST
    ) as client:
        listing = await make_source(
            "catalog", registry="registry.test", path="ns", client=client
        ).list()

    assert listing.repositories == (ListedRepository("ok", (ListedTag("1.0"),)),)
    skipped = "\n".join(listing.skipped)
    for needle in ("'../x'", "'UPPER'", "300 characters", "''", "'ctl\\x07'", "'denied'", "DENIED"):
        assert needle in skipped, needle
    for needle in ("'bad tag'", "200 characters", "namespace itself"):
        assert needle in skipped, needle
    assert "nsx" not in skipped
    # Tags were asked only for valid names.
    tag_requests = [p for p in seen if p.endswith("/tags/list") or "/tags/list?" in p]
    assert sorted(p.split("?")[0] for p in tag_requests) == [
        "/v2/ns/denied/tags/list",
        "/v2/ns/ok/tags/list",
    ]
    assert len([r for r in caplog.records if r.name == "mirrorbot.sources"]) == len(listing.skipped)
    json.dumps(listing.skipped)  # plain strings, fit for a report


# -- the factory ----------------------------------------------------------------


async def test_make_source_refuses_what_cannot_work() -> None:
    async with RegistryClient("registry.test") as client:
        with pytest.raises(ValueError, match="unknown listing strategy"):
            make_source("ftp", registry="registry.test", path="ns", client=client)
        with pytest.raises(ValueError, match="namespace path"):
            make_source("gcr", registry="gcr.io", path="", client=client)
        with pytest.raises(ValueError, match="lowercase"):
            make_source("catalog", registry="registry.test", path="NS", client=client)
        with pytest.raises(ValueError, match="one name"):
            make_source("dockerhub", registry="docker.io", path="a/b", client=client)
        with pytest.raises(ValueError, match="concurrency"):
            make_source("images", registry="registry.test", path="", client=client, concurrency=0)
