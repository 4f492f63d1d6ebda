"""The registries' httpx client: keeps no cookies, and joins paths to its base as httpx does."""

from __future__ import annotations

import random

import httpx
import pytest

from mirrorbot.engine.registry.http import RegistryHttpClient

BASES = [
    "http://127.0.0.1:5000",
    "https://registry.example",
    "https://[::1]:5443",
    "https://h/sub/",
]
PATHS = [
    "/v2/",
    "/v2/library/alpine/manifests/sha256:" + "a" * 64,
    "/v2/_catalog?n=100&last=team%2Fapp",
    "/v2/a b/ü",
    "/v2/x/blobs/uploads/?digest=sha256%3Aab&_state=a+b/==",
    "/v2/x#fragment",
    "//other.example/v2/",
    "https://other.example/v2/",
]


REQUEST_HEADERS = [
    None,
    {"Accept": "application/json"},
    {"accept": "application/vnd.oci.image.index.v1+json", "X-Extra": "1"},
    {"User-Agent": "other/1", "Content-Type": "application/octet-stream"},
]


@pytest.mark.parametrize("base", BASES)
async def test_requests_are_built_exactly_as_httpx_builds_them(base: str) -> None:
    client_headers = {"User-Agent": "mirrorbot/test", "Accept-Encoding": "identity"}
    async with (
        httpx.AsyncClient(base_url=base, headers=client_headers, timeout=7.0) as plain,
        RegistryHttpClient(base_url=base, headers=client_headers, timeout=7.0) as ours,
    ):
        for path in PATHS:
            for params in (None, {"n": "3"}):
                for headers in REQUEST_HEADERS:
                    for content, extensions in [
                        (None, None),
                        (b"body", {"x": 1}),
                        (None, {"timeout": {"connect": 1.0, "read": 2.0}}),
                    ]:
                        arguments = {
                            "params": params,
                            "headers": headers,
                            "content": content,
                            "extensions": extensions,
                        }
                        theirs = plain.build_request("PUT", path, **arguments)
                        mine = ours.build_request("PUT", path, **arguments)
                        assert str(mine.url) == str(theirs.url)
                        assert mine.url.raw_path == theirs.url.raw_path
                        assert mine.headers.raw == theirs.headers.raw
                        assert mine.extensions == theirs.extensions
                        assert mine.read() == theirs.read()


async def test_a_cookie_a_registry_sets_is_never_sent_back() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"Set-Cookie": "session=planted; Path=/"})

    async with RegistryHttpClient(
        base_url="http://127.0.0.1:5000", transport=httpx.MockTransport(answer)
    ) as client:
        await client.get("/v2/")
        await client.get("/v2/_catalog")
        assert len(client.cookies) == 0
    assert [request.headers.get("cookie") for request in seen] == [None, None]


async def test_cookies_cannot_be_given_or_set() -> None:
    with pytest.raises(TypeError):
        RegistryHttpClient(cookies={"a": "b"})
    async with RegistryHttpClient() as client:
        with pytest.raises(TypeError):
            client.cookies = {"a": "b"}
        with pytest.raises(TypeError):
            client.cookies.set("a", "b")


def _generated_targets(count: int) -> list[str]:
    """Paths and queries from registry characters and every one httpx rewrites or refuses."""
    alphabet = [*"az09-._~!$&'()*+,;=:@/?", "%2F", "%3a", "%zz", "%", " ", "#", "ü", "..", "./"]
    rng = random.Random(1604)  # noqa: S311 - a fixed, repeatable sample, not a secret
    return ["/" + "".join(rng.choices(alphabet, k=rng.randint(0, 24))) for _ in range(count)]


@pytest.mark.parametrize("base", BASES)
async def test_a_spliced_url_is_the_url_httpx_parses(base: str) -> None:
    """Generated paths, as paths and as same-origin URLs: whatever the client builds without
    parsing equals what httpx's parser makes of the same text."""
    async with httpx.AsyncClient(base_url=base) as plain, RegistryHttpClient(base_url=base) as ours:
        origin = str(plain.base_url).rstrip("/")
        for target in _generated_targets(2000):
            for text in (target, origin + target):
                try:
                    theirs = plain.build_request("PUT", text)
                except httpx.InvalidURL:
                    with pytest.raises(httpx.InvalidURL):
                        ours.build_request("PUT", text)
                    continue
                mine = ours.build_request("PUT", text)
                assert str(mine.url) == str(theirs.url), text
                assert mine.url == theirs.url, text
                assert (mine.url.raw_path, mine.url.query, mine.url.netloc) == (
                    theirs.url.raw_path,
                    theirs.url.query,
                    theirs.url.netloc,
                ), text


async def test_registry_paths_and_upload_locations_are_not_parsed() -> None:
    """The requests a copy sends are built without httpx's parser (15-60 µs each)."""
    state = "_state=" + "Zm9vYmFy-_" * 30 + "%3D%3D"
    async with RegistryHttpClient(base_url="http://127.0.0.1:5000") as client:
        for target in [
            "/v2/",
            "/v2/team/app/manifests/v1.2.3",
            "/v2/team/app/blobs/sha256:" + "a" * 64,
            "/v2/team/app/blobs/uploads/?mount=sha256:" + "b" * 64 + "&from=team/base",
            "/v2/team/app/blobs/uploads/6f1d2c3e-aaaa?" + state + "&digest=sha256%3A" + "c" * 64,
            "http://127.0.0.1:5000/v2/team/app/blobs/uploads/6f1d?" + state,
        ]:
            assert isinstance(client.url(target), httpx.URL), target
        for target in ["/v2/a b", "/v2/./x", "//other/v2/", "https://127.0.0.1:5000/v2/"]:
            assert isinstance(client.url(target), str), target


@pytest.mark.parametrize("base", BASES)
async def test_a_location_resolves_as_url_join_resolves_it(base: str) -> None:
    async with RegistryHttpClient(base_url=base) as client:
        origin = str(client.base_url).rstrip("/")
        requested = [
            client.base_url.join("/v2/x/blobs/uploads/"),
            httpx.URL("https://elsewhere.example/v2/x/blobs/uploads/"),
        ]
        locations = [
            *_generated_targets(500),
            origin + "/v2/x/blobs/uploads/u?_state=a",
            "https://elsewhere.example/v2/x/blobs/uploads/u?_state=a",
            "uploads/u?_state=a",
            "../u",
            "?_state=b",
        ]
        for request_url in requested:
            for location in locations:
                try:
                    expected = str(request_url.join(location))
                except httpx.InvalidURL:
                    with pytest.raises(httpx.InvalidURL):
                        client.resolve(request_url, location)
                    continue
                assert client.resolve(request_url, location) == expected, (request_url, location)
