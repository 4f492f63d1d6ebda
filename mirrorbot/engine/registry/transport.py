"""The HTTP/1.1 transport under every registry client: a lean keep-alive pool, httpx's API above.

A cold sync is a few thousand small requests and a few large bodies. Per
request, httpcore's pool spent most of the client's CPU on bookkeeping
(encode/httpcore #928, #1035), and aiohttp under httpx still spent about half
of it in its own request and answer objects, timers and stream readers. This
transport speaks HTTP/1.1 itself on asyncio protocols (:mod:`.wire`; the parse,
strict and bounded, in :mod:`.framing`) and keeps connections in a small pool:
per origin, at most ``max_connections`` open in all, waiters served strictly in
turn, an idle connection reused only while its socket is quiet. Everything
above it — auth flow, redirects (httpx follows them), event hooks, body caps,
retries — is httpx's and ours, unchanged.

What it keeps of httpx's transport contract:

* timeouts: ``connect`` per new connection; ``read`` per wait for the peer's
  bytes; ``write`` per wait for the peer to take the body; ``pool`` never
  times out (our own concurrency limits bound the wait);
* errors: every failure is an ``httpx.TransportError`` subclass; an exception
  raised by the request body's own iterator (an upstream download failing
  mid-upload) is raised as itself, not as the target's network error;
* bodies stream both ways: the answer in the pieces that arrive, the request
  from its async iterator with its ``Content-Length`` (or chunked);
* an answer closed before its end closes its connection instead of reusing it;
* nothing is resent by the transport: every retry is the retry policy's.

A small successful answer whose whole body is within the request's cap
(:data:`~mirrorbot.engine.registry.bounded.BODY_LIMIT`, by its declared,
unencoded ``Content-Length``) is read here and handed to httpx already read.
Blobs (no cap), encoded, undeclared and unsuccessful answers stream.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence

import httpx

from mirrorbot.engine.registry.bounded import BODY_LIMIT, DEFAULT_BODY_LIMIT
from mirrorbot.engine.registry.framing import request_head
from mirrorbot.engine.registry.wire import Connection

__all__ = ["Http11Transport"]

_PORTS = {"http": 80, "https": 443}
_Origin = tuple[str, str, int]


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


def _whole(request: httpx.Request, status: int, connection: Connection) -> bool:
    """A 2xx answer to read at once: no body (HEAD), or a declared, unencoded one within the cap."""
    length = connection.declared_length
    if not 200 <= status < 300 or length is None:
        return False
    if request.method == "HEAD":
        return True  # the length is the resource's; there is no body
    limit = request.extensions.get(BODY_LIMIT, DEFAULT_BODY_LIMIT)
    return limit is not None and length <= limit and connection.identity


class _Pool:
    """Keep-alive connections per origin, at most ``limit`` open at once across origins.

    When the pool is full, requests wait their turn strictly in order: freed room is
    handed to the longest waiter, and a newcomer queues behind any waiter, even one
    that was woken and has not run yet.
    """

    def __init__(
        self, limit: int, keepalive_expiry: float, tls: Callable[[], ssl.SSLContext]
    ) -> None:
        self._limit = limit
        self._expiry = keepalive_expiry
        self._tls = tls
        self._idle: dict[_Origin, list[Connection]] = {}
        self._open: set[Connection] = set()
        self._connecting = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._handoffs = 0  # waiters woken for freed room that have not run yet
        self.closed = False

    async def acquire(self, origin: _Origin, connect_timeout: float | None) -> Connection:
        behind = bool(self._waiters) or self._handoffs > 0
        while True:
            if self.closed:
                raise httpx.ConnectError("the transport was closed")
            if not behind:
                found = self._take_idle(origin)
                if found is not None:
                    self._pass_room_on()
                    return found
                if self._free_slot() or self._evict_idle():
                    self._connecting += 1  # the slot is ours while connecting
                    self._pass_room_on()
                    break
            waiter = asyncio.get_running_loop().create_future()
            if behind:
                self._waiters.append(waiter)
            else:  # woken, but no room after all: it keeps its place at the head
                self._waiters.appendleft(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._handoffs -= 1
                    self._wake_one()  # pass on the turn this waiter was given
                raise
            self._handoffs -= 1
            behind = False
        return await self._connect(origin, connect_timeout)

    def release(self, connection: Connection, origin: _Origin) -> None:
        """Back to the pool when its exchange ended cleanly; closed otherwise."""
        if connection.settle() and not self.closed:
            connection.idle_since = asyncio.get_running_loop().time()
            self._idle.setdefault(origin, []).append(connection)
        else:
            self.discard(connection)
            return
        self._wake_one()

    def discard(self, connection: Connection) -> None:
        self._drop(connection)
        self._wake_one()

    def _drop(self, connection: Connection) -> None:
        """Close a connection and free its slot (the caller decides who gets the slot)."""
        connection.close()
        self._open.discard(connection)

    async def aclose(self) -> None:
        self.closed = True
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()
        while self._waiters:  # each finds the pool closed
            self._wake_one()
        await asyncio.sleep(0)  # let the transports' close callbacks run

    def _free_slot(self) -> bool:
        return len(self._open) + self._connecting < self._limit

    def _pass_room_on(self) -> None:
        """Wake the next waiter if room is left after this acquisition (several were freed)."""
        if self._waiters and (self._free_slot() or any(self._idle.values())):
            self._wake_one()

    def _take_idle(self, origin: _Origin) -> Connection | None:
        idle = self._idle.get(origin)
        now = asyncio.get_running_loop().time()
        while idle:
            connection = idle.pop()
            if (
                connection.closed
                or not connection.reusable
                or now - connection.idle_since > self._expiry
                or not connection.quiet()
            ):
                self._drop(connection)
                continue
            return connection
        return None

    def _evict_idle(self) -> bool:
        """Close the longest-idle connection of any origin to make room for another."""
        oldest = min(
            (idle[0] for idle in self._idle.values() if idle),
            key=lambda connection: connection.idle_since,
            default=None,
        )
        if oldest is None:
            return False
        for idle in self._idle.values():
            if idle and idle[0] is oldest:
                idle.pop(0)
        self._drop(oldest)
        return True

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._handoffs += 1
                return

    async def _connect(self, origin: _Origin, within: float | None) -> Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        try:
            tls = self._tls() if scheme == "https" else None
            async with asyncio.timeout(within):
                _, connection = await loop.create_connection(
                    Connection, host, port, ssl=tls, server_hostname=host if tls else None
                )
        except BaseException as exc:
            self._connecting -= 1
            self._wake_one()  # the slot is free again
            if isinstance(exc, TimeoutError):
                raise httpx.ConnectTimeout(
                    f"no connection to {host}:{port} in {within} s"
                ) from None
            if isinstance(exc, OSError):  # ssl.SSLError included
                raise httpx.ConnectError(f"{host}:{port}: {exc}") from exc
            raise
        self._connecting -= 1
        self._open.add(connection)
        if self.closed:
            self.discard(connection)
            raise httpx.ConnectError("the transport was closed")
        return connection


class _AnswerBody(httpx.AsyncByteStream):
    """An answer's body as it arrives; its connection goes back at the end, or is closed."""

    def __init__(
        self, pool: _Pool, connection: Connection, origin: _Origin, timeout: float | None
    ) -> None:
        self._pool = pool
        self._connection: Connection | None = connection
        self._origin = origin
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            return
        try:
            while (piece := await connection.piece(self._timeout)) is not None:
                yield piece
        finally:
            self._release()  # at the end, or closed if the body was left unread

    async def aclose(self) -> None:
        self._release()

    def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool.release(connection, self._origin)


async def _send_body(
    connection: Connection,
    stream: AsyncIterable[bytes],
    *,
    chunked: bool,
    length: int | None,
    within: float | None,
) -> None:
    sent = 0
    async for chunk in stream:  # an error of the iterator itself propagates as itself
        if not chunk:
            continue
        sent += len(chunk)
        if chunked:
            connection.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            if length is not None and sent > length:
                raise httpx.LocalProtocolError("the request body is longer than its Content-Length")
            connection.write(chunk)
        await connection.drain(within)
    if chunked:
        connection.write(b"0\r\n\r\n")
    elif length is not None and sent != length:
        raise httpx.LocalProtocolError("the request body is shorter than its Content-Length")


class Http11Transport(httpx.AsyncBaseTransport):
    """One connection pool per registry client; connections open on first use."""

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
        self._pool = _Pool(max_connections, keepalive_expiry, self._tls)

    def _tls(self) -> ssl.SSLContext:
        if not isinstance(self._verify, ssl.SSLContext):
            self._verify = self._verify()
        return self._verify

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in _PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        origin = (scheme, url.raw_host.decode("ascii"), url.port or _PORTS[scheme])
        timeout = request.extensions.get("timeout", {})
        raw = request.headers.raw
        method = request.method.encode("ascii")
        head = request_head(method, url.raw_path, raw)
        named = {name.lower(): value for name, value in raw}
        chunked = b"transfer-encoding" in named
        length = named.get(b"content-length")
        # httpx frames every body it sends; a request with neither header has none (a
        # redirected GET still carries an empty, unread stream: never send it).
        body: bytes | None = None
        if chunked or (length is not None and length != b"0"):
            try:
                body = request.content
            except httpx.RequestNotRead:
                body = None
            else:
                if chunked:  # a read body that httpx still frames as chunked: one chunk
                    body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
        else:
            body = b""
        connection = await self._pool.acquire(origin, timeout.get("connect"))
        try:
            try:
                if body is not None:
                    connection.send(method, head + body)
                    if body:  # a peer that stops taking it: a write timeout, not a read one
                        await connection.drain(timeout.get("write"))
                else:
                    connection.send(method, head)
                    await _send_body(
                        connection,
                        request.stream,  # type: ignore[arg-type]
                        chunked=chunked,
                        length=int(length) if length is not None and not chunked else None,
                        within=timeout.get("write"),
                    )
            except (httpx.WriteError, httpx.WriteTimeout):
                if not connection.answered:
                    raise
                # The peer answered before taking the whole body (a refusal): that answer.
            answer = await connection.head(timeout.get("read"))
            extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
            if answer.reason:
                extensions["reason_phrase"] = answer.reason
            if _whole(request, answer.status, connection):
                pieces = []
                while (piece := await connection.piece(timeout.get("read"))) is not None:
                    pieces.append(piece)
                self._pool.release(connection, origin)
                content = pieces[0] if len(pieces) == 1 else b"".join(pieces)
                return _already_read(answer.status, answer.headers, content, extensions)
        except BaseException:
            self._pool.discard(connection)
            raise
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_AnswerBody(self._pool, connection, origin, timeout.get("read")),
            extensions=extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
