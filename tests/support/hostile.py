"""A loopback "registry" that attacks whoever lists or pulls from it.

:class:`HostileRegistry` answers ``GET /v2/`` politely and every other GET
(``_catalog``, ``tags/list``, manifests, blobs) with one attack, chosen at
construction:

``endless``
    200 JSON that never ends (no length; written until the client hangs up).
``gzip-bomb``
    ``Content-Encoding: gzip``, an endless gzip stream of zeros: about 1 KiB
    on the wire per MiB inflated.
``fake-gzip``
    labelled ``Content-Encoding: gzip``, but plain JSON.
``links``
    a valid one-entry page whose ``Link`` always names a new page.
``redirect-loop``
    307 to the same path, forever.
``bad-link``
    a valid page with ``Link: <http://[::1/x>`` (not a URL).
``cross-host``
    a valid page whose ``Link`` names another host.
``scheme-change``
    a valid page whose ``Link`` names the same host over another scheme.
``trickle``
    200 with a large ``Content-Length``, then one byte every ``interval``.
``token-endless`` / ``token-trickle``
    every request is challenged (401, Bearer realm on this server); the token
    endpoint answers with an endless body / one byte every ``interval``.

Catalog pages name repositories under ``hostile/``. Everything runs on
127.0.0.1 (random port) in daemon threads; ``stop`` ends any answer still
being written. ``requests`` counts the requests served.

:class:`RefusingPort` is a registry that is down: a port held but never listened
on, so every connection is refused and no other process (another test worker's
registry) can start listening there while a test counts on it being dead.
"""

from __future__ import annotations

import json
import socket
import threading
import zlib
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fronts import LoopbackServer, LoopbackService

__all__ = ["ATTACKS", "HostileRegistry", "RefusingPort"]

ATTACKS = (
    "endless",
    "gzip-bomb",
    "fake-gzip",
    "links",
    "redirect-loop",
    "bad-link",
    "cross-host",
    "scheme-change",
    "trickle",
    "token-endless",
    "token-trickle",
)
_CHUNK = 64 * 1024


def _bomb_pieces() -> tuple[bytes, bytes]:
    """A gzip stream's start, and a piece that may be repeated forever after it.

    A full flush resets the compressor, so the same MiB of zeros compresses to
    the same bytes every time: endless valid gzip from one small buffer.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1024 * 1024)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert repeat == again, "a full flush must make the piece repeatable"
    return first, repeat


class _Server(LoopbackServer):
    def __init__(self, hostile: HostileRegistry) -> None:
        self.hostile = hostile
        super().__init__(_Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hostile.handle(self)

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response_only(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HostileRegistry(LoopbackService):
    """One attack, served on 127.0.0.1 to anything that lists or pulls."""

    def __init__(self, attack: str, *, interval: float = 0.05) -> None:
        if attack not in ATTACKS:
            raise ValueError(f"attack must be one of {ATTACKS}, not {attack!r}")
        super().__init__()
        self.attack = attack
        self.interval = interval
        self.requests = 0
        self._lock = threading.Lock()
        self._bomb = _bomb_pieces() if attack == "gzip-bomb" else (b"", b"")

    def _make_server(self) -> LoopbackServer:
        return _Server(self)

    # -- answers -------------------------------------------------------------

    def handle(self, handler: _Handler) -> None:
        with self._lock:
            self.requests += 1
        url = urlsplit(handler.path)
        if self.attack.startswith("token-"):
            if url.path == "/token":
                self._token(handler)
                return
            if "Authorization" not in handler.headers:
                realm = f"http://{self.host}/token"
                handler.reply(
                    401,
                    b'{"errors": [{"code": "UNAUTHORIZED"}]}',
                    {"WWW-Authenticate": f'Bearer realm="{realm}",service="hostile"'},
                )
                return
        if url.path == "/v2/":
            handler.reply(200, b"{}", {"Content-Type": "application/json"})
            return
        if self.attack == "endless":
            self._endless(handler, {"Content-Type": "application/json"}, b'{"tags": ["')
        elif self.attack == "gzip-bomb":
            self._gzip_bomb(handler)
        elif self.attack == "fake-gzip":
            handler.reply(200, self._page(url.path, 0), {"Content-Encoding": "gzip"})
        elif self.attack == "redirect-loop":
            handler.reply(307, b"", {"Location": url.path})
        elif self.attack == "trickle":
            self._trickle(handler, b'{"tags": ["' + b"a" * 1_000_000 + b'"]}')
        elif self.attack.startswith("token-"):
            handler.reply(200, self._page(url.path, 0), {"Content-Type": "application/json"})
        else:
            self._linked(handler, url.path, url.query)

    def _page(self, path: str, number: int) -> bytes:
        key = "repositories" if path.endswith("/_catalog") else "tags"
        name = f"hostile/r{number}" if key == "repositories" else f"t{number}"
        return json.dumps({key: [name]}).encode()

    def _linked(self, handler: _Handler, path: str, query: str) -> None:
        number = int(parse_qs(query).get("last", ["0"])[0] or 0)
        following = f"{path}?n=1&last={number + 1}"
        links = {
            "links": f"<{following}>",
            "bad-link": "<http://[::1/x>",
            "cross-host": f"<http://elsewhere.invalid{following}>",
            "scheme-change": f"<https://{self.host}{following}>",
        }
        handler.reply(
            200,
            self._page(path, number),
            {"Content-Type": "application/json", "Link": f'{links[self.attack]}; rel="next"'},
        )

    def _token(self, handler: _Handler) -> None:
        if self.attack == "token-endless":
            self._endless(handler, {"Content-Type": "application/json"}, b'{"token": "')
        else:
            self._trickle(handler, b'{"token": "' + b"t" * 100_000 + b'"}')

    def _endless(self, handler: _Handler, headers: dict[str, str], start: bytes) -> None:
        """Headers without a length, then the same bytes until the client gives up."""
        handler.send_response_only(200)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        handler.wfile.write(start)
        filler = b"a" * _CHUNK
        while not self.stopping.is_set():
            handler.wfile.write(filler)

    def _gzip_bomb(self, handler: _Handler) -> None:
        first, repeat = self._bomb
        handler.send_response_only(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        handler.wfile.write(first)
        while not self.stopping.is_set():
            handler.wfile.write(repeat)

    def _trickle(self, handler: _Handler, body: bytes) -> None:
        """An honest length, then one byte per ``interval``: each read is quick, the whole is not."""
        handler.send_response_only(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.close_connection = True
        for index in range(len(body)):
            if self.stopping.wait(self.interval):  # the pacing is the attack
                return
            handler.wfile.write(body[index : index + 1])
            handler.wfile.flush()


class RefusingPort:
    """A loopback port bound and never listened on: connections to it are refused."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._socket.getsockname()[1]}"

    def stop(self) -> None:
        self._socket.close()
