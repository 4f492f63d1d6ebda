"""Retries through a predicate, never a catch-all; breakers that stop asking.

``retry_hook`` is the single definition of "transient" for the whole engine:
temporary registry errors (by status or code) and network failures. A
``Retry-After`` header becomes the backoff. Each scheduled retry is logged by
mirrorbot (host, attempt, wait, reason) at INFO, seen with ``-v``.

Two breakers make a run stop asking a registry that will not answer: the
:class:`CircuitBreaker` after consecutive outages, the :class:`CredentialGuard`
at the first refusal of a credential. Either says why once, in one line.

Start-up (issue 16): nearly every operation succeeds at its first attempt, which
runs without stamina, so stamina (and tenacity below it) is imported at the
first failure; anyio's and h11's errors are named only once something (httpcore)
has loaded them, since none of them can exist before. A run without a failure
loads neither (≈ 20 ms of a no-op sync).
"""

from __future__ import annotations

import functools
import logging
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, NoReturn, TypeVar

import httpx

from mirrorbot.engine.registry.credentials import Credential
from mirrorbot.errors import (
    CredentialsRefusedError,
    MirrorbotError,
    ProtocolViolationError,
    RegistryDownError,
    RegistryError,
    RegistryUnreachableError,
    StreamInterruptedError,
    status_and_code,
)

if TYPE_CHECKING:
    import stamina

__all__ = [
    "MAX_RETRY_AFTER",
    "CircuitBreaker",
    "CredentialGuard",
    "RetryBudget",
    "RetryPolicy",
    "failure_cause",
    "protocol_failure",
    "retry_hook",
    "retrying",
]

T = TypeVar("T")
MAX_RETRY_AFTER = 120.0
log = logging.getLogger("mirrorbot.retry")
_ErrorTypes = tuple[type[Exception], ...]


def _leaked_network_errors() -> _ErrorTypes:
    """Network failures that httpx/httpcore normally wrap, should one ever leak through."""
    anyio = sys.modules.get("anyio")  # not loaded: none of its errors exists
    if anyio is None:
        return (ssl.SSLError, ConnectionError)
    return (
        anyio.BrokenResourceError,
        anyio.ClosedResourceError,
        anyio.EndOfStream,
        ssl.SSLError,
        ConnectionError,
    )


def _protocol_errors() -> _ErrorTypes:
    """Everything else httpx (or h11 below it) raises about an answer: a protocol failure."""
    answered = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)
    h11 = sys.modules.get("h11")  # not loaded: no h11.ProtocolError exists
    return answered if h11 is None else (*answered, h11.ProtocolError)


@functools.cache
def _stamina() -> ModuleType:
    """stamina, imported at the first failed attempt, its own retry hooks off.

    mirrorbot logs every scheduled retry itself (host, attempt, wait, reason);
    stamina's hooks would add a bare ``stamina.retry_scheduled`` line (through
    logging, or structlog when installed).
    """
    import stamina.instrumentation

    stamina.instrumentation.set_on_retry_hooks(())
    return stamina


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try before an operation is reported failed."""

    attempts: int = 6
    timeout: float | None = 300.0
    wait_initial: float = 0.2
    wait_max: float = 30.0


def retry_hook(exc: Exception) -> bool | float:
    """Retry what is transient; honour ``Retry-After`` as the backoff."""
    if isinstance(exc, StreamInterruptedError):
        return True  # a broken-off download starts again from the first byte
    if isinstance(exc, RegistryError):
        if not exc.temporary:
            return False
        if exc.retry_after is not None:
            return min(exc.retry_after, MAX_RETRY_AFTER)
        return True
    if isinstance(exc, _leaked_network_errors()):
        return True
    return isinstance(exc, httpx.TransportError) and not isinstance(
        exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError
    )


def protocol_failure(
    exc: BaseException, registry: str, reference: str | None
) -> MirrorbotError | None:
    """The typed error for an exception of the HTTP stack, or None when it is not one."""
    unreachable: _ErrorTypes = (httpx.TransportError, *_leaked_network_errors())
    if isinstance(exc, unreachable):
        return RegistryUnreachableError(registry, reference, exc)
    if isinstance(exc, _protocol_errors()):
        return ProtocolViolationError(registry, reference, f"{type(exc).__name__}: {exc}")
    return None


class RetryBudget:
    """Retries a whole run may spend, across every registry.

    A flapping network should slow a run down, not make it retry forever: once
    the budget is spent, failures are reported at their first occurrence.
    """

    def __init__(self, total: int | None = None) -> None:
        self.total = total
        self.spent = 0
        self._warned = False

    def spend(self) -> bool:
        if self.total is not None and self.spent >= self.total:
            if not self._warned:
                self._warned = True
                log.warning(
                    "retry budget of %d spent: failing without retries from now on", self.total
                )
            return False
        self.spent += 1
        return True


class CircuitBreaker:
    """Per registry: after ``threshold`` consecutive transient failures, fail fast.

    Any answer that proves the registry alive (success, or a definite error
    such as 404) closes the count again.
    """

    def __init__(self, registry: str, threshold: int | None = None) -> None:
        self.registry = registry
        self.threshold = threshold
        self.consecutive = 0
        self.tripped: RegistryDownError | None = None

    def check(self) -> None:
        if self.tripped is not None:
            raise self.tripped

    def record(self, error: Exception | None) -> None:
        if error is None or not _transient(error):
            self.consecutive = 0
            return
        self.consecutive += 1
        if (
            self.threshold is not None
            and self.consecutive >= self.threshold
            and self.tripped is None
        ):
            self.tripped = RegistryDownError(self.registry, self.consecutive, str(error))
            log.error("%s", self.tripped)


class CredentialGuard:
    """Per credential: once a registry refused it, every request with it fails at once.

    Refused means the registry said so about the credential itself (a token
    realm's 401, Basic credentials answered 401, Basic auth asked of an anonymous
    client), or a write (only ever to the mirror) was answered 401/403. A 401 on
    one repository's read is not: an anonymous token simply grants no access to
    a private or missing repository, and the others may still be readable.
    """

    def __init__(self, registry: str, credential: Credential) -> None:
        self.registry = registry
        self.credential = credential
        self.tripped: CredentialsRefusedError | None = None

    def check(self) -> None:
        if self.tripped is not None:
            raise self.tripped

    def judge(self, error: RegistryError, *, refused_by_auth: bool) -> MirrorbotError:
        """The error to raise for ``error``: itself, or the (first) refusal."""
        if error.status not in (401, 403):
            return error
        write = error.method in ("POST", "PUT", "PATCH")
        if not (refused_by_auth or write):
            return error
        if self.tripped is None:
            self.tripped = CredentialsRefusedError(self.registry, self.credential, error)
            log.error("%s", self.tripped)
        return self.tripped


def failure_cause(error: BaseException) -> str:
    """What failures share, for grouping: the code and the registry, never the URL."""
    if isinstance(error, CredentialsRefusedError):
        return f"{error.reason} at {error.registry}"
    if isinstance(error, RegistryDownError):
        return f"registry {error.registry} down"
    if isinstance(error, RegistryError):
        try:
            host = httpx.URL(error.url).netloc.decode("ascii", "replace")
        except (httpx.InvalidURL, TypeError):
            host = ""
        return status_and_code(error) + (f" at {host}" if host else "")
    if isinstance(error, RegistryUnreachableError):
        return f"{error.registry} unreachable"
    if isinstance(error, ProtocolViolationError):
        return f"{error.registry} broke the protocol"
    return ""


def _transient(error: Exception) -> bool:
    return isinstance(error, RegistryUnreachableError) or bool(retry_hook(error))


def _budgeted(
    budget: RetryBudget | None,
    announce: Callable[[Exception, bool | float], None],
    first: tuple[Exception, bool | float],
) -> Callable[[Exception], bool | float]:
    """stamina's predicate: ``retry_hook``, within the budget; ``first`` is already judged."""
    judged = [first]

    def hook(exc: Exception) -> bool | float:
        verdict = judged.pop()[1] if judged and judged[0][0] is exc else retry_hook(exc)
        if verdict is False or (budget is not None and not budget.spend()):
            return False
        announce(exc, verdict)
        return verdict

    return hook


def _reason(exc: Exception) -> str:
    """One line on why an attempt failed: the typed message, or the HTTP stack's."""
    text = str(exc) if isinstance(exc, MirrorbotError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:300]


async def retrying(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    registry: str,
    reference: str | None,
    budget: RetryBudget | None = None,
    breaker: CircuitBreaker | None = None,
) -> T:
    """Run ``operation`` until it succeeds or fails for good.

    Network errors that outlive the policy surface as
    :class:`RegistryUnreachableError`, naming the registry and reference.
    With a ``breaker``, a registry already declared down fails at once.
    """
    if breaker is not None:
        breaker.check()
    current: list[stamina.Attempt] = []

    def announce(exc: Exception, verdict: bool | float) -> None:
        """mirrorbot's own retry line (stamina's hooks are off: :func:`_stamina`)."""
        if not current or current[-1].num >= policy.attempts:
            return  # the last attempt: what failed is reported, not retried
        attempt = current[-1]
        wait = verdict if not isinstance(verdict, bool) else attempt.next_wait
        what = reference or registry
        what = what if what.startswith(registry) else f"{registry} {what}"  # the host first
        reason = _reason(exc).removeprefix(f"{reference}: ")
        tried = f"attempt {attempt.num} of {policy.attempts}"
        log.info("%s: %s failed, retrying in %.1f s: %s", what, tried, wait, reason)

    # The first attempt runs outside stamina: nearly every operation succeeds at once, and
    # entering a retry context costs more CPU than a registry request (bench/README.md,
    # issue 16 round 2). A transient failure is replayed as stamina's first attempt (judged
    # once), so the predicate, the budget, the retry lines and the waits are exactly as
    # before; any other failure ends the operation at once, as stamina would.
    started = time.monotonic()
    try:
        result = await operation()
    except Exception as exc:
        verdict = retry_hook(exc)
        if verdict is False:  # stamina would give up at once: not even imported
            _give_up(exc, registry, reference, breaker)
        replay: list[Exception] = [exc]
        first = (exc, verdict)
    else:
        if breaker is not None:
            breaker.record(None)
        return result

    async def again() -> T:
        if replay:
            raise replay.pop()
        return await operation()

    timeout = policy.timeout
    if timeout is not None:  # the whole policy's time still counts from the first attempt
        timeout = max(timeout - (time.monotonic() - started), 0.001)
    try:
        async for attempt in _stamina().retry_context(
            on=_budgeted(budget, announce, first),
            attempts=policy.attempts,
            timeout=timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
        ):
            current[:] = [attempt]
            with attempt:
                result = await again()
                if breaker is not None:
                    breaker.record(None)
                return result
    except Exception as exc:
        _give_up(exc, registry, reference, breaker)
    raise AssertionError("unreachable: stamina either returns or raises")


def _give_up(
    exc: Exception, registry: str, reference: str | None, breaker: CircuitBreaker | None
) -> NoReturn:
    """Raise what an operation failed with for good, as the breaker records it."""
    error = protocol_failure(exc, registry, reference)
    if error is None:
        # A source that broke off inside a target's upload is not the target's failure.
        if breaker is not None and getattr(exc, "registry", registry) == registry:
            breaker.record(exc)
        raise exc
    # Typed, naming the registry: never a traceback from the HTTP stack.
    if breaker is not None:
        breaker.record(error)
    raise error from exc
