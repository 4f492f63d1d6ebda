"""Scripted registries for the edge cases a real registry will not produce on demand.

Every test drives :class:`RegistryClient` through ``httpx.MockTransport`` and
counts what reached the "registry". Retries are made instant with stamina's
testing mode (capped at each policy's own attempts, so counts stay meaningful);
the one test that checks real backoff values records them instead of sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import stamina

import mirrorbot.engine.registry.retry as retry_module
from mirrorbot.engine.registry.blobs import MountResult
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.registry.credentials import ANONYMOUS, Credential
from mirrorbot.engine.registry.media import (
    DOCKER_SCHEMA1_SIGNED,
    MAX_MANIFEST_SIZE,
    OCI_MANIFEST,
    Descriptor,
    sha256_digest,
)
from mirrorbot.engine.registry.retry import MAX_RETRY_AFTER, RetryPolicy
from mirrorbot.engine.registry.session import coalesce
from mirrorbot.errors import (
    BlobIntegrityError,
    DigestMismatchError,
    ManifestTooLargeError,
    RegistryError,
    RegistryUnreachableError,
    UnsupportedManifestError,
)

REGISTRY = "registry.example"
BASE = f"https://{REGISTRY}"
USER, PASSWORD = "mirror", "hunter2-not-in-messages"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
MiB = 1024 * 1024

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def instant_retries() -> Iterator[None]:
    """No real backoff; ``cap=True`` keeps each RetryPolicy's own number of attempts."""
    with stamina.set_testing(True, attempts=1000, cap=True):
        yield


class Script:
    """A MockTransport handler that records every request it answers."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        # A snapshot: the auth flow mutates and re-sends the same Request object.
        self.requests.append(
            httpx.Request(
                request.method, request.url, headers=request.headers.copy(), content=request.content
            )
        )
        return self.handler(request)

    def to(self, host: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == host]


def client_for(
    script: Script, *, credential: Credential = ANONYMOUS, attempts: int = 6
) -> RegistryClient:
    return RegistryClient(
        REGISTRY,
        credential=credential,
        transport=httpx.MockTransport(script),
        retry=RetryPolicy(attempts=attempts, timeout=None, wait_initial=0, wait_max=0),
    )


def errors_body(code: str, message: str = "") -> dict[str, object]:
    return {"errors": [{"code": code, "message": message or code.lower(), "detail": None}]}


def oci_manifest(tag: str = "v1") -> bytes:
    config = b'{"architecture":"amd64","os":"linux"}'
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256_digest(config),
            "size": len(config),
        },
        "layers": [],
        "annotations": {"tag": tag},
    }
    return json.dumps(document, indent=2).encode()


def manifest_response(body: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"Content-Type": OCI_MANIFEST, **headers})


async def chunks_of(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def streamed(data: bytes, *, declared: int | None = None) -> httpx.Response:
    """A blob answer that streams like a real transport's (``Response(content=bytes)`` is pre-read)."""
    length = len(data) if declared is None else declared
    return httpx.Response(200, content=chunks_of(data, 64), headers={"Content-Length": str(length)})


# -- cross-repository mount ----------------------------------------------------------


DIGEST = sha256_digest(b"layer")


async def test_mount_201_is_mounted() -> None:
    script = Script(lambda request: httpx.Response(201))
    async with client_for(script) as client:
        result = await client.blob_mount("target/app", DIGEST, "source/app")
    assert result == MountResult(mounted=True)
    [request] = script.requests
    assert request.method == "POST"
    assert request.url.path == "/v2/target/app/blobs/uploads/"
    assert request.url.params["mount"] == DIGEST
    assert request.url.params["from"] == "source/app"


async def test_mount_202_returns_the_resolved_upload_session() -> None:
    script = Script(
        lambda request: httpx.Response(
            202, headers={"Location": "/v2/target/app/blobs/uploads/uuid-1?_state=abc"}
        )
    )
    async with client_for(script) as client:
        result = await client.blob_mount("target/app", DIGEST, "source/app")
    assert result == MountResult(
        mounted=False, upload_url=f"{BASE}/v2/target/app/blobs/uploads/uuid-1?_state=abc"
    )
    assert len(script.requests) == 1


@pytest.mark.hostile("registry answers (manifests, bodies, headers)")
@pytest.mark.parametrize(
    ("status", "code"), [(401, "UNAUTHORIZED"), (403, "DENIED"), (404, "NAME_UNKNOWN")]
)
async def test_mount_refused_source_means_upload_normally(status: int, code: str) -> None:
    script = Script(lambda request: httpx.Response(status, json=errors_body(code)))
    async with client_for(script) as client:
        result = await client.blob_mount("target/app", DIGEST, "forbidden/app")
    assert result == MountResult(mounted=False, upload_url=None)
    assert len(script.requests) == 1  # not retried, not an error


async def test_mount_server_error_is_an_error_after_retries() -> None:
    script = Script(lambda request: httpx.Response(500, json=errors_body("UNKNOWN")))
    async with client_for(script, attempts=3) as client:
        with pytest.raises(RegistryError) as caught:
            await client.blob_mount("target/app", DIGEST, "source/app")
    assert caught.value.status == 500
    assert len(script.requests) == 3


# -- upload sessions: Location resolution and the final PUT ----------------------------


BLOB = b"0123456789" * 50
BLOB_DIGEST = sha256_digest(BLOB)


def upload_script(location: str) -> Script:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": location})
        if request.method == "PUT":
            assert request.content == BLOB
            return httpx.Response(201, headers={"Docker-Content-Digest": BLOB_DIGEST})
        return httpx.Response(405)

    return Script(handle)


def assert_single_length_put(put: httpx.Request) -> None:
    assert put.method == "PUT"
    assert put.headers["Content-Length"] == str(len(BLOB))
    assert "Transfer-Encoding" not in put.headers
    assert put.url.params["digest"] == BLOB_DIGEST


async def test_upload_to_relative_location_keeps_state_and_merges_digest() -> None:
    script = upload_script("/v2/x/blobs/uploads/uuid?_state=abc")
    async with client_for(script) as client:
        url = await client.blob_upload_start("x")
        assert url == f"{BASE}/v2/x/blobs/uploads/uuid?_state=abc"
        await client.blob_upload("x", url, BLOB_DIGEST, len(BLOB), chunks_of(BLOB))
    post, put = script.requests
    assert (post.method, post.url.path) == ("POST", "/v2/x/blobs/uploads/")
    assert_single_length_put(put)
    assert put.url.host == REGISTRY
    assert put.url.path == "/v2/x/blobs/uploads/uuid"
    assert put.url.params.multi_items() == [("_state", "abc"), ("digest", BLOB_DIGEST)]
    assert client.counter.bytes_uploaded == len(BLOB)


async def test_upload_to_absolute_location_on_another_host_and_port() -> None:
    location = "https://uploads.example:8443/session/uuid-9?_state=s%2Bt%3D%3D&region=eu-west"
    script = upload_script(location)
    async with client_for(script) as client:
        url = await client.blob_upload_start("x")
        await client.blob_upload("x", url, BLOB_DIGEST, len(BLOB), chunks_of(BLOB))
    _, put = script.requests
    assert_single_length_put(put)
    assert (put.url.scheme, put.url.host, put.url.port) == ("https", "uploads.example", 8443)
    assert put.url.path == "/session/uuid-9"
    assert put.url.params.multi_items() == [
        ("_state", "s+t=="),
        ("region", "eu-west"),
        ("digest", BLOB_DIGEST),
    ]


async def test_upload_never_sends_credentials_to_another_upload_host() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == REGISTRY and "Authorization" not in request.headers:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="registry"'})
        if request.method == "POST":
            return httpx.Response(
                202, headers={"Location": "https://uploads.example/u/1?_state=zz"}
            )
        return httpx.Response(201, headers={"Docker-Content-Digest": BLOB_DIGEST})

    script = Script(handle)
    credential = Credential(USER, PASSWORD)
    async with client_for(script, credential=credential) as client:
        url = await client.blob_upload_start("x")
        await client.blob_upload("x", url, BLOB_DIGEST, len(BLOB), chunks_of(BLOB))
    registry_requests = script.to(REGISTRY)
    assert [r.headers.get("Authorization") for r in registry_requests] == [None, BASIC]
    [put] = script.to("uploads.example")
    assert "Authorization" not in put.headers
    assert_single_length_put(put)


@pytest.mark.hostile("registry answers (manifests, bodies, headers)")
async def test_upload_acknowledging_another_digest_is_a_mismatch() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, headers={"Docker-Content-Digest": sha256_digest(b"other")})

    script = Script(handle)
    async with client_for(script) as client:
        with pytest.raises(DigestMismatchError):
            await client.blob_upload(
                "x", f"{BASE}/v2/x/blobs/uploads/u", BLOB_DIGEST, len(BLOB), chunks_of(BLOB)
            )


# -- blob downloads redirected to a CDN -------------------------------------------------


async def test_blob_redirect_to_another_host_drops_authorization() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == REGISTRY:
            if request.headers.get("Authorization") != BASIC:
                return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="registry"'})
            return httpx.Response(
                307, headers={"Location": "https://cdn.example/blobs/abc?signature=xyz"}
            )
        return streamed(BLOB)

    script = Script(handle)
    descriptor = Descriptor("application/octet-stream", BLOB_DIGEST, len(BLOB))
    client = client_for(script, credential=Credential(USER, PASSWORD))
    async with client, client.blob_open("lib/app", descriptor) as chunks:
        received = b"".join([chunk async for chunk in chunks])
    assert received == BLOB
    to_registry = script.to(REGISTRY)
    assert [r.headers.get("Authorization") for r in to_registry] == [None, BASIC]
    [to_cdn] = script.to("cdn.example")
    assert "Authorization" not in to_cdn.headers
    assert to_cdn.url.params["signature"] == "xyz"


# -- retries -------------------------------------------------------------------------


def flaky(*failures: httpx.Response, then: httpx.Response) -> Script:
    """Answer with each failure in turn, then with ``then`` forever."""
    pending = list(failures)

    def handle(request: httpx.Request) -> httpx.Response:
        return pending.pop(0) if pending else then

    return Script(handle)


@pytest.fixture
def hook_results(monkeypatch: pytest.MonkeyPatch) -> list[bool | float]:
    """What ``retry_hook`` decided for every failed attempt."""
    results: list[bool | float] = []
    real_hook = retry_module.retry_hook

    def recording(exc: Exception) -> bool | float:
        result = real_hook(exc)
        results.append(result)
        return result

    monkeypatch.setattr(retry_module, "retry_hook", recording)
    return results


def too_many(retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(429, headers=headers, json=errors_body("TOOMANYREQUESTS"))


async def test_429_with_retry_after_is_retried_with_that_backoff(
    hook_results: list[bool | float],
) -> None:
    body = oci_manifest()
    script = flaky(too_many("1"), too_many("1"), then=manifest_response(body))
    async with client_for(script) as client:
        manifest = await client.manifest_get("lib/app", "v1")
    assert manifest.raw == body
    assert len(script.requests) == 3
    assert hook_results == [1.0, 1.0]


async def test_429_without_retry_after_backs_off_exponentially(
    hook_results: list[bool | float],
) -> None:
    script = flaky(too_many(), then=httpx.Response(200, headers={"Content-Length": "12"}))
    async with client_for(script) as client:
        assert await client.blob_head("lib/app", DIGEST) == 12
    assert len(script.requests) == 2
    assert hook_results == [True]  # True: stamina's exponential backoff with jitter


async def test_retry_after_as_an_http_date(hook_results: list[bool | float]) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    script = flaky(too_many(when), then=httpx.Response(200, headers={"Content-Length": "1"}))
    async with client_for(script) as client:
        assert await client.blob_head("lib/app", DIGEST) == 1
    [backoff] = hook_results
    assert not isinstance(backoff, bool)
    assert 25.0 <= backoff <= 30.0


async def test_backoff_values_reach_the_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside testing mode, record what stamina would sleep instead of sleeping."""
    delays: list[float] = []

    async def no_sleep(delay: float, result: object = None) -> object:
        delays.append(delay)
        return result

    script = flaky(
        too_many("1"),
        too_many("3600"),
        too_many(),
        then=httpx.Response(200, headers={"Content-Length": "3"}),
    )
    policy = RetryPolicy(attempts=5, timeout=None, wait_initial=0.25, wait_max=30)
    client = RegistryClient(REGISTRY, transport=httpx.MockTransport(script), retry=policy)
    with stamina.set_testing(False), monkeypatch.context() as patch:
        patch.setattr(asyncio, "sleep", no_sleep)
        async with client:
            assert await client.blob_head("lib/app", DIGEST) == 3
    assert len(script.requests) == 4
    assert delays[:2] == [1.0, MAX_RETRY_AFTER]  # Retry-After honoured, capped
    assert 0.25 * 2**2 <= delays[2] <= 0.25 * 2**2 + 1.0  # third attempt: exponential + jitter
    assert len(delays) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retried(status: int) -> None:
    body = oci_manifest()
    script = flaky(httpx.Response(status), httpx.Response(status), then=manifest_response(body))
    async with client_for(script) as client:
        manifest = await client.manifest_get("lib/app", "v1")
    assert manifest.digest == sha256_digest(body)
    assert len(script.requests) == 3


async def test_retries_stop_at_the_policy_attempts() -> None:
    script = Script(lambda request: httpx.Response(503, json=errors_body("UNAVAILABLE")))
    async with client_for(script, attempts=4) as client:
        with pytest.raises(RegistryError) as caught:
            await client.manifest_head("lib/app", "v1")
    assert caught.value.status == 503
    assert len(script.requests) == 4


async def test_network_errors_are_retried_then_reported_unreachable() -> None:
    calls = 0

    def handle(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("connection refused", request=request)

    async with client_for(Script(handle), attempts=3) as client:
        with pytest.raises(RegistryUnreachableError) as caught:
            await client.ping()
    assert calls == 3
    assert caught.value.registry == REGISTRY


@pytest.mark.parametrize(
    ("status", "code"), [(404, "MANIFEST_UNKNOWN"), (400, "MANIFEST_INVALID"), (403, "DENIED")]
)
async def test_client_errors_are_not_retried(status: int, code: str) -> None:
    script = Script(lambda request: httpx.Response(status, json=errors_body(code)))
    async with client_for(script) as client:
        with pytest.raises(RegistryError) as caught:
            await client.manifest_get("lib/app", "v1")
    assert caught.value.status == status
    assert caught.value.codes == {code}
    assert len(script.requests) == 1


async def test_manifest_head_404_is_absent_and_not_retried() -> None:
    script = Script(lambda request: httpx.Response(404))
    async with client_for(script) as client:
        assert await client.manifest_head("lib/app", "v1") is None
    assert len(script.requests) == 1


# -- manifests: verification and limits -------------------------------------------------


async def test_manifest_body_not_matching_requested_digest() -> None:
    wanted, served = oci_manifest("wanted"), oci_manifest("served")
    script = Script(lambda request: manifest_response(served))
    async with client_for(script) as client:
        with pytest.raises(DigestMismatchError) as caught:
            await client.manifest_get("lib/app", sha256_digest(wanted))
    assert caught.value.expected == sha256_digest(wanted)
    assert caught.value.actual == sha256_digest(served)
    assert len(script.requests) == 1  # bad content is not a transient failure


async def test_manifest_by_digest_that_matches_is_returned() -> None:
    body = oci_manifest()
    digest = sha256_digest(body)
    script = Script(lambda request: manifest_response(body, **{"Docker-Content-Digest": digest}))
    async with client_for(script) as client:
        manifest = await client.manifest_get("lib/app", digest)
    assert (manifest.raw, manifest.digest, manifest.media_type) == (body, digest, OCI_MANIFEST)
    [request] = script.requests
    assert request.url.path == f"/v2/lib/app/manifests/{digest}"
    assert OCI_MANIFEST in request.headers["Accept"]


@pytest.mark.hostile("registry answers (manifests, bodies, headers)")
async def test_manifest_with_lying_docker_content_digest() -> None:
    body = oci_manifest()
    lie = sha256_digest(b"something else")
    script = Script(lambda request: manifest_response(body, **{"Docker-Content-Digest": lie}))
    async with client_for(script) as client:
        with pytest.raises(DigestMismatchError) as caught:
            await client.manifest_get("lib/app", "v1")
    assert caught.value.expected == lie
    assert caught.value.actual == sha256_digest(body)


@pytest.mark.hostile("registry answers (manifests, bodies, headers)")
async def test_manifest_declared_too_large() -> None:
    declared = MAX_MANIFEST_SIZE + 1
    script = Script(
        lambda request: manifest_response(oci_manifest(), **{"Content-Length": str(declared)})
    )
    async with client_for(script) as client:
        with pytest.raises(ManifestTooLargeError) as caught:
            await client.manifest_get("lib/app", "v1")
    assert caught.value.size == declared
    assert len(script.requests) == 1


@pytest.mark.hostile("registry answers (manifests, bodies, headers)")
async def test_manifest_undeclared_too_large_stops_reading() -> None:
    produced = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        chunk = b" " * (64 * 1024)
        while produced < 64 * MiB:
            produced += len(chunk)
            yield chunk

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless(), headers={"Content-Type": OCI_MANIFEST})

    async with client_for(Script(handle)) as client:
        with pytest.raises(ManifestTooLargeError) as caught:
            await client.manifest_get("lib/app", "v1")
    assert caught.value.size > MAX_MANIFEST_SIZE
    assert produced <= MAX_MANIFEST_SIZE + MiB  # stopped soon after the limit


async def test_manifest_exactly_at_the_limit_is_accepted() -> None:
    base = oci_manifest()
    body = base[:-1] + b" " * (MAX_MANIFEST_SIZE - len(base)) + base[-1:]
    assert len(body) == MAX_MANIFEST_SIZE
    script = Script(lambda request: manifest_response(body))
    async with client_for(script) as client:
        manifest = await client.manifest_get("lib/app", "v1")
    assert manifest.size == MAX_MANIFEST_SIZE


@pytest.mark.hostile("registry answers (manifests, bodies, headers)")
async def test_schema1_manifest_is_unsupported() -> None:
    body = json.dumps(
        {"schemaVersion": 1, "name": "lib/app", "tag": "v1", "fsLayers": [], "history": []}
    ).encode()
    script = Script(
        lambda request: httpx.Response(
            200, content=body, headers={"Content-Type": DOCKER_SCHEMA1_SIGNED}
        )
    )
    async with client_for(script) as client:
        with pytest.raises(UnsupportedManifestError) as caught:
            await client.manifest_get("lib/app", "v1")
    assert caught.value.media_type == DOCKER_SCHEMA1_SIGNED
    assert len(script.requests) == 1


# -- blob downloads: verified streams --------------------------------------------------


async def read_blob(served: bytes, descriptor: Descriptor, *, declared: int | None = None) -> bytes:
    script = Script(lambda request: streamed(served, declared=declared))
    async with client_for(script) as client, client.blob_open("lib/app", descriptor) as chunks:
        return b"".join([chunk async for chunk in chunks])


async def test_blob_stream_verified() -> None:
    descriptor = Descriptor("application/octet-stream", BLOB_DIGEST, len(BLOB))
    assert await read_blob(BLOB, descriptor) == BLOB


@pytest.mark.hostile("registry answers (manifests, bodies, headers)")
async def test_blob_stream_with_wrong_bytes_raises_from_the_iterator() -> None:
    tampered = BLOB[:-1] + b"X"
    descriptor = Descriptor("application/octet-stream", BLOB_DIGEST, len(BLOB))
    script = Script(lambda request: streamed(tampered))
    consumed: list[bytes] = []

    async def consume(chunks: AsyncIterator[bytes]) -> None:
        async for chunk in chunks:
            consumed.append(chunk)

    async with client_for(script) as client, client.blob_open("lib/app", descriptor) as chunks:
        with pytest.raises(DigestMismatchError) as caught:
            await consume(chunks)
    assert b"".join(consumed) == tampered  # the error comes at the end, from the iterator itself
    assert caught.value.expected == BLOB_DIGEST
    assert caught.value.actual == sha256_digest(tampered)


@pytest.mark.parametrize("declared", [len(BLOB) - 10, len(BLOB)], ids=["short", "cut-off"])
@pytest.mark.hostile("registry answers (manifests, bodies, headers)")
async def test_truncated_blob_stream(declared: int) -> None:
    descriptor = Descriptor("application/octet-stream", BLOB_DIGEST, len(BLOB))
    with pytest.raises(BlobIntegrityError) as caught:
        await read_blob(BLOB[:-10], descriptor, declared=declared)
    assert (caught.value.expected_size, caught.value.actual_size) == (len(BLOB), len(BLOB) - 10)


@pytest.mark.hostile("registry answers (manifests, bodies, headers)")
async def test_blob_stream_with_too_many_bytes() -> None:
    descriptor = Descriptor("application/octet-stream", BLOB_DIGEST, len(BLOB))
    with pytest.raises(BlobIntegrityError) as caught:
        await read_blob(BLOB + b"trailing", descriptor)
    assert caught.value.expected_size == len(BLOB)
    assert caught.value.actual_size > len(BLOB)


async def test_blob_stream_too_long_is_stopped_early() -> None:
    produced = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        while produced < 64 * MiB:
            produced += MiB
            yield b"\0" * MiB

    descriptor = Descriptor("application/octet-stream", sha256_digest(b"\0" * MiB), MiB)
    script = Script(lambda request: httpx.Response(200, content=endless()))
    async with client_for(script) as client, client.blob_open("lib/app", descriptor) as chunks:
        with pytest.raises(BlobIntegrityError):
            async for _ in chunks:
                pass
    assert produced < 64 * MiB


async def test_small_network_reads_are_joined_into_whole_chunks() -> None:
    pieces = [bytes([n]) * size for n, size in enumerate([1000, 70_000, 3, 900_000, 200_000, 5])]

    async def network() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    chunks = [chunk async for chunk in coalesce(network(), 1_000_000)]
    assert b"".join(chunks) == b"".join(pieces)
    assert [len(chunk) for chunk in chunks] == [1000 + 70_000 + 3 + 900_000 + 200_000, 5]


# -- listing: pagination -------------------------------------------------------------


def paged(
    key: str, items: list[str], link: Callable[[str, int], str], reject_n_above: int | None = None
) -> Script:
    """A listing served ``n`` at a time (default 2) with ``last`` and ``Link`` headers."""

    def handle(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if reject_n_above is not None and int(params.get("n", 0)) > reject_n_above:
            return httpx.Response(400, json=errors_body("PAGINATION_NUMBER_INVALID"))
        size = int(params.get("n", 2))
        start = items.index(params["last"]) + 1 if "last" in params else 0
        page = items[start : start + size]
        headers = {}
        if start + size < len(items):
            headers["Link"] = f'<{link(page[-1], size)}>; rel="next"'
        return httpx.Response(200, json={key: page}, headers=headers)

    return Script(handle)


CATALOG = ["a", "b", "c", "d", "e"]


async def test_catalog_follows_relative_links() -> None:
    script = paged("repositories", CATALOG, lambda last, n: f"/v2/_catalog?last={last}&n={n}")
    async with client_for(script) as client:
        assert await client.catalog(page_size=2) == CATALOG
    assert [str(r.url) for r in script.requests] == [
        f"{BASE}/v2/_catalog?n=2",
        f"{BASE}/v2/_catalog?last=b&n=2",
        f"{BASE}/v2/_catalog?last=d&n=2",
    ]


async def test_tags_follow_absolute_links() -> None:
    tags = [f"v{i}" for i in range(7)]
    script = paged("tags", tags, lambda last, n: f"{BASE}/v2/lib/app/tags/list?n={n}&last={last}")
    async with client_for(script) as client:
        assert await client.tags("lib/app") == tags
    assert len(script.requests) == 4
    assert all(r.url.path == "/v2/lib/app/tags/list" for r in script.requests)


async def test_page_size_refused_is_retried_without_n() -> None:
    script = paged(
        "repositories",
        CATALOG,
        lambda last, n: f"/v2/_catalog?last={last}",
        reject_n_above=100,
    )
    async with client_for(script) as client:
        assert await client.catalog(page_size=1000) == CATALOG
    first, *rest = script.requests
    assert first.url.params["n"] == "1000"
    assert all("n" not in r.url.params for r in rest)
    assert len(rest) == 3  # pages of the registry's default size 2


@pytest.mark.parametrize(
    "loop_target",
    [
        f"{BASE}/v2/_catalog?n=2",
        "/v2/_catalog?n=2",
        "/v2/_catalog?last=b&n=2",
        "/v2/_catalog?n=2&last=b",
    ],
    ids=["absolute-to-first", "relative-to-first", "to-self", "to-self-reordered"],
)
async def test_link_loop_terminates_without_duplicates(loop_target: str) -> None:
    served = 0

    def handle(request: httpx.Request) -> httpx.Response:
        nonlocal served
        served += 1
        assert served <= 10, "the client keeps following the Link loop"
        if "last" not in request.url.params:
            return httpx.Response(
                200,
                json={"repositories": ["a", "b"]},
                headers={"Link": '</v2/_catalog?last=b&n=2>; rel="next"'},
            )
        return httpx.Response(
            200,
            json={"repositories": ["c", "d"]},
            headers={"Link": f'<{loop_target}>; rel="next"'},
        )

    script = Script(handle)
    async with client_for(script) as client:
        assert await client.catalog(page_size=2) == ["a", "b", "c", "d"]
    assert len(script.requests) == 2


async def test_tags_of_unknown_repository_are_empty() -> None:
    script = Script(lambda request: httpx.Response(404, json=errors_body("NAME_UNKNOWN")))
    async with client_for(script) as client:
        assert await client.tags("no/such") == []
    assert len(script.requests) == 1


async def test_tags_denied_is_an_error() -> None:
    script = Script(lambda request: httpx.Response(403, json=errors_body("DENIED")))
    async with client_for(script) as client:
        with pytest.raises(RegistryError) as caught:
            await client.tags("secret/app")
    assert caught.value.status == 403


# -- errors as data ------------------------------------------------------------------


async def test_registry_error_carries_codes_and_hides_upload_state() -> None:
    state = "SeCrEtUpLoAdStAtE"

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            500,
            json={
                "errors": [
                    {"code": "BLOB_UPLOAD_INVALID", "message": "upload broke", "detail": None},
                    {"code": "UNKNOWN", "message": "storage failure"},
                ]
            },
        )

    script = Script(handle)
    upload_url = f"{BASE}/v2/lib/app/blobs/uploads/uuid-7?_state={state}"
    async with client_for(script) as client:
        with pytest.raises(RegistryError) as caught:
            await client.blob_upload("lib/app", upload_url, BLOB_DIGEST, len(BLOB), chunks_of(BLOB))
    error = caught.value
    assert error.status == 500
    assert error.codes == {"BLOB_UPLOAD_INVALID", "UNKNOWN"}
    assert error.reference == f"{REGISTRY}/lib/app@{BLOB_DIGEST}"
    assert error.method == "PUT"
    assert error.url == f"{BASE}/v2/lib/app/blobs/uploads/uuid-7"
    assert state not in str(error)
    assert "upload broke" in str(error)
    assert len(script.requests) == 1  # a streamed upload is never replayed here
