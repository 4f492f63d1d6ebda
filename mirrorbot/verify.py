"""``mirrorbot verify``: does the mirror still hold every tag state claims, with that digest?"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from mirrorbot.reference import parse_reference
from mirrorbot.registry.errors import MirrorbotError
from mirrorbot.registry.pool import RegistryPool
from mirrorbot.state.store import NamespaceState

__all__ = ["Drift", "verify_states"]


@dataclass(frozen=True, slots=True)
class Drift:
    reference: str
    expected: str
    found: str | None  # None: the tag is gone from the mirror
    error: str | None = None

    def describe(self) -> str:
        if self.error:
            return f"{self.reference}: could not check: {self.error}"
        if self.found is None:
            return f"{self.reference}: missing from the mirror (state records {self.expected})"
        return f"{self.reference}: mirror has {self.found}, state records {self.expected}"


async def verify_states(
    states: Iterable[NamespaceState], pool: RegistryPool, *, concurrency: int = 16
) -> tuple[int, list[Drift]]:
    """HEAD every recorded tag in the mirror. Returns (tags checked, drifts)."""
    slots = asyncio.Semaphore(concurrency)
    drifts: list[Drift] = []
    checks = [
        (entry.target, tag, record.digest)
        for state in states
        for entry in state.images.values()
        for tag, record in entry.tags.items()
    ]

    async def check(target: str, tag: str, expected: str) -> None:
        reference = f"{target}:{tag}"
        parsed = parse_reference(reference)
        async with slots:
            try:
                found = await pool.client(parsed.registry).manifest_head(parsed.repository, tag)
            except MirrorbotError as exc:
                drifts.append(Drift(reference, expected, None, str(exc)))
                return
        if found is None or found.digest != expected:
            drifts.append(Drift(reference, expected, found.digest if found else None))

    await asyncio.gather(*(check(*item) for item in checks))
    return len(checks), sorted(drifts, key=lambda d: d.reference)
