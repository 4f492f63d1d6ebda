"""Copy rounds: every item once, bounded, then more rounds for the failures another try can fix.

Shared by ``sync`` and ``rules`` (both copy many tags and retry the same way);
a module of its own so neither job imports the other.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from mirrorbot.engine.concurrency import bounded_map
from mirrorbot.errors import (
    BackupError,
    BlobIntegrityError,
    BreakerOpenError,
    ErrorCode,
    MirrorbotError,
    RegistryError,
    RegistryUnreachableError,
    UnexpectedError,
)

__all__ = ["copy_in_rounds"]

log = logging.getLogger("mirrorbot.sync")
W = TypeVar("W")


async def copy_in_rounds(
    items: Sequence[W],
    copy_one: Callable[[W], Awaitable[None]],
    *,
    concurrency: int,
    retry_rounds: int,
    stopping: Callable[[], bool] = lambda: False,
) -> list[tuple[W, MirrorbotError]]:
    """Run ``copy_one`` over items, bounded; give failures worth it more rounds.

    A round retries only errors another attempt can fix (outages, cut streams);
    a missing image or a lying registry fails at once. Every item of a round
    runs whatever the others do: each failure is kept as that item's result.
    Returns what still failed.
    """
    pending = list(items)
    final: list[tuple[W, MirrorbotError]] = []
    for round_number in range(retry_rounds + 1):
        outcomes = await bounded_map(_attempt(copy_one), pending, concurrency)
        failed = [
            (item, error)
            for item, error in zip(pending, outcomes, strict=True)
            if error is not None
        ]
        last_round = round_number == retry_rounds or stopping()
        retry = [] if last_round else [(i, e) for i, e in failed if _worth_retrying(e)]
        for item, error in failed:
            if retry and any(item is again for again, _ in retry):
                log.warning("%s: will retry: %s", _describe_item(item), error)
                continue
            if not isinstance(error, BreakerOpenError):  # the breaker said it once already
                log.error("%s: %s", _describe_item(item), error)
            final.append((item, error))
        if not retry:
            break
        pending = [item for item, _ in retry]
    return final


def _attempt(
    copy_one: Callable[[W], Awaitable[None]],
) -> Callable[[W], Awaitable[MirrorbotError | None]]:
    """``copy_one`` whose failure is its result: one item's error never cancels the round."""

    async def attempt(item: W) -> MirrorbotError | None:
        try:
            await copy_one(item)
        except MirrorbotError as exc:
            return exc
        except Exception as exc:
            log.debug("unexpected failure", exc_info=True)
            return UnexpectedError(f"{type(exc).__name__}: {exc}")
        return None

    return attempt


def _describe_item(item: object) -> str:
    source = getattr(item, "source", None)
    if source is None and isinstance(item, tuple):
        source = getattr(item[-1], "source", None)
    return str(source if source is not None else item)


def _worth_retrying(exc: MirrorbotError) -> bool:
    """Another round can fix outages and cut streams, not a missing image or a lying registry."""
    if isinstance(exc, BackupError) and isinstance(exc.__cause__, MirrorbotError):
        return _worth_retrying(exc.__cause__)
    if isinstance(exc, RegistryUnreachableError | BlobIntegrityError):
        return True
    if not isinstance(exc, RegistryError):
        return False
    # MANIFEST_BLOB_UNKNOWN on a push: a concurrent writer touched a child; the next round finds it.
    # Not 401: the auth flow already fetched a fresh token; a refusal stays a refusal.
    return exc.temporary or exc.status == 408 or exc.has(ErrorCode.MANIFEST_BLOB_UNKNOWN)
