"""The registries' httpx client: keeps no cookies, and joins paths to its base as httpx does."""

from __future__ import annotations

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


@pytest.mark.parametrize("base", BASES)
async def test_requests_are_built_exactly_as_httpx_builds_them(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as plain, RegistryHttpClient(base_url=base) as ours:
        for path in PATHS:
            for params in (None, {"n": "3"}):
                theirs = plain.build_request("GET", path, params=params)
                mine = ours.build_request("GET", path, params=params)
                assert str(mine.url) == str(theirs.url)
                assert mine.url.raw_path == theirs.url.raw_path
                assert mine.headers.raw == theirs.headers.raw


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
