"""Verify a blob while it streams: size and digest, or an error at the end, never silence."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable

from mirrorbot.engine.registry.media import Descriptor
from mirrorbot.errors import BlobIntegrityError, DigestMismatchError

__all__ = ["verified_stream"]

THREAD_HASH_MIN = 256 * 1024


async def verified_stream(
    chunks: AsyncIterator[bytes],
    descriptor: Descriptor,
    reference: str,
    on_bytes: Callable[[int], None] | None = None,
    *,
    where: str = "blob",
) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through, hashing them; raise at the end if they are not ``descriptor``.

    Anything consuming the stream (an upload) therefore fails before it can
    complete with bad bytes: too many bytes fail at once, too few or wrong ones
    at the end.
    """
    algorithm, _, expected_hex = descriptor.digest.partition(":")
    hasher = hashlib.new(algorithm)
    loop = asyncio.get_running_loop()
    received = 0
    hashing: asyncio.Future[None] | None = None
    async for chunk in chunks:
        received += len(chunk)
        if received > descriptor.size:
            raise BlobIntegrityError(reference, descriptor.digest, descriptor.size, received)
        if hashing is not None:
            await hashing  # chunks are hashed in order, one at a time
            hashing = None
        if len(chunk) >= THREAD_HASH_MIN:
            # hashlib releases the GIL: hash in a thread while this chunk is being sent
            # (the executor's future itself: no task and no context copy per chunk).
            hashing = loop.run_in_executor(None, hasher.update, chunk)
        else:
            hasher.update(chunk)
        if on_bytes is not None:
            on_bytes(len(chunk))
        yield chunk
    if hashing is not None:
        await hashing
    if received != descriptor.size:
        raise BlobIntegrityError(reference, descriptor.digest, descriptor.size, received)
    if hasher.hexdigest() != expected_hex:
        raise DigestMismatchError(
            reference, descriptor.digest, f"{algorithm}:{hasher.hexdigest()}", where
        )
