"""A raw HTTP/1.1 peer on a loopback port, for the transport's tests.

A handler gets each accepted connection's stream pair, reads what the client
sent and writes whatever bytes it likes: the wrong thing a real registry will
not do on demand. :class:`Peer` counts the connections, so a test can tell a
reused connection from a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Handler", "Peer", "read_request", "serve"]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Peer:
    """The port served, and the connections seen: accepted so far, open now, most open at once."""

    port: int = 0
    accepted: int = 0
    open: int = 0
    most_open: int = 0


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, int]:
    """The request head, and the body length it announces."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head, length


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[Peer]:
    """Serve ``handler`` on a loopback port; on exit, wait until every connection is closed."""
    peer = Peer()
    open_connections: set[asyncio.StreamWriter] = set()
    idle = asyncio.Event()
    idle.set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_connections.add(writer)
        peer.accepted += 1
        peer.open += 1
        peer.most_open = max(peer.most_open, peer.open)
        idle.clear()
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            peer.open -= 1
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            open_connections.discard(writer)
            if not open_connections:
                idle.set()

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    peer.port = server.sockets[0].getsockname()[1]
    try:
        yield peer
    finally:
        server.close()
        await server.wait_closed()
        async with asyncio.timeout(10):
            await idle.wait()
