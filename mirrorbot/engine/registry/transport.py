"""The HTTP/1.1 transport under every registry client: aiohttp's pool and C parser, httpx's API.

httpcore's pool spends most of a cold sync's client CPU on bookkeeping (a
``poll()`` per idle connection on every assignment, quadratic assignment:
encode/httpcore #928, #1035). aiohttp's connector hands out a keep-alive
connection in O(1) and parses answers in C. Everything above the transport —
auth flow, redirects (httpx follows them, never aiohttp), event hooks, body
caps, retries — is httpx's and ours, unchanged. What this module keeps of
httpx's transport contract:

* timeouts: ``connect`` and ``read`` (per read, from the end of the request
  body) map to aiohttp's; ``write`` is enforced here per body chunk, which
  aiohttp has no setting for; ``pool`` never times out (our own concurrency
  limits bound the wait);
* errors: every failure is an ``httpx.TransportError`` subclass; an exception
  raised by the request body's own iterator (an upstream download failing
  mid-upload) is re-raised as itself, not as the target's network error;
* bodies stream both ways: the answer in whatever chunks arrive, the request
  from its async iterator with its ``Content-Length``;
* an answer closed before its end closes its connection instead of reusing it;
* nothing is resent by the transport: every retry is the retry policy's.

A small successful answer whose whole body is within the request's cap
(:data:`~mirrorbot.engine.registry.bounded.BODY_LIMIT`, by its declared,
unencoded ``Content-Length``) is read here in one call and handed to httpx
already read: the same bytes, without four layers of async iteration per
answer. Blobs (no cap), encoded, undeclared and unsuccessful answers stream.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

import httpx

from mirrorbot.engine.registry.bounded import BODY_LIMIT, DEFAULT_BODY_LIMIT

if TYPE_CHECKING:
    import aiohttp
    import yarl

__all__ = ["AiohttpTransport"]

# Answer header lines: aiohttp's 8 KiB default refuses Link headers of long listings.
MAX_HEADER_LINE = 64 * 1024
MAX_HEADERS = 256
# The headers aiohttp would add to a request without them (User-Agent: "Python/...").
_AIOHTTP_DEFAULTS = (
    ("User-Agent", b"user-agent"),
    ("Accept", b"accept"),
    ("Accept-Encoding", b"accept-encoding"),
)


def _translated(exc: Exception) -> httpx.TransportError | None:
    """aiohttp's exception as the httpx one callers (and the retry policy) know; None if not one."""
    import aiohttp

    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        kind = httpx.ConnectTimeout if isinstance(exc, TimeoutError) else httpx.ConnectError
        return kind(str(exc) or type(exc).__name__)
    if isinstance(exc, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(str(exc) or type(exc).__name__)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(str(exc))
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError,
    ):
        # A peer that hangs up or sends what HTTP/1.1 cannot parse: h11 says the same.
        return httpx.RemoteProtocolError(str(exc) or type(exc).__name__)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return httpx.ReadError(str(exc) or type(exc).__name__)
    return None


class _Mapped:
    """Raises aiohttp's exceptions as httpx's (:func:`_translated`) from a ``with`` block.

    A class, not a ``@contextmanager``: that builds a generator and its wrapper on
    every use, twice per request.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, Exception):
            translated = _translated(exc)
            if translated is not None:
                raise translated from exc


_MAPPED = _Mapped()


class _AnswerBody(httpx.AsyncByteStream):
    """An answer's body as it arrives; closing it early drops the connection."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _MAPPED:
            # iter_any: whatever is buffered, often far more than a fixed chunk size.
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        if self._response.content.is_eof():
            self._response.release()
        else:
            self._response.close()


class _RequestBody:
    """A request's streamed body: each chunk must be taken within ``write_timeout``.

    aiohttp awaits the socket's drain between chunks, so a peer that stops
    reading stops the iteration; a timer then cancels the waiting request.
    """

    def __init__(
        self,
        stream: AsyncIterable[bytes],
        write_timeout: float | None,
        waiter: asyncio.Task[object],
    ) -> None:
        self._stream = stream
        self._write_timeout = write_timeout
        self._waiter = waiter
        self.error: BaseException | None = None
        self.stalled = False

    def _stall(self) -> None:
        self.stalled = True
        self._waiter.cancel()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            async for chunk in self._stream:
                timer = (
                    loop.call_later(self._write_timeout, self._stall)
                    if self._write_timeout is not None
                    else None
                )
                try:
                    yield chunk
                finally:
                    if timer is not None:
                        timer.cancel()
        except Exception as exc:
            self.error = exc
            raise


def _whole(request: httpx.Request, response: aiohttp.ClientResponse) -> bool:
    """A 2xx answer to read at once: no body (HEAD), or a declared, unencoded one within the cap."""
    length = response.content_length
    if not 200 <= response.status < 300 or length is None:
        return False
    if request.method == "HEAD":
        return True  # the length is the resource's; there is no body
    limit = request.extensions.get(BODY_LIMIT, DEFAULT_BODY_LIMIT)
    return (
        limit is not None
        and length <= limit
        and response.headers.get("Content-Encoding", "identity").strip().lower() == "identity"
    )


def _already_read(
    status: int,
    headers: Sequence[tuple[bytes, bytes]],
    body: bytes,
    extensions: dict[str, object],
) -> httpx.Response:
    """An answer whose body is read, as httpx's own ``read()`` leaves one.

    ``httpx.Response(content=…)`` reads it once more through its decoders and
    chunkers (≈ 6 % of a small request's instructions); this sets what ``read()``
    sets. tests/unit/test_transport.py compares the two, member by member.
    """
    answer = httpx.Response(
        status_code=status,
        headers=headers,
        stream=httpx.ByteStream(body),
        extensions=extensions,
    )
    answer._content = body
    answer.is_stream_consumed = True
    answer.is_closed = True
    return answer


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (one connection pool) per registry client, opened on first use."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | Callable[[], ssl.SSLContext],
        max_connections: int,
        keepalive_expiry: float = 5.0,
    ) -> None:
        # A factory is called at the first https request: loading a CA bundle costs ~25 ms
        # that a run against plain-HTTP registries (and no TLS redirect) never needs.
        self._verify = verify
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, float | None], aiohttp.ClientTimeout] = {}
        self._url: type[yarl.URL]  # set by _open: no import statement per request

    def _open(self) -> aiohttp.ClientSession:
        # Imported on the first request, not with the client: ~0.1 s of CPU that a
        # command which never reaches a registry (--version, a plan from state) skips.
        import aiohttp
        import yarl

        self._url = yarl.URL
        # TLS settings go with each https request (_tls): none are built for plain HTTP.
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=self._keepalive_expiry,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # aiohttp keeps no cookies; its default headers are skipped per request (below).
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            max_line_size=MAX_HEADER_LINE,
            max_field_size=MAX_HEADER_LINE,
            max_headers=MAX_HEADERS,
        )
        # aiohttp resends an idempotent request (PUT included) once by itself when a reused
        # connection drops: a manifest PUT whose answer was lost would land twice, and our
        # retry policy, which checks with HEAD first, would never hear of it. No setting
        # turns it off; aiohttp's own test client clears the same attribute.
        if not hasattr(self._session, "_retry_connection"):
            raise RuntimeError("aiohttp changed: its silent resend cannot be turned off")
        self._session._retry_connection = False
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeout = request.extensions.get("timeout", {})
        raw = request.headers.raw
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
        # Header names as sent, lower-cased once (httpx's Headers re-scans its list per lookup).
        named = {k.lower(): v for k, v in raw}
        # httpx sends its own headers and aiohttp must add none of its defaults. httpx's
        # client always sets all three, so the skip list is rarely needed: aiohttp
        # rebuilds it into a new multidict for every request that passes one.
        skip = [name for name, key in _AIOHTTP_DEFAULTS if key not in named] or None
        waiter = asyncio.current_task()
        assert waiter is not None  # an httpx transport always runs inside a task
        body: bytes | _RequestBody | None = None
        # httpx frames every body it sends; a request with neither header has none (a
        # redirected GET still carries an empty, unread stream: never send it chunked).
        framed = named.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in named
        try:
            body = (request.content or None) if framed else None
        except httpx.RequestNotRead:
            body = _RequestBody(request.stream, timeout.get("write"), waiter)  # type: ignore[arg-type]
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        try:
            with _MAPPED:
                response = await session.request(
                    request.method,
                    self._url(str(request.url), encoded=True),
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    compress=None,
                    skip_auto_headers=skip,
                    timeout=self._timeout(timeout.get("connect"), timeout.get("read")),
                    ssl=self._tls() if request.url.scheme == "https" else True,
                )
        except asyncio.CancelledError:
            if isinstance(body, _RequestBody) and body.stalled and waiter.uncancel() == 0:
                raise httpx.WriteTimeout("the peer stopped taking the request body") from None
            raise
        except httpx.TransportError:
            if isinstance(body, _RequestBody) and body.error is not None:
                raise body.error from None
            raise
        extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        if _whole(request, response):
            with _MAPPED:
                body = await response.read()
            return _already_read(response.status, response.raw_headers, body, extensions)
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_AnswerBody(response),
            extensions=extensions,
        )

    def _tls(self) -> ssl.SSLContext:
        if not isinstance(self._verify, ssl.SSLContext):
            self._verify = self._verify()
        return self._verify

    def _timeout(self, connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
        """One ``ClientTimeout`` per distinct pair: a client sends thousands with the same."""
        key = (connect, read)
        found = self._timeouts.get(key)
        if found is None:
            from aiohttp import ClientTimeout

            if len(self._timeouts) >= 16:  # per-request timeouts that all differ: stay bounded
                self._timeouts.clear()
            found = self._timeouts[key] = ClientTimeout(
                total=None, sock_connect=connect, sock_read=read
            )
        return found

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
