"""HTTP/1.1 on one connection: a request written, its answer read and handed over in pieces.

A body is read as RFC 9112 §6.3 frames it (:mod:`.framing`): none for
``HEAD``, 1xx, 204 and 304; chunked; by ``Content-Length``; or until the peer
closes (and then the connection is not reused). Reading pauses while more than
:data:`HIGH_WATER` bytes wait for the consumer, so memory stays bounded
whatever the peer sends; bytes arriving outside an answer end the connection.

Timeouts are httpx's: ``read`` bounds each wait for the peer's bytes (not the
consumer's pace), ``write`` each wait for the peer to take ours. A connection
whose state is in doubt after any failure or cancellation is closed, never
reused.
"""

from __future__ import annotations

import asyncio
import select
from collections import deque
from typing import cast

import httpx

from mirrorbot.engine.registry.framing import (
    DIGITS,
    MAX_HEAD,
    MAX_INTERIM,
    Chunked,
    Decoder,
    Head,
    Length,
    UntilClose,
    head_end,
    parse_head,
    violation,
)

__all__ = ["HIGH_WATER", "LOW_WATER", "Connection"]

HIGH_WATER = 1024 * 1024  # body bytes buffered before reading pauses
LOW_WATER = 256 * 1024
# What a queued piece costs beyond its bytes (its object, its slot): a peer dripping
# one-byte pieces must not hold ~40 times HIGH_WATER in memory before reading pauses.
_PIECE_COST = 64


def _expire(waiter: asyncio.Future[object], kind: type[Exception], message: str) -> None:
    if not waiter.done():
        waiter.set_exception(kind(message))


class Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time.

    ``reusable`` turns false at anything that leaves the byte stream in doubt;
    the pool then closes the connection instead of handing it out again.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self.idle_since = 0.0
        self.declared_length: int | None = None  # the answer's valid Content-Length
        self.identity = True  # the answer has no Content-Encoding but identity
        self._answering = False  # between a request's write and its answer's end
        self._method = b""
        self._buffer = bytearray()
        self._scanned = 0
        self._interim = 0
        self._head: Head | None = None
        self._head_waiter: asyncio.Future[object] | None = None
        self._decoder: Decoder | None = None
        self._pieces: deque[bytes] = deque()
        self._queued = 0
        self._done = False
        self._piece_waiter: asyncio.Future[object] | None = None
        self._error: Exception | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[object] | None = None

    def quiet(self) -> bool:
        """Nothing waits in the idle connection's socket: no bytes, no EOF.

        Asked before reuse, as httpcore asks: a peer that closed right after its answer
        has its FIN there before the loop has read it, and a request sent into that
        connection would be lost.
        """
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is None or self.closed or sock.fileno() < 0:
            return False
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return not poller.poll(0)

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports (under uvicorn) are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake("_drain_waiter")

    def data_received(self, data: bytes) -> None:
        if not self._answering or self._done:
            # Bytes outside an answer: the answer already read stands, the connection does not.
            self.reusable = False
            if self.transport is not None:
                self.transport.close()
            return
        try:
            if self._decoder is not None:
                self._feed(data)
            elif self._buffer:
                self._buffer += data
                self._parse_heads(self._buffer)
            else:
                self._parse_heads(data)
        except httpx.RemoteProtocolError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        if isinstance(self._decoder, UntilClose) and not self._done:
            self._finish()
        elif self._answering and not self._done:
            self._fail(
                violation("the peer closed the connection before the end of its answer")
                if self._head is not None
                else violation("the peer closed the connection without an answer")
            )
        self.reusable = False
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._answering and not self._done:
            if exc is None:
                self.eof_received()
            else:
                self._fail(httpx.ReadError(str(exc) or type(exc).__name__))
        error = httpx.WriteError(str(exc) if exc else "the connection was closed")
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    # -- one exchange ------------------------------------------------------

    def send(self, method: bytes, data: bytes) -> None:
        """Write a request's head (and small body); its answer is awaited with :meth:`head`."""
        assert self.transport is not None
        assert not self._answering
        self._answering = True
        self._method = method
        self._head = None
        self._decoder = None
        self._done = False
        self._error = None
        self._interim = 0
        self.declared_length = None
        self.identity = True
        self.transport.write(data)

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise httpx.WriteError("the connection was closed")
        self.transport.write(data)

    async def drain(self, within: float | None) -> None:
        """Return when the peer has taken enough of what was written to write more."""
        if self.closed:
            raise httpx.WriteError("the connection was closed")
        if not self._writing_paused:
            return
        self._drain_waiter = self._loop.create_future()
        try:
            await self._wait(
                self._drain_waiter, within, httpx.WriteTimeout, "the peer stopped taking the body"
            )
        except BaseException:
            # The rest of the body stays unsent: even after a complete answer (a peer may
            # refuse an upload before reading it), our next request would land inside it.
            self.reusable = False
            raise

    async def head(self, within: float | None) -> Head:
        if self._head is None and self._error is None:
            self._head_waiter = self._loop.create_future()
            await self._wait(
                self._head_waiter, within, httpx.ReadTimeout, "no answer within the read timeout"
            )
        if self._head is None:
            assert self._error is not None
            raise self._error
        return self._head

    async def piece(self, within: float | None) -> bytes | None:
        """The next piece of the body as it arrived; ``None`` at its end."""
        while True:
            if self._pieces:
                piece = self._pieces.popleft()
                self._queued -= len(piece) + _PIECE_COST
                if self._reading_paused and self._queued <= LOW_WATER and self.transport:
                    self._reading_paused = False
                    self.transport.resume_reading()
                return piece
            if self._error is not None:
                raise self._error
            if self._done:
                return None
            self._piece_waiter = self._loop.create_future()
            await self._wait(
                self._piece_waiter,
                within,
                httpx.ReadTimeout,
                "the answer's body stalled past the read timeout",
            )

    @property
    def answered(self) -> bool:
        """An answer's head arrived (a peer may answer before it has read the whole body)."""
        return self._head is not None

    def settle(self) -> bool:
        """End the exchange; whether the connection may serve another request."""
        complete = self._done and not self._pieces and self._error is None
        self._answering = False
        self._head = None
        self._decoder = None
        return complete and self.reusable and not self.closed

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            if self.transport.get_write_buffer_size():
                # Unsent bytes nobody wants now: close() would keep the socket until a
                # peer that stopped reading takes them, which it may never do.
                self.transport.abort()
            else:
                self.transport.close()
        self.closed = True

    # -- internals ---------------------------------------------------------

    async def _wait(
        self,
        waiter: asyncio.Future[object],
        within: float | None,
        kind: type[Exception],
        message: str,
    ) -> None:
        if within is None:
            await waiter
            return
        timer = self._loop.call_later(within, _expire, waiter, kind, message)
        try:
            await waiter
        finally:
            timer.cancel()

    def _wake(self, name: str) -> None:
        waiter = getattr(self, name)
        if waiter is not None:
            setattr(self, name, None)
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        self.reusable = False
        if self._error is None:
            self._error = error
        for name in ("_head_waiter", "_piece_waiter"):
            waiter = getattr(self, name)
            setattr(self, name, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def _parse_heads(self, data: bytes | bytearray) -> None:
        """Heads from ``data`` (the unparsed input so far); what follows the last goes to the body.

        A head that arrives in pieces is kept in ``_buffer`` and searched from where
        the last search ended: a peer dripping bytes costs linear time, not quadratic.
        """
        while True:
            found = head_end(data, max(0, self._scanned - 3))
            if found is None or found[0] > MAX_HEAD:
                if len(data) > MAX_HEAD:
                    raise violation(f"an answer's head longer than {MAX_HEAD} bytes")
                if data is not self._buffer:
                    self._buffer += data
                self._scanned = len(data)
                return
            block, rest = bytes(data[: found[0]]), bytes(data[found[1] :])
            self._buffer.clear()
            self._scanned = 0
            status, reason, headers, framing, keep_alive = parse_head(block)
            if status >= 200:
                break
            if status == 101:
                raise violation("the peer switched protocols")
            self._interim += 1
            if self._interim > MAX_INTERIM:
                raise violation("too many interim (1xx) answers")
            data = rest
        self._decoder = self._framing(status, framing, keep_alive)
        self._head = Head(status, reason, headers)
        self._wake("_head_waiter")
        if self._done:
            if rest:
                self.reusable = False  # bytes after a body-less answer: not ours to guess
        elif rest:
            self._feed(rest)

    def _framing(self, status: int, framing: dict[bytes, list[bytes]], keep_alive: bool) -> Decoder:
        if not keep_alive or b"close" in framing.get(b"connection", ()):
            self.reusable = False
        lengths = set(framing.get(b"content-length", ()))
        declared = next(iter(lengths)) if len(lengths) == 1 else b""
        self.declared_length = int(declared) if DIGITS.fullmatch(declared) else None
        self.identity = framing.get(b"content-encoding", [b"identity"]) == [b"identity"]
        if self._method == b"HEAD" or status in (204, 304):
            self._done = True
            return Length(0)
        # A field present but empty frames nothing: refused like a malformed one, not ignored.
        codings = framing.get(b"transfer-encoding")
        if codings is not None:
            if codings != [b"chunked"]:
                raise violation(f"unsupported transfer coding {b', '.join(codings)!r}")
            if b"content-length" in framing:
                self.reusable = False  # both framings: chunked wins, the connection does not
            self.declared_length = None
            return Chunked()
        if b"content-length" in framing:
            if self.declared_length is None:
                raise violation("a malformed or conflicting Content-Length")
            if self.declared_length == 0:
                self._done = True
            return Length(self.declared_length)
        self.reusable = False
        return UntilClose()

    def _feed(self, data: bytes) -> None:
        assert self._decoder is not None
        pieces, rest, done = self._decoder.feed(data)
        for piece in pieces:
            if piece:
                self._pieces.append(piece)
                self._queued += len(piece) + _PIECE_COST
        if done:
            self._finish()
            if rest:
                self.reusable = False
        elif self._queued > HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        if self._pieces:
            self._wake("_piece_waiter")

    def _finish(self) -> None:
        self._done = True
        self._wake("_piece_waiter")
