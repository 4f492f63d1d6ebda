"""Registry errors as data: Retry-After, the temporary tables, building errors from responses."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from mirrorbot.engine.registry.responses import parse_retry_after, registry_error_from_response
from mirrorbot.errors import (
    BlobIntegrityError,
    Diagnostic,
    DigestMismatchError,
    ErrorCode,
    ManifestTooLargeError,
    MirrorbotError,
    RegistryError,
    RegistryUnreachableError,
    UnsupportedManifestError,
)

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
UPLOAD_URL = (
    "https://robot:hunter2@registry.example:5000/v2/o/r/blobs/uploads/0b1c"
    "?_state=SECRET-STATE-TOKEN&digest=sha256%3Aabc#frag"
)
CLEAN_URL = "https://registry.example:5000/v2/o/r/blobs/uploads/0b1c"


# --- parse_retry_after ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("1", 1.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("007", 7.0),
        # HTTP dates, relative to NOW.
        ("Tue, 14 Nov 2023 22:13:50 GMT", 30.0),
        ("Tue, 14 Nov 2023 22:15:20 GMT", 120.0),
        ("Tue, 14 Nov 2023 23:13:50 +0100", 30.0),
        ("Tue, 14 Nov 2023 22:13:20 GMT", 0.0),
        # In the past: do not wait, never a negative delay.
        ("Tue, 14 Nov 2023 22:13:19 GMT", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str, expected: float) -> None:
    assert parse_retry_after(value, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "soon",
        "-5",
        "1.5",
        "1e3",
        "0x10",
        "5 seconds",
        "\u00b2",  # superscript two: str.isdigit() says yes, float() says no
        "\u0661\u0662",  # Arabic-Indic digits
        "Tue, 99 Nov 2023 22:13:50 GMT",
        "Tue, 14 Foo 2023 22:13:50 GMT",
    ],
)
def test_parse_retry_after_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_parse_retry_after_uses_the_clock_by_default() -> None:
    future = time.time() + 3600
    header = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(future))
    delay = parse_retry_after(header)
    assert delay is not None
    assert 3500 < delay <= 3600


@pytest.fixture
def local_time_is_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "XST-05")  # POSIX: five hours east of UTC, no tz database needed
    time.tzset()
    try:
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("value", ["Tue, 14 Nov 2023 22:13:50 -0000", "Tue, 14 Nov 2023 22:13:50"])
@pytest.mark.usefixtures("local_time_is_not_utc")
def test_parse_retry_after_date_without_zone_is_gmt(value: str) -> None:
    assert time.localtime(NOW).tm_gmtoff == 5 * 3600  # the fixture took effect
    assert parse_retry_after(value, now=NOW) == pytest.approx(30.0)


# --- RegistryError ------------------------------------------------------------------------------


def registry_error(status: int, *codes: str, **kwargs: Any) -> RegistryError:
    return RegistryError(
        status=status,
        method=kwargs.pop("method", "GET"),
        url=kwargs.pop("url", "https://r.example/v2/o/r/manifests/v1"),
        reference=kwargs.pop("reference", "r.example/o/r:v1"),
        diagnostics=[Diagnostic(code, f"{code.lower()} message") for code in codes],
        **kwargs,
    )


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_temporary_statuses(status: int) -> None:
    assert registry_error(status).temporary


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 413, 416, 501])
def test_permanent_statuses(status: int) -> None:
    assert not registry_error(status).temporary


@pytest.mark.parametrize(
    "code",
    [
        ErrorCode.TOOMANYREQUESTS,
        ErrorCode.UNAVAILABLE,
        ErrorCode.UNKNOWN,
        ErrorCode.BLOB_UPLOAD_INVALID,
    ],
)
@pytest.mark.parametrize("status", [400, 403])
def test_temporary_codes_make_any_status_temporary(code: ErrorCode, status: int) -> None:
    error = registry_error(status, "NAME_UNKNOWN", code.value)
    assert error.temporary
    assert error.has(code)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (404, ErrorCode.MANIFEST_UNKNOWN),
        (404, ErrorCode.NAME_UNKNOWN),
        (404, ErrorCode.BLOB_UNKNOWN),
        (401, ErrorCode.UNAUTHORIZED),
        (403, ErrorCode.DENIED),
        (400, ErrorCode.MANIFEST_INVALID),
        (400, ErrorCode.DIGEST_INVALID),
        (400, ErrorCode.PAGINATION_NUMBER_INVALID),
    ],
)
def test_permanent_codes(status: int, code: ErrorCode) -> None:
    error = registry_error(status, code.value)
    assert not error.temporary
    assert error.has(code)
    assert not error.has(ErrorCode.TOOMANYREQUESTS)


def test_codes_and_not_found() -> None:
    error = registry_error(404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN", "X_VENDOR_CODE")
    assert error.codes == frozenset({"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "X_VENDOR_CODE"})
    assert error.not_found
    assert not registry_error(403).not_found


def test_error_code_values_are_the_spec_strings() -> None:
    assert ErrorCode("MANIFEST_UNKNOWN") is ErrorCode.MANIFEST_UNKNOWN
    assert ErrorCode.TOOMANYREQUESTS == "TOOMANYREQUESTS"


def test_message_names_reference_method_url_status_and_diagnostics() -> None:
    error = registry_error(404, "MANIFEST_UNKNOWN", method="HEAD")
    assert str(error) == (
        "r.example/o/r:v1: HEAD https://r.example/v2/o/r/manifests/v1 returned 404"
        " (MANIFEST_UNKNOWN: manifest_unknown message)"
    )


def test_message_without_reference_or_detail() -> None:
    error = registry_error(502, reference=None)
    assert str(error) == "GET https://r.example/v2/o/r/manifests/v1 returned 502"


def test_message_falls_back_to_body_excerpt() -> None:
    error = registry_error(502, body_excerpt="  upstream connect error " + "x" * 500)
    assert "(upstream connect error xxx" in str(error)
    assert len(str(error)) < 400  # the excerpt is cut


def test_diagnostic_str() -> None:
    assert str(Diagnostic("DENIED", "requested access is denied")) == (
        "DENIED: requested access is denied"
    )
    assert str(Diagnostic("DENIED")) == "DENIED"


def test_every_error_is_a_mirrorbot_error() -> None:
    errors: list[Exception] = [
        registry_error(500),
        RegistryUnreachableError("r.example", "r.example/o/r:v1", ConnectionRefusedError("no")),
        DigestMismatchError("ref", "sha256:a", "sha256:b"),
        BlobIntegrityError("ref", "sha256:a", 10, 9),
        UnsupportedManifestError("ref", "", "why"),
        ManifestTooLargeError("ref", 5_000_000, 4_194_304),
    ]
    for error in errors:
        assert isinstance(error, MirrorbotError)
        assert str(error)


def test_other_error_messages() -> None:
    unreachable = RegistryUnreachableError("r.example", None, ConnectionRefusedError("refused"))
    assert str(unreachable) == "registry r.example unreachable: ConnectionRefusedError: refused"
    assert "expected sha256:a, got sha256:b" in str(
        DigestMismatchError("ref", "sha256:a", "sha256:b")
    )
    assert "has 9 bytes, descriptor says 10" in str(BlobIntegrityError("ref", "sha256:a", 10, 9))
    assert "(no media type)" in str(UnsupportedManifestError("ref", "", "why"))
    assert "5000000 bytes exceeds the 4194304" in str(
        ManifestTooLargeError("ref", 5_000_000, 4_194_304)
    )


# --- registry_error_from_response -----------------------------------------------------------------

ERRORS_BODY = {
    "errors": [
        {
            "code": "BLOB_UPLOAD_INVALID",
            "message": "blob upload invalid",
            "detail": {"reason": "_state mismatch"},
        },
        {"code": "DENIED", "message": "requested access to the resource is denied"},
        {"code": "UNSUPPORTED"},
        {"code": "NAME_UNKNOWN", "message": 42, "detail": ["a", 1]},
        {"message": "no code: skipped"},
        "not an object",
        {"code": 7},
    ]
}


def request(method: str = "PATCH", url: str = UPLOAD_URL) -> httpx.Request:
    return httpx.Request(method, url)


async def test_parses_code_message_detail_triples() -> None:
    response = httpx.Response(
        400,
        json=ERRORS_BODY,
        headers={"Retry-After": "17"},
        request=request(),
    )
    error = await registry_error_from_response(response, "registry.example:5000/o/r")
    assert error.diagnostics == (
        Diagnostic("BLOB_UPLOAD_INVALID", "blob upload invalid", {"reason": "_state mismatch"}),
        Diagnostic("DENIED", "requested access to the resource is denied", None),
        Diagnostic("UNSUPPORTED", "", None),
        Diagnostic("NAME_UNKNOWN", "", ["a", 1]),
    )
    assert error.status == 400
    assert error.method == "PATCH"
    assert error.reference == "registry.example:5000/o/r"
    assert error.retry_after == 17.0
    assert error.temporary  # BLOB_UPLOAD_INVALID
    assert error.body_excerpt == ""  # JSON bodies are shown through their diagnostics
    assert "DENIED: requested access to the resource is denied" in str(error)


async def test_url_in_error_has_no_query_fragment_or_userinfo() -> None:
    response = httpx.Response(404, json=ERRORS_BODY, request=request())
    error = await registry_error_from_response(response, None)
    assert error.url == CLEAN_URL
    message = str(error)
    assert CLEAN_URL in message
    for leaked in ("SECRET-STATE-TOKEN", "_state=", "?", "hunter2", "robot", "#frag"):
        assert leaked not in message
        assert leaked not in error.url


@pytest.mark.parametrize(
    ("body", "excerpt"),
    [
        (b"upstream connect error or disconnect/reset before headers", "upstream connect error"),
        (b"<html><body>502 Bad Gateway</body></html>", "502 Bad Gateway"),
        (b"", ""),
        (b"\xff\xfeoops", "oops"),
    ],
)
async def test_non_json_bodies_become_an_excerpt(body: bytes, excerpt: str) -> None:
    response = httpx.Response(502, content=body, request=request("GET", CLEAN_URL))
    error = await registry_error_from_response(response, "r")
    assert error.diagnostics == ()
    assert excerpt in error.body_excerpt
    assert error.temporary
    if excerpt:
        assert excerpt in str(error)


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'{"errors": {}}', b'{"errors": null}', b'"errors"', b'{"detail": "x"}'],
)
async def test_odd_json_bodies_have_no_diagnostics(body: bytes) -> None:
    response = httpx.Response(500, content=body, request=request("GET", CLEAN_URL))
    error = await registry_error_from_response(response, None)
    assert error.diagnostics == ()
    assert error.status == 500


async def test_retry_after_http_date_is_read() -> None:
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 600))
    response = httpx.Response(
        429, headers={"Retry-After": future}, content=b"", request=request("GET", CLEAN_URL)
    )
    error = await registry_error_from_response(response, None)
    assert error.retry_after is not None
    assert 500 < error.retry_after <= 600
    assert error.temporary


async def test_missing_retry_after_is_none() -> None:
    response = httpx.Response(429, content=b"", request=request("GET", CLEAN_URL))
    assert (await registry_error_from_response(response, None)).retry_after is None


class HugeBody:
    """An endless-looking streamed body that counts how much of it was pulled."""

    def __init__(self, prefix: bytes, total: int, chunk: int = 1024) -> None:
        self.prefix = prefix
        self.total = total
        self.chunk = chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        data = self.prefix
        sent = 0
        while sent < self.total:
            piece = (data + b"x" * self.chunk)[: self.chunk]
            data = data[len(piece) :]
            self.pulled += len(piece)
            sent += len(piece)
            yield piece


async def test_reads_at_most_64_kib_of_a_huge_streamed_body() -> None:
    body = HugeBody(b"<html>" + b"overloaded " * 10, total=50 * 1024 * 1024)
    response = httpx.Response(503, content=body, request=request("GET", CLEAN_URL))
    error = await registry_error_from_response(response, None)
    assert body.pulled <= 64 * 1024 + body.chunk
    assert body.pulled >= 64 * 1024  # it did read the first 64 KiB
    assert len(error.body_excerpt) <= 64 * 1024
    assert error.body_excerpt.startswith("<html>overloaded")
    assert response.is_closed


async def test_huge_read_body_is_cut_to_64_kib() -> None:
    content = b"E" * (1024 * 1024)
    response = httpx.Response(500, content=content, request=request("GET", CLEAN_URL))
    error = await registry_error_from_response(response, None)
    assert len(error.body_excerpt) == 64 * 1024


async def test_streamed_json_body_is_parsed() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        raw = json.dumps(ERRORS_BODY).encode()
        for start in range(0, len(raw), 10):
            yield raw[start : start + 10]

    response = httpx.Response(403, content=chunks(), request=request("GET", CLEAN_URL))
    error = await registry_error_from_response(response, None)
    assert "DENIED" in error.codes
    assert response.is_closed


async def test_gzip_encoded_streamed_json_body_is_decoded() -> None:
    compressed = gzip.compress(json.dumps(ERRORS_BODY).encode())

    async def chunks() -> AsyncIterator[bytes]:
        yield compressed

    response = httpx.Response(
        401,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        content=chunks(),
        request=request("GET", CLEAN_URL),
    )
    error = await registry_error_from_response(response, None)
    assert "DENIED" in error.codes
    assert error.body_excerpt == ""


async def test_gzip_bomb_is_cut_after_64_kib_of_decoded_bytes() -> None:
    compressed = gzip.compress(b"x" * (16 * 1024 * 1024))
    body = HugeBody(compressed, total=len(compressed))
    response = httpx.Response(
        500,
        headers={"Content-Encoding": "gzip"},
        content=body,
        request=request("GET", CLEAN_URL),
    )
    error = await registry_error_from_response(response, None)
    assert error.body_excerpt == "x" * (64 * 1024)
    assert body.pulled < len(compressed)  # stopped long before the end of the stream


async def test_consumed_stream_gives_an_error_without_body() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"errors": [{"code": "DENIED"}]}'

    response = httpx.Response(403, content=chunks(), request=request("GET", CLEAN_URL))
    async for _ in response.aiter_raw():
        pass
    error = await registry_error_from_response(response, "ref")
    assert error.status == 403
    assert error.diagnostics == ()
    assert str(error) == f"ref: GET {CLEAN_URL} returned 403"


def test_an_html_error_page_still_makes_a_one_line_message() -> None:
    error = RegistryError(
        status=502,
        method="GET",
        url="https://registry.example/v2/",
        reference="registry.example/a:b",
        body_excerpt="<html>\n<body>\n  Bad   gateway\n</body>\n</html>\n",
    )
    assert "\n" not in str(error)
    assert "<html> <body> Bad gateway </body> </html>" in str(error)
