"""The HTTP/1.1 transport against hostile and odd peers: framing, reuse, limits, time, memory.

Every peer is a raw loopback server (:mod:`tests.support.peer`) that writes
exactly the bytes under test; the client is :class:`Http11Transport`, mostly
under an ``httpx.AsyncClient`` as mirrorbot uses it. Counting the connections
the peer accepted tells a reused connection from a new one. Every test runs
under an ``asyncio.timeout`` so that a hang fails instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import struct
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from mirrorbot.engine.registry.bounded import BODY_LIMIT
from mirrorbot.engine.registry.framing import (
    MAX_CHUNK_LINE,
    MAX_HEAD,
    MAX_HEADERS,
    MAX_INTERIM,
    MAX_LINE,
    MAX_TRAILERS,
)
from mirrorbot.engine.registry.session import shared_tls_context
from mirrorbot.engine.registry.transport import Http11Transport
from mirrorbot.engine.registry.wire import HIGH_WATER, Connection
from tests.support.hostile import RefusingPort
from tests.support.peer import Handler, Peer, read_request, serve

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
READ_SIZE = 256 * 1024  # the most asyncio's socket transports read at once


def _transport(max_connections: int = 4) -> Http11Transport:
    return Http11Transport(verify=shared_tls_context(), max_connections=max_connections)


def _client(
    peer: Peer, transport: Http11Transport | None = None, **timeouts: float
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{peer.port}",
        transport=transport or _transport(),
        timeout=httpx.Timeout(5.0, **timeouts),
    )


def _each(first: bytes, later: bytes = OK, *, close: bool = False) -> Handler:
    """Every request on the first connection answered with ``first``, on later ones with ``later``."""
    seen = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        seen += 1
        answer = first if seen == 1 else later
        while True:
            _, length = await read_request(reader)
            await reader.readexactly(length)
            writer.write(answer)
            await writer.drain()
            if close:
                return

    return handler


def _first_connection(first: Handler) -> Handler:
    """``first`` on the first connection; on every later one, ``OK`` to each request."""
    seen = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        seen += 1
        await (first if seen == 1 else _each(OK))(reader, writer)

    return handler


async def _until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition`` holds (the caller bounds the wait).

    The conditions are the transport's own state (a pool's waiters, a paused read,
    a closed connection), which has no event to wait on; no time is slept.
    """
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0)


def _connections(transport: Http11Transport) -> set[Connection]:
    return transport._pool._open


@contextlib.asynccontextmanager
async def _streamed(handler: Handler) -> AsyncIterator[tuple[httpx.Response, Connection]]:
    """An uncapped GET of ``handler``'s answer, streamed, and the one connection it came on."""
    transport = _transport()
    async with (
        serve(handler) as peer,
        _client(peer, transport) as client,
        asyncio.timeout(30),
        client.stream("GET", "/", extensions={BODY_LIMIT: None}) as response,
    ):
        (connection,) = _connections(transport)
        yield response, connection


def _chunked(*chunks: bytes, trailer: bytes = b"") -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    return body + b"0\r\n" + trailer + b"\r\n"


# -- heads and framing the client must refuse ------------------------------------------

_PAD = b"X-Pad: " + b"a" * 1000 + b"\r\n"
_CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

REFUSED = {
    "too-many-fields": b"HTTP/1.1 200 OK\r\n"
    + b"".join(b"X-F%d: v\r\n" % n for n in range(MAX_HEADERS + 1))
    + b"Content-Length: 2\r\n\r\nok",
    "line-over-max-line": b"HTTP/1.1 200 OK\r\nX-Long: "
    + b"a" * MAX_LINE
    + b"\r\nContent-Length: 2\r\n\r\nok",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 2\r\n\r\nok",
    "bare-cr": b"HTTP/1.1 200 OK\r\nX-A: on\re\r\nContent-Length: 2\r\n\r\nok",
    "space-before-colon": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
    "http2-status": b"HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "icy-status": b"ICY 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "garbage-status": b"\x16\x03\x01\x02\x00garbage\r\n\r\n",
    "four-digit-status": b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
    "status-below-100": b"HTTP/1.1 099 Odd\r\n\r\n" + OK,
    "two-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "length-list": b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "length-not-numeric": b"HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\nhello",
    "length-signed": b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
    "length-20-digits": b"HTTP/1.1 200 OK\r\nContent-Length: " + b"1" * 20 + b"\r\n\r\nhello",
    "length-empty": b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nhello",
    "coding-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nok",
    "coding-gzip-chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    + _chunked(b"ok"),
    "coding-empty": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\nContent-Length: 2\r\n\r\nok",
    "chunk-size-malformed": _CHUNKED + b"zz\r\nok\r\n0\r\n\r\n",
    "chunk-size-too-wide": _CHUNKED + b"1" + b"0" * 16 + b"\r\nok\r\n0\r\n\r\n",
    "chunk-line-over-max": _CHUNKED + b"2;" + b"x" * MAX_CHUNK_LINE + b"\r\nok\r\n0\r\n\r\n",
    "chunk-line-unterminated": _CHUNKED + b"2;" + b"x" * (MAX_CHUNK_LINE + 8),
    "chunk-data-over-size": _CHUNKED + b"2\r\nokay\r\n0\r\n\r\n",
    "trailers-over-max": _CHUNKED
    + b"2\r\nok\r\n0\r\n"
    + _PAD * (MAX_TRAILERS // 1000 + 1)  # 1007 bytes a line, CRLF not counted
    + b"\r\n",
    "switching-protocols": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n" + OK,
    "too-many-interim": b"HTTP/1.1 103 Early Hints\r\n\r\n" * (MAX_INTERIM + 1) + OK,
}


@pytest.mark.parametrize("answer", list(REFUSED.values()), ids=list(REFUSED))
async def test_a_malformed_answer_is_refused_and_its_connection_dropped(answer: bytes) -> None:
    async with serve(_each(answer)) as peer, _client(peer) as client, asyncio.timeout(10):
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/bad")
        assert (await client.get("/good")).text == "ok"
    assert peer.accepted == 2  # the refused answer's connection was not reused


async def test_a_head_over_max_head_dripped_byte_by_byte_fails_in_linear_time() -> None:
    """300 KiB of head, one byte per write: a rescan per byte would take minutes, not seconds."""
    head = b"HTTP/1.1 200 OK\r\n" + _PAD * (300 * 1024 // len(_PAD))
    assert len(head) > MAX_HEAD
    dripped = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal dripped
        await read_request(reader)
        for at in range(len(head)):
            if writer.is_closing() or reader.at_eof():
                return
            writer.write(head[at : at + 1])
            dripped += 1
            await asyncio.sleep(0)  # one write per loop turn: the client sees it byte by byte

    # The bound under test is the loop's time, not the read timeout: ~4 s here for 256 Ki
    # loop turns on a busy 2-core machine; a rescan per byte took over 120 s.
    async with serve(handler) as peer, _client(peer, read=60.0) as client:
        async with asyncio.timeout(30):
            with pytest.raises(httpx.RemoteProtocolError, match="head longer"):
                await client.get("/")
    assert MAX_HEAD < dripped < len(head)  # refused as soon as the bound was passed


# -- framing the client must accept, and whether the connection is reused after it --------

_FIRST = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
_STALE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale"

ACCEPTED: dict[str, tuple[bytes, bytes, bool, bool]] = {
    # name: (answer, body, reused, peer closes after it)
    "keep-alive": (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"hello", True, False),
    "identical-length-list": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
        b"hello",
        True,
        False,
    ),
    "identical-length-fields": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello",
        b"hello",
        True,
        False,
    ),
    "chunk-extensions": (
        _CHUNKED + b'5;a=b;c="d"\r\nhello\r\n6 ; x\r\n world\r\n0;last\r\n\r\n',
        b"hello world",
        True,
        False,
    ),
    "trailers-dropped": (
        _CHUNKED + _chunked(b"hello", trailer=b"X-Trailer-A: 1\r\nX-Trailer-B: 2\r\n"),
        b"hello",
        True,
        False,
    ),
    "chunked-and-length": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        + _chunked(b"hello", b" world"),
        b"hello world",
        False,
        False,
    ),
    "interim-skipped": (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
        + OK,
        b"ok",
        True,
        False,
    ),
    "max-interim": (b"HTTP/1.1 103 Early Hints\r\n\r\n" * MAX_INTERIM + OK, b"ok", True, False),
    "connection-close": (
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok",
        b"ok",
        False,
        False,
    ),
    "http-1.0": (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok", False, False),
    "until-close-1.0": (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", b"until the end", False, True),
    "until-close-1.1": (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", b"until the end", False, True),
    "two-answers-to-one-request": (_FIRST + _STALE, b"first", False, False),
}


@pytest.mark.parametrize(
    ("answer", "body", "reused", "close"), list(ACCEPTED.values()), ids=list(ACCEPTED)
)
async def test_an_answer_is_read_exactly_and_its_connection_reused_only_when_safe(
    answer: bytes, body: bytes, reused: bool, close: bool
) -> None:
    async with (
        serve(_each(answer, answer, close=close)) as peer,
        _client(peer, read=2.0) as client,
        asyncio.timeout(10),
    ):
        for n in range(3):
            response = await client.get(f"/{n}")
            assert response.status_code == 200
            assert response.content == body
            assert not any(name.startswith("x-trailer") for name in response.headers)
    assert peer.accepted == (1 if reused else 3)


async def test_an_undeclared_answer_streams_until_close() -> None:
    """Read until close and streamed (no length to read it whole by): every byte, then the end."""
    piece = bytes(range(256)) * 64
    answer = b"HTTP/1.1 200 OK\r\n\r\n" + piece * 40
    async with (
        serve(_each(answer, answer, close=True)) as peer,
        _client(peer) as client,
        asyncio.timeout(10),
        client.stream("GET", "/") as response,
    ):
        assert b"".join([chunk async for chunk in response.aiter_raw()]) == piece * 40


@pytest.mark.parametrize(
    ("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304), ("HEAD", 404)]
)
async def test_a_bodiless_answer_with_a_length_is_complete_at_once(
    method: str, status: int
) -> None:
    answer = b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n" % status
    async with serve(_each(answer, answer)) as peer, _client(peer, read=2.0) as client:
        async with asyncio.timeout(10):  # a wait for a body would be a ReadTimeout (2 s)
            for _ in range(3):
                response = await client.request(method, "/")
                assert response.status_code == status
                assert response.content == b""
                assert response.headers["content-length"] == "10"
    assert peer.accepted == 1


async def test_a_body_after_an_answer_to_head_ends_the_connection() -> None:
    """An answer to HEAD has no body whatever its length says: bytes after it are not ours."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    async with serve(_each(answer, answer)) as peer, _client(peer) as client, asyncio.timeout(10):
        for _ in range(2):
            response = await client.head("/")
            assert (response.status_code, response.content) == (200, b"")
    assert peer.accepted == 2


@pytest.mark.parametrize("status", [200, 404])
async def test_a_body_shorter_than_its_length_then_close_is_a_protocol_error(status: int) -> None:
    """Read whole by the transport (200) or streamed to the caller (404): the pieces, then an error."""
    answer = b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\nabc" % status
    received = b""

    async def read(client: httpx.AsyncClient) -> None:
        nonlocal received
        async with client.stream("GET", "/") as response:
            async for chunk in response.aiter_raw():
                received += chunk

    async with serve(_each(answer, close=True)) as peer, _client(peer) as client:
        async with asyncio.timeout(10):
            with pytest.raises(httpx.RemoteProtocolError, match="before the end"):
                await read(client)
    assert received == (b"abc" if status == 404 else b"")


# -- bytes dripped one at a time --------------------------------------------------------


async def test_a_chunked_answer_dripped_byte_by_byte_yields_exactly_its_body() -> None:
    body = [b"hello", b", ", b"x" * 300, b"\r\n\r\n0\r\n", b"world"]
    answer = _CHUNKED.replace(b"OK\r\n", b"OK\r\nX-Y: z\r\n") + _chunked(
        *body, trailer=b"X-Trailer: t\r\n"
    )
    answer = answer.replace(b"5\r\nhello", b"5;ext=1\r\nhello")

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            for at in range(len(answer)):
                writer.write(answer[at : at + 1])
                await asyncio.sleep(0)  # one write per loop turn

    async with serve(handler) as peer, _client(peer) as client, asyncio.timeout(20):
        for _ in range(2):
            assert (await client.get("/")).content == b"".join(body)
    assert peer.accepted == 1  # the end of the body (and of its trailers) was found exactly


# -- keep-alive and the peer's side of it -------------------------------------------------


async def test_a_peer_closing_an_idle_connection_costs_the_next_request_nothing() -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)  # keep-alive, then the peer's idle timeout strikes
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        closed.set()

    transport = _transport()
    async with serve(handler) as peer, _client(peer, transport) as client, asyncio.timeout(10):
        assert (await client.get("/")).text == "ok"
        await closed.wait()
        await _until(lambda: all(c.closed for c in _connections(transport)))
        closed.clear()
        assert (await client.get("/")).text == "ok"
    assert peer.accepted == 2


async def test_a_peer_closing_right_after_a_keep_alive_answer_costs_the_next_request_nothing() -> (
    None
):
    """The peer's FIN is in our socket, not yet read by the loop, when the next request picks
    the connection: httpcore checks an idle connection's socket before reusing it, and so must we."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)  # no "Connection: close", and closed at once

    async with serve(handler) as peer, _client(peer) as client, asyncio.timeout(10):
        for _ in range(10):
            assert (await client.get("/")).text == "ok"
    assert peer.accepted == 10


async def test_an_answer_before_the_whole_body_leaves_the_connection_unusable() -> None:
    """A peer refuses an upload at once and stops reading: what is left of the body is unsent."""
    stop = asyncio.Event()

    async def first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 413 Too Large\r\nContent-Length: 4\r\n\r\nnope")
        await writer.drain()
        await stop.wait()  # never reads the body: our socket buffers fill up

    handler = _first_connection(first)

    async def body() -> AsyncIterator[bytes]:
        chunk = b"\0" * (1024 * 1024)
        for _ in range(256):
            yield chunk

    async with serve(handler) as peer, _client(peer, write=0.5, read=2.0) as client:
        try:
            async with asyncio.timeout(30):
                refused = await client.put(
                    "/upload", content=body(), headers={"Content-Length": str(256 * 1024 * 1024)}
                )
                assert (refused.status_code, refused.content) == (413, b"nope")
                assert (await client.get("/next")).text == "ok"
        finally:
            stop.set()
    assert peer.accepted == 2  # the half-sent request's connection was not reused


async def test_an_idle_connection_past_its_keep_alive_expiry_is_not_reused() -> None:
    transport = Http11Transport(
        verify=shared_tls_context(), max_connections=4, keepalive_expiry=1.0
    )
    async with serve(_each(OK, OK)) as peer, _client(peer, transport) as client:
        async with asyncio.timeout(10):
            assert (await client.get("/")).text == "ok"
            assert (await client.get("/")).text == "ok"  # at once: the same connection
            await asyncio.sleep(1.5)  # the time under test, not a synchronisation
            assert (await client.get("/")).text == "ok"
    assert peer.accepted == 2


async def test_a_peer_resetting_mid_body_is_a_read_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        sock = writer.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST, not FIN

    async with serve(handler) as peer, _client(peer) as client, asyncio.timeout(10):
        with pytest.raises(httpx.ReadError):
            await client.get("/")


async def test_a_connection_given_up_with_unsent_bytes_is_closed_at_once() -> None:
    """A peer that never reads: after the write timeout our socket is gone, not left
    flushing into a peer that will never take it (asyncio's close() waits for that)."""
    stop = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await stop.wait()  # never reads the body, never closes

    async def body() -> AsyncIterator[bytes]:
        chunk = b"\0" * (1024 * 1024)
        for _ in range(256):
            yield chunk

    transport = _transport()
    async with serve(handler) as peer, _client(peer, transport, write=0.3) as client:
        try:
            async with asyncio.timeout(10):
                upload = asyncio.create_task(
                    client.put("/", content=body(), headers={"Content-Length": str(256 << 20)})
                )
                await _until(lambda: len(_connections(transport)) == 1)
                (connection,) = _connections(transport)
                assert connection.transport is not None
                sock = connection.transport.get_extra_info("socket")
                with pytest.raises(httpx.WriteTimeout):
                    await upload
                await _until(lambda: sock.fileno() == -1)
        finally:
            stop.set()


# -- time ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        b"HTTP/1.1 404 X\r\nContent-Length: 10\r\n\r\nabc",
        _CHUNKED + b"5\r\nabc",
    ],
    ids=["no-head", "whole", "streamed", "chunked"],
)
async def test_a_stalled_peer_is_a_read_timeout(answer: bytes) -> None:
    stop = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        await stop.wait()

    async with serve(handler) as peer, _client(peer, read=0.3) as client:
        try:
            async with asyncio.timeout(10):
                with pytest.raises(httpx.ReadTimeout):
                    await client.get("/")
        finally:
            stop.set()


async def test_a_slow_consumer_is_not_a_read_timeout() -> None:
    """The read timeout bounds waits for the peer; bytes already here wait for the caller."""
    body = bytes(range(256)) * (12 * 1024)  # 3 MiB: more than HIGH_WATER, reading pauses
    sent = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        sent.set()
        await writer.drain()
        await reader.read()

    async with (
        serve(handler) as peer,
        _client(peer, read=0.2) as client,
        asyncio.timeout(20),
        client.stream("GET", "/", extensions={BODY_LIMIT: None}) as response,
    ):
        chunks = response.aiter_raw()
        received = [await anext(chunks)]
        await sent.wait()
        for _ in range(3):
            await asyncio.sleep(0.3)  # the consumer dawdles longer than the read timeout
            received.append(await anext(chunks))
        received += [chunk async for chunk in chunks]
    assert b"".join(received) == body


async def test_an_unread_body_is_not_buffered_by_the_client() -> None:
    """64 MiB the caller does not read yet: the peer is held back, the client keeps ~HIGH_WATER."""
    block = bytes(range(256)) * 4096  # 1 MiB
    blocks = 64
    expected = hashlib.sha256()
    for n in range(blocks):
        expected.update(block[n:] + block[:n])
    writers: list[asyncio.StreamWriter] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (blocks * len(block)))
        writer.write(b"".join(block[n:] + block[:n] for n in range(blocks)))
        await writer.drain()

    async with _streamed(handler) as (response, connection):
        await _until(lambda: connection._reading_paused)
        assert connection._queued <= HIGH_WATER + READ_SIZE
        # What the client does not take stays with the peer (beyond the sockets' buffers).
        assert writers[0].transport.get_write_buffer_size() > (blocks - 32) * len(block)
        digest = hashlib.sha256()
        size = 0
        async for chunk in response.aiter_raw():
            digest.update(chunk)
            size += len(chunk)
            assert connection._queued <= HIGH_WATER + READ_SIZE
    assert size == blocks * len(block)
    assert digest.hexdigest() == expected.hexdigest()


async def test_a_body_dripped_in_tiny_pieces_is_bounded_by_what_the_pieces_cost() -> None:
    """96 Ki one-byte pieces (~40 bytes of memory each) unread: reading pauses long before 1 MiB."""
    count = 96 * 1024
    dripped = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % count)
        for _ in range(count):
            writer.write(b"x")
            await asyncio.sleep(0)  # one write per loop turn: the client reads it alone
        dripped.set()
        await reader.read()

    async with _streamed(handler) as (response, connection):
        await dripped.wait()
        await _until(lambda: connection._reading_paused)
        assert len(connection._pieces) < count // 2
        assert await response.aread() == b"x" * count


# -- what we send -------------------------------------------------------------------------


async def test_a_header_value_with_a_line_break_is_never_sent() -> None:
    async with serve(_each(OK)) as peer, _client(peer) as client, asyncio.timeout(10):
        for value in ("a\r\nX-Injected: 1", "a\nb", "a\rb", "a\0b"):
            with pytest.raises(httpx.LocalProtocolError):
                await client.get("/", headers={"X-Value": value})
        assert (await client.get("/")).text == "ok"
    assert peer.accepted == 1  # only the last, clean request reached the peer


async def test_a_streamed_body_without_a_length_is_sent_chunked() -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            assert b"transfer-encoding: chunked" in head.lower()
            received.append(await reader.readuntil(b"0\r\n\r\n"))
            writer.write(OK)
            await writer.drain()

    async def body() -> AsyncIterator[bytes]:
        yield b"hello"
        yield b""  # nothing to frame: an empty chunk would end the body early
        yield b" world" * 1000

    async with serve(handler) as peer, _client(peer) as client, asyncio.timeout(10):
        for _ in range(2):
            assert (await client.put("/", content=body())).text == "ok"
    assert received == [_chunked(b"hello", b" world" * 1000)] * 2
    assert peer.accepted == 1


@pytest.mark.parametrize(("declared", "sent"), [(8, 4), (4, 8)], ids=["shorter", "longer"])
async def test_a_streamed_body_that_belies_its_length_is_refused(declared: int, sent: int) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(sent // 4):
            yield b"abcd"

    async with serve(_each(OK)) as peer, _client(peer) as client, asyncio.timeout(10):
        with pytest.raises(httpx.LocalProtocolError):
            await client.put("/", content=body(), headers={"Content-Length": str(declared)})
        assert (await client.get("/")).text == "ok"
    assert peer.accepted == 2


# -- the pool -----------------------------------------------------------------------------


class _Gate:
    """A peer that holds every answer until the test opens the gate."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.requests = 0

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            self.requests += 1
            await self.open.wait()
            writer.write(OK)
            await writer.drain()


async def test_the_pool_never_opens_more_than_its_limit() -> None:
    gate = _Gate()
    transport = _transport(max_connections=2)
    async with serve(gate.handler) as peer, _client(peer, transport) as client, asyncio.timeout(10):
        tasks = [asyncio.create_task(client.get(f"/{n}")) for n in range(5)]
        # Every request is either at the peer or queued for a slot: all could have connected.
        await _until(lambda: gate.requests == 2 and len(transport._pool._waiters) == 3)
        gate.open.set()
        answers = await asyncio.gather(*tasks)
    assert [answer.text for answer in answers] == ["ok"] * 5
    assert peer.most_open == 2


async def test_a_request_cancelled_while_waiting_for_a_slot_does_not_keep_it() -> None:
    gate = _Gate()
    transport = _transport(max_connections=2)
    async with serve(gate.handler) as peer, _client(peer, transport) as client, asyncio.timeout(10):
        busy = [asyncio.create_task(client.get(f"/busy{n}")) for n in range(2)]
        waiting = asyncio.create_task(client.get("/waiting"))
        await _until(lambda: gate.requests == 2 and len(transport._pool._waiters) == 1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gate.open.set()
        assert [answer.text for answer in await asyncio.gather(*busy)] == ["ok", "ok"]
        later = await asyncio.gather(client.get("/a"), client.get("/b"), client.get("/c"))
        assert [answer.text for answer in later] == ["ok"] * 3
    assert peer.most_open == 2


async def test_a_waiter_cancelled_as_its_turn_comes_passes_the_turn_on() -> None:
    """The slot handed to a waiter that is cancelled before it runs goes to the next waiter."""
    gate = _Gate()
    transport = _transport(max_connections=1)
    async with serve(gate.handler) as peer, _client(peer, transport) as client, asyncio.timeout(10):
        streamed = client.build_request("GET", "/first", extensions={BODY_LIMIT: None})
        first = asyncio.create_task(client.send(streamed, stream=True))
        second = asyncio.create_task(client.get("/second"))
        third = asyncio.create_task(client.get("/third"))
        await _until(lambda: gate.requests == 1 and len(transport._pool._waiters) == 2)
        gate.open.set()
        response = await first
        await response.aread()  # its connection goes back to the pool: the second's turn...
        assert not transport._pool._waiters[0].done()  # (the third still waits)
        second.cancel()  # ...which it never takes
        with pytest.raises(asyncio.CancelledError):
            await second
        assert (await third).text == "ok"
    assert peer.accepted == 1


async def test_a_request_cancelled_in_flight_closes_its_connection_and_frees_its_slot() -> None:
    arrived = asyncio.Event()
    hung_up = asyncio.Event()

    async def first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        arrived.set()
        assert await reader.read() == b""  # EOF: the client closed the connection
        hung_up.set()

    handler = _first_connection(first)

    transport = _transport(max_connections=1)
    async with serve(handler) as peer, _client(peer, transport) as client, asyncio.timeout(10):
        stuck = asyncio.create_task(client.get("/stuck"))
        await arrived.wait()
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        await hung_up.wait()
        assert (await client.get("/next")).text == "ok"  # the only slot is free again
    assert peer.accepted == 2


async def test_a_full_pool_closes_an_idle_connection_of_another_origin() -> None:
    hung_up = asyncio.Event()

    async def first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()
        assert await reader.read() == b""  # EOF: the client closed the idle connection
        hung_up.set()

    transport = _transport(max_connections=1)
    async with (
        serve(first) as one,
        serve(_each(OK)) as other,
        httpx.AsyncClient(transport=transport) as client,
        asyncio.timeout(10),
    ):
        assert (await client.get(f"http://127.0.0.1:{one.port}/")).text == "ok"
        assert (await client.get(f"http://127.0.0.1:{other.port}/")).text == "ok"
        await hung_up.wait()
        assert len(_connections(transport)) == 1


async def test_nothing_listening_is_a_connect_error() -> None:
    refusing = RefusingPort()
    try:
        async with _transport() as transport, asyncio.timeout(10):
            with pytest.raises(httpx.ConnectError):
                await transport.handle_async_request(
                    httpx.Request("GET", f"http://{refusing.host}/v2/")
                )
    finally:
        refusing.stop()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "ws://127.0.0.1/x"])
async def test_an_unsupported_scheme_is_refused(url: str) -> None:
    async with _transport() as transport:
        with pytest.raises(httpx.UnsupportedProtocol):
            await transport.handle_async_request(httpx.Request("GET", url))


class _Logged(_Gate):
    """A gate that also keeps the paths in the order they arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[bytes] = []

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            self.paths.append(head.split(b" ")[1])
            self.requests += 1
            await self.open.wait()
            writer.write(OK)
            await writer.drain()


async def test_a_newcomer_waits_behind_a_waiter_woken_for_the_freed_connection() -> None:
    """Strict turns: the connection freed for a woken waiter is not taken by a request
    that arrives before the waiter runs (it would re-queue at the end, and could starve)."""
    gate = _Logged()
    gate.open.set()
    transport = _transport(max_connections=1)
    async with serve(gate.handler) as peer, _client(peer, transport) as client, asyncio.timeout(10):
        held = await client.send(
            client.build_request("GET", "/held", extensions={BODY_LIMIT: None}), stream=True
        )
        waiting = asyncio.create_task(client.get("/waiting"))
        await _until(lambda: len(transport._pool._waiters) == 1)
        await held.aread()  # its connection goes back: the waiter's turn, not yet taken...
        # ...when this request arrives, in the same step of the loop.
        newcomer = await transport.handle_async_request(
            httpx.Request("GET", f"http://127.0.0.1:{peer.port}/newcomer")
        )
        assert newcomer.content == b"ok"
        assert (await waiting).text == "ok"
    assert gate.paths == [b"/held", b"/waiting", b"/newcomer"]
    assert peer.accepted == 1


async def test_as_many_waiters_wake_as_connections_are_freed() -> None:
    gate = _Gate()
    transport = _transport(max_connections=2)
    async with serve(gate.handler) as peer, _client(peer, transport) as client, asyncio.timeout(10):
        gate.open.set()
        held = [
            await client.send(
                client.build_request("GET", f"/held{n}", extensions={BODY_LIMIT: None}),
                stream=True,
            )
            for n in range(2)
        ]
        waiting = [asyncio.create_task(client.get(f"/w{n}")) for n in range(4)]
        await _until(lambda: len(transport._pool._waiters) == 4)
        for response in held:  # both connections freed in one step of the loop
            await response.aread()
        answers = await asyncio.gather(*waiting)
    assert [answer.text for answer in answers] == ["ok"] * 4
    assert peer.most_open == 2


async def test_closing_the_transport_ends_the_waits_for_a_slot() -> None:
    """A slot held by an answer nobody reads (so nothing releases it) must not leave the
    requests queued for it waiting forever once the transport is closed."""
    gate = _Gate()
    gate.open.set()
    transport = _transport(max_connections=1)
    async with serve(gate.handler) as peer, asyncio.timeout(10):
        client = _client(peer, transport)
        held = await client.send(
            client.build_request("GET", "/held", extensions={BODY_LIMIT: None}), stream=True
        )
        waiting = asyncio.create_task(client.get("/waiting"))
        await _until(lambda: len(transport._pool._waiters) == 1)
        await transport.aclose()
        with pytest.raises(httpx.ConnectError, match="closed"):
            await waiting
        await held.aclose()
        await client.aclose()


async def test_a_read_body_that_httpx_frames_as_chunked_goes_out_as_one_chunk() -> None:
    """httpx keeps ``Transfer-Encoding: chunked`` on a streamed body it has read (an
    auth flow that needs the body reads it first): the bytes must still be chunked."""
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        received.append(await reader.readuntil(b"0\r\n\r\n"))
        writer.write(OK)
        await writer.drain()

    async def body() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    async with serve(handler) as peer, _transport() as transport, asyncio.timeout(10):
        request = httpx.Request("PUT", f"http://127.0.0.1:{peer.port}/up", content=body())
        await request.aread()
        response = await transport.handle_async_request(request)
        await response.aread()
    assert response.status_code == 200
    assert received == [b"b\r\nhello world\r\n0\r\n\r\n"]
