"""Upstream-friendly pulls: a meter of manifest GETs per registry, and a run's manifest cache.

Docker Hub counts every manifest GET as a pull (HEAD is free) and says how many
are left in ``ratelimit-limit`` / ``ratelimit-remaining`` (``100;w=21600``).
A :class:`PullMeter` counts the GETs a run sends, reads those headers from every
answer, and refuses to *start* a GET that the budget or the registry's own
count says would be one too many: the image is then deferred to the next run
instead of meeting 429s. A :class:`ManifestCache` makes each digest cost one GET
per run however many tags point at it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from mirrorbot.engine.registry.media import Manifest
from mirrorbot.errors import PullBudgetError
from mirrorbot.reference import DOCKER_HUB

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "PULL_CLAIM",
    "ManifestCache",
    "PullClaim",
    "PullMeter",
    "PullUsage",
    "parse_ratelimit",
    "registry_label",
]

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
_MAX_DIGITS = 12  # a header value is hostile input: no 10,000-digit integers


def parse_ratelimit(value: str | None) -> int | None:
    """``100;w=21600`` → 100; anything else (absent, malformed, huge) → None."""
    if value is None:
        return None
    count = value.split(";", 1)[0].strip()
    if not count.isascii() or not count.isdigit() or len(count) > _MAX_DIGITS:
        return None
    return int(count)


def registry_label(registry: str) -> str:
    """How reports name a registry: Docker Hub by its name, others by host."""
    return "Docker Hub" if registry == DOCKER_HUB else registry


PULL_CLAIM = "mirrorbot.pull_claim"  # request extension: the claim a manifest GET holds


@dataclass(slots=True)
class PullClaim:
    """One GET counted against the budget, in flight until its answer (or failure)."""

    settled: bool = False


@dataclass(frozen=True, slots=True)
class PullUsage:
    """What a run spent on one registry, for the report."""

    registry: str
    used: int
    limit: int | None
    remaining: int | None

    @property
    def label(self) -> str:
        return registry_label(self.registry)

    def describe(self) -> str:
        """``Docker Hub pulls used: 37, remaining 163`` (remaining as the registry last said)."""
        text = f"{self.label} pulls used: {self.used}"
        if self.remaining is not None:
            text += f", remaining {self.remaining}"
            if self.limit is not None:
                text += f" of {self.limit}"
        return text


class PullMeter:
    """Manifest GETs sent to one registry in this run, and what it says is left.

    ``budget``: at most that many GETs per run (None: no own limit).
    ``reserve``: start no GET once the registry's ``ratelimit-remaining``,
    less the GETs still in flight, is at or below it.
    """

    def __init__(self, registry: str, *, budget: int | None = None, reserve: int = 0) -> None:
        self.registry = registry
        self.budget = budget
        self.reserve = reserve
        self.used = 0
        self.limit: int | None = None
        self.remaining: int | None = None
        self._in_flight = 0
        # The first count seen, and our claims it could not yet include: what is left
        # is then counted here, exactly, while nobody else pulls on the same quota.
        self._baseline: int | None = None
        self._claimed_before_baseline = 0
        self._claimed_at_remaining = 0  # our claims when the lowest count was seen

    @property
    def seen(self) -> bool:
        """Worth a report line: the registry sent rate-limit headers, or a budget applies."""
        return self.remaining is not None or (self.budget is not None and self.used > 0)

    def observe(self, response: httpx.Response) -> None:
        """Read ``ratelimit-*`` from any answer (HEADs carry them too, for free)."""
        remaining = parse_ratelimit(response.headers.get("ratelimit-remaining"))
        if remaining is not None:
            if self._baseline is None:
                self._baseline = remaining
                self._claimed_before_baseline = self.used - self._in_flight
            # The lowest count seen: answers to concurrent requests arrive out of order, and
            # a stale higher count must not let one GET too many start. (Hub's window is
            # 6 h; counts freed during the run wait for the next night.)
            if self.remaining is None or remaining < self.remaining:
                self.remaining = remaining
                self._claimed_at_remaining = self.used
        limit = parse_ratelimit(response.headers.get("ratelimit-limit"))
        if limit is not None:
            self.limit = limit

    async def on_response(self, response: httpx.Response) -> None:
        """A claimed GET's answer already counts itself in ``remaining``: no longer in flight."""
        claim = response.request.extensions.get(PULL_CLAIM)
        if isinstance(claim, PullClaim):
            self.release(claim)
        self.observe(response)

    def acquire(self, reference: str) -> PullClaim:
        """Claim one GET, or raise :class:`PullBudgetError` without sending it."""
        if self.budget is not None and self.used >= self.budget:
            raise PullBudgetError(
                self.registry,
                reference,
                f"{self.budget} pulls per run spent",
                shown_as=registry_label(self.registry),
            )
        if self.remaining is not None and self._left() <= self.reserve:
            left = f"{self.remaining} pulls left upstream, {self._in_flight} in flight"
            raise PullBudgetError(
                self.registry, reference, left, shown_as=registry_label(self.registry)
            )
        self.used += 1
        self._in_flight += 1
        return PullClaim()

    def _left(self) -> int:
        """Pulls left for new claims.

        Our own count since the first header (every claim since, in flight or not, is
        spent) is exact while nobody else pulls on this quota; the lowest count an
        answer gave, less our claims since, says when somebody does, and then wins.
        Subtracting every GET in flight from an answer's count instead would count
        twice those the registry had already counted when it answered a HEAD, and
        defer tags that had a pull left.
        """
        assert self._baseline is not None
        assert self.remaining is not None
        counted_here = self._baseline - (self.used - self._claimed_before_baseline)
        answered = self.remaining - (self.used - self._claimed_at_remaining)
        return min(counted_here, answered)

    def release(self, claim: PullClaim) -> None:
        """The claimed GET was answered (its headers observed) or failed; once per claim."""
        if not claim.settled:
            claim.settled = True
            self._in_flight -= 1

    def usage(self) -> PullUsage:
        return PullUsage(self.registry, self.used, self.limit, self.remaining)


class ManifestCache:
    """Manifests read this run, by (registry, digest): each costs one GET, however often asked.

    Bounded by total bytes (least recently used goes first); concurrent askers
    for one digest wait for the first one's GET instead of sending their own.
    Keyed by registry, not repository: a digest names exactly one byte string,
    and the caller has already seen it in the repository it reads (HEAD, or
    its parent index).
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[tuple[str, str], Manifest] = OrderedDict()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _hit(self, key: tuple[str, str]) -> Manifest | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def _store(self, key: tuple[str, str], manifest: Manifest) -> None:
        if manifest.size > self.max_bytes:
            return
        self._entries[key] = manifest
        self.size += manifest.size
        while self.size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size -= evicted.size

    async def get(
        self, registry: str, digest: str, fetch: Callable[[], Awaitable[Manifest]]
    ) -> Manifest:
        """The manifest ``digest`` of ``registry``: from memory, else ``fetch()`` once."""
        key = (registry, digest)
        if (hit := self._hit(key)) is not None:
            return hit
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if (hit := self._hit(key)) is not None:
                return hit
            manifest = await fetch()
            self._store(key, manifest)
        self._locks.pop(key, None)
        return manifest
