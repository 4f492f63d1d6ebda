"""The transport keeps httpx's contract where the libraries it replaced did not (aiohttp).

Each peer is a small loopback server written with asyncio streams: it does
exactly one wrong thing a real registry will not do on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mirrorbot.engine.registry.bounded import BODY_LIMIT
from mirrorbot.engine.registry.session import shared_tls_context
from mirrorbot.engine.registry.transport import Http11Transport, _already_read
from tests.support.peer import Handler, serve
from tests.support.peer import read_request as _read_request


def _client(port: int, **timeouts: float) -> httpx.AsyncClient:
    transport = Http11Transport(verify=shared_tls_context(), max_connections=4)
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        transport=transport,
        timeout=httpx.Timeout(5.0, **timeouts),
    )


@contextlib.asynccontextmanager
async def _peer(handler: Handler) -> AsyncIterator[int]:
    async with serve(handler) as peer:
        yield peer.port


async def test_a_put_whose_answer_is_lost_is_not_resent_by_the_transport() -> None:
    """aiohttp resent idempotent requests on a dropped keep-alive connection; we never do."""
    puts: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head, length = await _read_request(reader)
                await reader.readexactly(length)
                puts.append(head)
                if len(puts) >= 2:
                    break  # the second PUT landed; its answer is lost
                writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async with _peer(handler) as port, _client(port) as client:
        first = await client.put("/v2/r/manifests/a", content=b"{}")
        assert first.status_code == 201
        with pytest.raises(httpx.TransportError):
            await client.put("/v2/r/manifests/b", content=b"{}")
    assert len(puts) == 2, puts


async def test_an_error_of_the_request_body_itself_is_raised_as_itself() -> None:
    """An upstream download failing mid-upload must not look like the target's network error."""

    class UpstreamBroke(Exception):
        pass

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _read_request(reader)
            await reader.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 1024
        raise UpstreamBroke("the source went away")

    async with _peer(handler) as port, _client(port) as client:
        with pytest.raises(UpstreamBroke):
            await client.put("/upload", content=body(), headers={"Content-Length": "4096"})


async def test_a_peer_that_stops_reading_the_body_is_a_write_timeout() -> None:
    """aiohttp had no write timeout; the transport times each wait for the peer to take more."""
    stop = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await stop.wait()  # never reads the body: the client's socket buffers fill up

    size = 256 * 1024 * 1024

    async def body() -> AsyncIterator[bytes]:
        chunk = bytes(1024 * 1024)
        for _ in range(size // len(chunk)):
            yield chunk

    async with _peer(handler) as port:
        try:
            async with _client(port, write=0.5) as client, asyncio.timeout(30):
                with pytest.raises(httpx.WriteTimeout):
                    await client.put(
                        "/upload", content=body(), headers={"Content-Length": str(size)}
                    )
        finally:
            stop.set()


async def test_a_redirected_get_carries_no_body() -> None:
    """httpx hands a redirected GET an unread empty stream: it must not go out chunked."""
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head, _ = await _read_request(reader)
                heads.append(head)
                if head.startswith(b"GET /start "):
                    writer.write(
                        b"HTTP/1.1 307 Moved\r\nLocation: /end\r\nContent-Length: 0\r\n\r\n"
                    )
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async with _peer(handler) as port, _client(port) as client:
        response = await client.get("/start", follow_redirects=True)
        assert response.text == "ok"
    assert len(heads) == 2
    assert all(b"transfer-encoding" not in head.lower() for head in heads), heads


async def test_the_transport_sends_httpx_headers_and_adds_none_of_aiohttp_defaults() -> None:
    """A request without User-Agent/Accept/Accept-Encoding goes out without them, and a
    client's own values are sent as they are, never a library's ("Python/3.x aiohttp/...")."""
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await _read_request(reader)
            heads.append(head.lower())
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    async with _peer(handler) as port:
        transport = Http11Transport(verify=shared_tls_context(), max_connections=4)
        try:
            bare = httpx.Request("GET", f"http://127.0.0.1:{port}/v2/")
            response = await transport.handle_async_request(bare)
            await response.aclose()
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                transport=transport,
                headers={"User-Agent": "mirrorbot/test", "Accept-Encoding": "identity"},
            ) as client:
                await client.get("/v2/")
        finally:
            await transport.aclose()
    bare_head, client_head = heads
    for name in (b"user-agent:", b"accept:", b"accept-encoding:"):
        assert name not in bare_head
    assert b"user-agent: mirrorbot/test\r\n" in client_head
    assert b"accept-encoding: identity\r\n" in client_head
    assert b"aiohttp" not in client_head


async def test_only_a_small_declared_plain_answer_is_read_whole_by_the_transport() -> None:
    """Within the request's cap, by its declared length and unencoded: read at once, the
    same bytes. Over the cap, gzip-labelled or chunked: it streams, so the body caps and the
    inflater above the transport see it — and an answer that announces 10 MiB and sends a
    few bytes is handed over at once instead of being waited for."""
    answers = {
        b"/small": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"/large": b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\nfirst",
        b"/gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\nxx",
        b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"/blob": b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nblob",
        b"/missing": b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}",
        b"/head": b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
    }
    done = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not done.is_set():  # a connection an answer was read to its end is reused
            head, _ = await _read_request(reader)
            writer.write(answers[head.split(b" ")[1]])
            await writer.drain()

    async with _peer(handler) as port:
        transport = Http11Transport(verify=shared_tls_context(), max_connections=8)
        try:
            kinds: dict[str, bool] = {}
            for path, limit in [
                ("/small", 1024),
                ("/large", 1024 * 1024),
                ("/gzip", 1024),
                ("/chunked", 1024),
                ("/blob", None),
                ("/missing", 1024),
                ("/head", 1024),
            ]:
                request = httpx.Request(
                    "HEAD" if path == "/head" else "GET",
                    f"http://127.0.0.1:{port}{path}",
                    extensions={BODY_LIMIT: limit},
                )
                async with asyncio.timeout(5):
                    response = await transport.handle_async_request(request)
                kinds[path] = hasattr(response, "_content")  # read by the transport
                if path == "/small":
                    assert response.content == b"hello"
                if path == "/head":  # the resource's length, not the (empty) body's
                    assert (response.content, response.headers["content-length"]) == (b"", "1234")
                await response.aclose()
        finally:
            done.set()
            await transport.aclose()
    assert kinds == {
        "/small": True,
        "/large": False,
        "/gzip": False,
        "/chunked": False,
        "/blob": False,
        "/missing": False,
        "/head": True,
    }


def _loopback_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 (its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_the_tls_context_is_built_at_the_first_https_request_and_used_for_it(
    tmp_path: Path,
) -> None:
    """Plain-HTTP requests never build it (a CA bundle costs ~25 ms to load); an https
    request is verified with it — a context that does not trust the peer fails."""
    cert_path, key_path = _loopback_certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_path, key_path)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await _read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    built: list[str] = []

    def trusting() -> ssl.SSLContext:
        built.append("trusting")
        return ssl.create_default_context(cafile=str(cert_path))

    def default() -> ssl.SSLContext:
        built.append("default")
        return ssl.create_default_context()

    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_tls)
    plain_server = await asyncio.start_server(handler, "127.0.0.1", 0)
    tls_port = server.sockets[0].getsockname()[1]
    plain_port = plain_server.sockets[0].getsockname()[1]
    try:
        for verify, trusted in ((trusting, True), (default, False)):
            transport = Http11Transport(verify=verify, max_connections=4)
            try:
                async with httpx.AsyncClient(transport=transport) as client:
                    assert (await client.get(f"http://127.0.0.1:{plain_port}/")).text == "ok"
                    assert built == ([] if trusted else ["trusting"])
                    if trusted:
                        response = await client.get(f"https://127.0.0.1:{tls_port}/")
                        assert response.text == "ok"
                        await client.get(f"https://127.0.0.1:{tls_port}/")
                    else:
                        with pytest.raises(httpx.ConnectError):
                            await client.get(f"https://127.0.0.1:{tls_port}/")
            finally:
                await transport.aclose()
        assert built == ["trusting", "default"]  # once per transport, at its first https request
    finally:
        for each in (server, plain_server):
            each.close()
            await each.wait_closed()


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ([(b"Content-Length", b"2"), (b"Content-Type", b"application/json")], b"{}"),
        ([(b"Content-Length", b"1234"), (b"Docker-Content-Digest", b"sha256:ab")], b""),
        (
            [(b"Content-Length", b"5"), (b"Content-Type", b"text/plain; charset=utf-8")],
            b"h\xc3\xa9!!",
        ),
    ],
)
async def test_an_answer_the_transport_read_is_what_httpx_makes_of_its_content(
    headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """The transport sets what httpx's own ``read()`` sets, without reading again; every
    public member agrees with ``httpx.Response(content=…)``, alone and after a client's send."""
    extensions: dict[str, object] = {"http_version": b"HTTP/1.1", "reason_phrase": b"OK"}
    theirs = httpx.Response(200, headers=headers, content=body, extensions=dict(extensions))
    mine = _already_read(200, headers, body, dict(extensions))
    for answer in (theirs, mine):
        answer.request = httpx.Request("GET", "http://127.0.0.1/v2/")

    def members(answer: httpx.Response) -> tuple[object, ...]:
        return (
            answer.status_code,
            answer.headers.raw,
            answer.content,
            answer.text,
            answer.encoding,
            answer.is_stream_consumed,
            answer.is_closed,
            answer.num_bytes_downloaded,
            answer.http_version,
            answer.reason_phrase,
        )

    assert members(mine) == members(theirs)
    assert await mine.aread() == await theirs.aread() == body
    assert [c async for c in mine.aiter_bytes()] == [c async for c in theirs.aiter_bytes()]
    for answer in (theirs, mine):
        with pytest.raises(httpx.StreamConsumed):
            [c async for c in answer.aiter_raw()]
        await answer.aclose()
    assert members(mine) == members(theirs)

    sent = []
    for made in (
        lambda: httpx.Response(200, headers=headers, content=body, extensions=dict(extensions)),
        lambda: _already_read(200, headers, body, dict(extensions)),
    ):
        transport = httpx.MockTransport(lambda request, made=made: made())
        async with httpx.AsyncClient(transport=transport) as client:
            plain = await client.get("http://127.0.0.1/v2/")
            async with client.stream("GET", "http://127.0.0.1/v2/") as streamed:
                chunks = [c async for c in streamed.aiter_bytes()]
            sent.append((members(plain), chunks, members(streamed)))
    assert sent[0] == sent[1]


async def test_a_tls_connection_is_kept_alive_and_streams_a_large_body(tmp_path: Path) -> None:
    """The production path: https, several requests on one connection (TLS 1.3 session
    tickets arrive after the handshake and must not make an idle connection look used),
    and a body larger than the read buffers, byte for byte."""
    cert_path, key_path = _loopback_certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_path, key_path)
    large = bytes(range(256)) * (24 * 1024)  # 6 MiB
    accepted = 0
    versions: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        versions.append(writer.get_extra_info("ssl_object").version())
        try:
            while True:
                head, _ = await _read_request(reader)
                body = large if b" /large " in head else b"ok"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
                writer.write(body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    context = ssl.create_default_context(cafile=str(cert_path))
    transport = Http11Transport(verify=context, max_connections=4)
    try:
        async with httpx.AsyncClient(transport=transport) as client, asyncio.timeout(20):
            for _ in range(5):
                assert (await client.get(f"https://127.0.0.1:{port}/")).text == "ok"
            streamed = client.build_request(
                "GET", f"https://127.0.0.1:{port}/large", extensions={BODY_LIMIT: None}
            )
            response = await client.send(streamed, stream=True)
            received = b"".join([chunk async for chunk in response.aiter_raw()])
            await response.aclose()
            assert received == large
            assert (await client.get(f"https://127.0.0.1:{port}/")).text == "ok"
        assert versions == ["TLSv1.3"]
        assert accepted == 1
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()
