"""Every answer from the network is bounded: in bytes, in decompression, in time.

:func:`bound_response` is an httpx response hook, so it sees every answer a
client receives, the ones httpx reads on its own included (redirect and 401
bodies inside the auth flow, token answers). It caps the *decoded* bytes of a
2xx answer by the kind of request (:data:`BODY_LIMIT`, 1 MiB when unlabelled),
inflates gzip itself with a bounded output buffer (a gzip bomb stops at the
cap, never after full inflation), and cuts any other answer (errors,
redirects) to 64 KiB silently: only its excerpt is ever used. Blob downloads
(``BODY_LIMIT = None``) pass untouched: they are verified by digest and paced
by :func:`paced`.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

import httpx

from mirrorbot.engine.registry.responses import MAX_ERROR_BODY, redact_url
from mirrorbot.errors import ProtocolViolationError, ResponseTooLargeError, TransferTooSlowError

__all__ = [
    "BODY_LIMIT",
    "DEFAULT_BODY_LIMIT",
    "LISTING_PAGE_LIMIT",
    "BoundedStream",
    "Limits",
    "bound_response",
    "paced",
]

# Request extension: the cap on a 2xx answer's decoded bytes; None = unbounded (a blob).
BODY_LIMIT = "mirrorbot.body_limit"
# Unlabelled requests: pings, token answers, upload sessions. Tokens are a few KiB.
DEFAULT_BODY_LIMIT = 1024 * 1024
# One page of tags/list or _catalog; gcr's tags/list of a big repository (manifest map
# included) is a few MiB.
LISTING_PAGE_LIMIT = 16 * 1024 * 1024
_INFLATED = ("gzip", "x-gzip", "deflate")


@dataclass(frozen=True, slots=True)
class Limits:
    """How much of the network one client accepts.

    ``request_deadline``: seconds a small request (manifest, listing page,
    token exchange included) may take in total. ``min_transfer_rate``: bytes/s
    a blob download must average over every ``request_deadline`` span (0: no
    minimum). ``max_pages`` and ``max_items``: caps on one paged listing (the
    tags of one repository, a catalog); gcr.io's biggest repositories hold
    tens of thousands of tags, Docker Hub namespaces a few thousand repositories.
    """

    request_deadline: float = 60.0
    min_transfer_rate: int = 10 * 1024
    max_pages: int = 10_000
    max_items: int = 100_000


def _registry_of(url: httpx.URL) -> str:
    return url.netloc.decode("ascii", "replace")


class BoundedStream(httpx.AsyncByteStream):
    """An answer's body, decoded (gzip inflated here, bounded), at most ``limit`` bytes.

    Past the limit: ``truncate`` ends the body quietly (error pages), else
    :class:`ResponseTooLargeError`. Raw bytes count too, so endless input that
    decodes to nothing (empty gzip blocks) stops as well.
    """

    def __init__(
        self,
        inner: httpx.AsyncByteStream,
        url: httpx.URL,
        *,
        limit: int,
        inflate: bool,
        truncate: bool,
    ) -> None:
        self._inner = inner
        self._url = url
        self._limit = limit
        self._inflate = inflate
        self._truncate = truncate

    def _too_large(self, received: int) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            _registry_of(self._url), None, self._limit, received, redact_url(self._url)
        )

    def _corrupt(self, error: zlib.error) -> ProtocolViolationError:
        return ProtocolViolationError(
            _registry_of(self._url),
            None,
            f"body labelled gzip does not inflate: {error}",
            redact_url(self._url),
        )

    async def __aiter__(self) -> AsyncIterator[bytes]:
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32) if self._inflate else None
        raw = out = 0
        async with aclosing(self._inner.__aiter__()) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                raw += len(chunk)
                data = chunk
                while data:
                    room = self._limit - out
                    if inflater is None:
                        piece, data = data, b""
                    else:
                        try:
                            piece = inflater.decompress(data, room + 1)
                        except zlib.error as error:
                            if self._truncate:
                                return
                            raise self._corrupt(error) from None
                        data = inflater.unconsumed_tail
                    if len(piece) > room:
                        if self._truncate:
                            if room:
                                yield piece[:room]
                            return
                        raise self._too_large(out + len(piece))
                    out += len(piece)
                    if piece:
                        yield piece
                    if inflater is not None and inflater.eof:
                        break  # trailing bytes after the gzip member: ignored, as httpx does
                if raw > self._limit:
                    if self._truncate:
                        return
                    raise self._too_large(raw)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def bound_response(response: httpx.Response) -> None:
    """Response hook: wrap the body in a :class:`BoundedStream` fit for the request's kind."""
    stream = response.stream
    if isinstance(stream, BoundedStream) or not isinstance(stream, httpx.AsyncByteStream):
        return
    if response.is_stream_consumed:
        return  # read whole by the transport: declared, unencoded and within the cap
    request = response.request
    limit: int | None = request.extensions.get(BODY_LIMIT, DEFAULT_BODY_LIMIT)
    encoding = response.headers.get("content-encoding", "").strip().lower()
    success = 200 <= response.status_code < 300
    if not success:
        limit, truncate = MAX_ERROR_BODY, True
    elif limit is None:
        return  # a blob: raw bytes, verified against its digest, paced by the reader
    else:
        truncate = False
    if encoding and encoding != "identity":
        if encoding not in _INFLATED and success:
            raise ProtocolViolationError(
                _registry_of(request.url),
                None,
                f"unsupported Content-Encoding {encoding[:40]!r} (asked for identity)",
                redact_url(request.url),
            )
        del response.headers["content-encoding"]  # decoded here, never again by httpx
    response.stream = BoundedStream(
        stream, request.url, limit=limit, inflate=encoding in _INFLATED, truncate=truncate
    )


async def paced(
    pieces: AsyncIterator[bytes],
    *,
    rate: int,
    window: float,
    registry: str,
    reference: str | None,
) -> AsyncIterator[bytes]:
    """Pass ``pieces`` through; fail when ``window`` seconds of waiting brought < ``rate * window`` bytes.

    Only time spent waiting for the source counts (a slow consumer, such as
    an upload to a slow target, is not the source's fault). While the current
    window is short of its bytes, a read waits only until the window would
    end, so a trickle fails on time, not when (or if) its next byte arrives.
    """
    if rate <= 0:
        async for piece in pieces:
            yield piece
        return
    loop = asyncio.get_running_loop()
    need = rate * window
    got = 0
    spent = 0.0  # seconds waited for the source in the current window
    async with aclosing(pieces):  # type: ignore[type-var]
        while True:
            budget = (window if got < need else 2 * window) - spent
            started = loop.time()
            try:
                async with asyncio.timeout(budget):
                    piece = await anext(pieces)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise TransferTooSlowError(registry, reference, rate, window) from None
            spent += loop.time() - started
            while spent >= window:
                if got < need:
                    raise TransferTooSlowError(registry, reference, rate, window)
                got, spent = 0, spent - window
            got += len(piece)
            yield piece
