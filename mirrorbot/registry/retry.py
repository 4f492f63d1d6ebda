"""Retries through a predicate, never a catch-all.

``retry_hook`` is the single definition of "transient" for the whole engine:
temporary registry errors (by status or code) and network failures. A
``Retry-After`` header becomes the backoff.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
import stamina

from mirrorbot.registry.errors import RegistryError, RegistryUnreachableError

__all__ = ["MAX_RETRY_AFTER", "RetryPolicy", "retry_hook", "retrying"]

T = TypeVar("T")
MAX_RETRY_AFTER = 120.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try before an operation is reported failed."""

    attempts: int = 6
    timeout: float | None = 300.0
    wait_initial: float = 0.2
    wait_max: float = 30.0


def retry_hook(exc: Exception) -> bool | float:
    """Retry what is transient; honour ``Retry-After`` as the backoff."""
    if isinstance(exc, RegistryError):
        if not exc.temporary:
            return False
        if exc.retry_after is not None:
            return min(exc.retry_after, MAX_RETRY_AFTER)
        return True
    return isinstance(exc, httpx.TransportError) and not isinstance(
        exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError
    )


async def retrying(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    registry: str,
    reference: str | None,
) -> T:
    """Run ``operation`` until it succeeds or fails for good.

    Network errors that outlive the policy surface as
    :class:`RegistryUnreachableError`, naming the registry and reference.
    """
    try:
        async for attempt in stamina.retry_context(
            on=retry_hook,
            attempts=policy.attempts,
            timeout=policy.timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
        ):
            with attempt:
                return await operation()
    except httpx.TransportError as exc:
        raise RegistryUnreachableError(registry, reference, exc) from exc
    raise AssertionError("unreachable: stamina either returns or raises")
