"""``list: quay`` against a Quay-API front over a real registry, and a namespace that lists nothing.

The front (:mod:`tests.support.quay_front`) answers Quay's repository API
from a real Distribution registry's content and proxies ``/v2/`` to it, so
tags come from the real registry; its ``/v2/_catalog`` is empty, as quay.io's
is for anonymous users. Hostile pages come from the front's ``extra`` entries
or from a scripted ``httpx.MockTransport``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from mirrorbot.config import guess_strategy, parse_config
from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from mirrorbot.engine.registry.bounded import DEFAULT_BODY_LIMIT as MAX_PAGE_BYTES
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.registry.retry import RetryPolicy
from mirrorbot.engine.sources import Listing, make_source
from mirrorbot.errors import ConfigError, EmptyListingError, ListingError
from tests.support.quay_front import QuayFront

FAST = RetryPolicy(attempts=3, timeout=30.0, wait_initial=0.01, wait_max=0.05)
EMPTY_LINE = "lists no repositories: check the name or set `list:`"


def _seed(registry: LocalRegistry, ns: str) -> None:
    f = ImageFactory(ns)
    with Seeder(registry.url) as seeder:
        seeder.push_all(
            {
                f"{ns}/etcd": {"v3.5.9": f.image("etcd"), "v3.4.0": f.image("etcd-old")},
                f"{ns}/flannel": {"v0.22.0": f.image("flannel")},
                f"{ns}/dnsmasq": {"v1": f.image("dnsmasq")},
                f"{ns}/tools/jq": {"1.6": f.image("jq")},
                f"{ns}/kube-proxy": {"v1.28.0": f.image("kube-proxy")},
                f"{ns}x/other": {"1": f.image("neighbour")},  # shares a string prefix only
            }
        )


def _shape(listing: Listing) -> dict[str, list[str]]:
    return {r.path: [t.name for t in r.tags] for r in listing.repositories}


EXPECTED = {
    "dnsmasq": ["v1"],
    "etcd": ["v3.4.0", "v3.5.9"],
    "flannel": ["v0.22.0"],
    "kube-proxy": ["v1.28.0"],
    "tools/jq": ["1.6"],
}


@pytest.fixture
def quay(source_registry: LocalRegistry, ns: str) -> Iterator[QuayFront]:
    _seed(source_registry, ns)
    with QuayFront(source_registry, page_size=2) as front:
        yield front


async def test_quay_lists_a_namespace_page_by_page(quay: QuayFront, ns: str) -> None:
    async with RegistryClient(quay.host, retry=FAST) as client:
        quay.fail_next(503, {"Retry-After": "0"})  # the API's first answer: retried
        listing = await make_source("quay", registry=quay.host, path=ns, client=client).list()
    assert _shape(listing) == EXPECTED
    assert listing.skipped == ()
    pages = quay.api_requests
    # 5 repositories, 2 a page: the first page twice (503, then served), then 2 more.
    assert len(pages) == 4
    assert pages[0] == pages[1] == f"namespace={ns}&public=true"
    assert all(page.startswith(f"namespace={ns}&public=true&next_page=") for page in pages[2:])
    assert pages[2] != pages[3]


async def test_the_catalog_of_a_quay_sees_nothing_and_says_so(quay: QuayFront, ns: str) -> None:
    """What quay.io does to the old guess (catalog): a failure naming the namespace, not a pass."""
    async with RegistryClient(quay.host, retry=FAST) as client:
        with pytest.raises(EmptyListingError) as caught:
            await make_source("catalog", registry=quay.host, path=ns, client=client).list()
    assert str(caught.value) == f"{quay.host}/{ns}: {EMPTY_LINE}"


async def test_an_empty_or_mistyped_quay_namespace_is_a_failure(quay: QuayFront, ns: str) -> None:
    async with RegistryClient(quay.host, retry=FAST) as client:
        source = make_source("quay", registry=quay.host, path=f"{ns}-typo", client=client)
        with pytest.raises(EmptyListingError, match=r"check the name or set `list:`"):
            await source.list()


@pytest.mark.hostile("upstream listings")
async def test_hostile_quay_entries_are_skipped(source_registry: LocalRegistry, ns: str) -> None:
    _seed(source_registry, ns)
    extra = [
        {"namespace": "someone-else", "name": "steal", "kind": "image"},
        {"namespace": ns, "name": "chart", "kind": "application"},
        {"namespace": ns, "name": "../x", "kind": "image"},
        {"namespace": ns, "name": "UPPER"},
        {"namespace": ns, "name": 7},
        "not an object",
        {"namespace": ns, "name": "gone"},  # valid, no tags upstream: left out silently
    ]
    with QuayFront(source_registry, page_size=3, extra=extra, token_loop=True) as front:
        async with RegistryClient(front.host, retry=FAST) as client:
            listing = await make_source("quay", registry=front.host, path=ns, client=client).list()
        tag_requests = [t for m, t in front.requests if t.endswith("/tags/list")]
    assert _shape(listing) == EXPECTED
    skipped = "\n".join(listing.skipped)
    for needle in ("'steal'", "'someone-else'", "'chart'", "'application'", "'../x'", "'UPPER'"):
        assert needle in skipped, needle
    assert skipped.count("without a name") == 1  # two such entries, one message
    assert not any("steal" in t or "chart" in t or "UPPER" in t for t in tag_requests)


def _scripted(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


def _tags(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"tags": ["1"]})


async def _list_scripted(
    answer: Callable[[httpx.Request], httpx.Response], quay_api: str | None = None
) -> Listing:
    async with (
        _scripted(answer) as api,
        RegistryClient("quay.test", transport=httpx.MockTransport(_tags), retry=FAST) as client,
    ):
        return await make_source(
            "quay",
            registry="quay.test",
            path="org",
            client=client,
            hub_client=api,
            quay_api=quay_api,
        ).list()


@pytest.mark.hostile("upstream listings")
@pytest.mark.parametrize(
    ("body", "headers", "status", "fragment"),
    [
        (b'{"repositories": [], "next_page": 7}', {}, 200, "not a page token"),
        (b'{"repositories": [], "next_page": "' + b"t" * 5000 + b'"}', {}, 200, "page token"),
        (b'{"repos": []}', {}, 200, "not a Quay repository page"),
        (b"[1, 2]", {}, 200, "not a Quay repository page"),
        (b"<html>", {}, 200, "not JSON"),
        (b"", {"Location": "http://elsewhere.test/api"}, 302, "302"),
        (b'{"error": "Requires authentication"}', {}, 401, "401"),
    ],
)
async def test_quay_top_level_failures(
    body: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    asked: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        if request.url.host == "elsewhere.test":
            return httpx.Response(200, json={"repositories": [{"name": "stolen"}]})
        return httpx.Response(status, content=body, headers=headers)

    with pytest.raises(ListingError, match=fragment):
        await _list_scripted(answer)
    assert all(url.host == "quay.test" for url in asked)  # a redirect is never followed


@pytest.mark.hostile("upstream listings")
async def test_an_endless_page_is_cut_off() -> None:
    chunk = b" " * (1024 * 1024)
    served: list[int] = []

    async def endless() -> object:
        yield b'{"repositories": ['
        for _ in range(MAX_PAGE_BYTES // len(chunk) + 4):
            served.append(len(chunk))
            yield chunk

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())  # type: ignore[arg-type]

    with pytest.raises(ListingError, match="exceeds the 1048576 byte limit"):
        await _list_scripted(answer)
    assert sum(served) <= MAX_PAGE_BYTES + 2 * len(chunk)


async def test_quay_api_may_live_elsewhere() -> None:
    asked: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        return httpx.Response(200, json={"repositories": [{"namespace": "org", "name": "app"}]})

    listing = await _list_scripted(answer, quay_api="https://api.quay.test/base/")
    assert _shape(listing) == {"app": ["1"]}
    assert [str(url) for url in asked] == [
        "https://api.quay.test/base/api/v1/repository?namespace=org&public=true"
    ]


# -- configuration ---------------------------------------------------------------


def _config(namespaces: str) -> str:
    return f"mirror:\n  registry: 127.0.0.1:5000\n  namespace: m\nnamespaces:\n{namespaces}"


def test_quay_io_is_listed_with_the_quay_api_by_default() -> None:
    assert guess_strategy("quay.io") == "quay"
    assert guess_strategy("quay.example") == "catalog"  # only quay.io is known to be Quay
    config = parse_config(
        _config(
            "  - source: quay.io/coreos\n"
            "  - source: 127.0.0.1:8443/org\n    list: quay\n"
            "    quay_api: https://quay-api.example\n"
        )
    )
    plans = config.namespace_plans()
    assert [plan.strategy for plan in plans] == ["quay", "quay"]
    assert [plan.quay_api for plan in plans] == [None, "https://quay-api.example"]


@pytest.mark.parametrize(
    ("namespaces", "fragment"),
    [
        ("  - source: quay.io/a/b\n", "exactly one Quay organisation"),
        ("  - source: quay.io\n    list: quay\n", "exactly one Quay organisation"),
        ("  - source: gcr.io/p\n    quay_api: https://q.example\n", "only used with list: quay"),
    ],
)
def test_quay_configuration_mistakes(namespaces: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_config(_config(namespaces))
