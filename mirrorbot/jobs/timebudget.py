"""A whole-run time budget, so a nightly ends well inside its CI job's limit.

Per-request timeouts bound one wait; they do not bound a run that is merely
slow everywhere (an upstream trickling at 1 byte/s within every timeout, a
first sync of 5,000 tags). Past the budget no new copy starts and what
finished is recorded and published; the run exits 1, and the next run picks
up the rest. Copies still in flight get a grace period (a tenth of the
budget, at most ten minutes) to finish, then are abandoned.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MAX_GRACE", "TimeBudget", "format_duration", "parse_duration"]

MAX_GRACE = 600.0
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?")


def parse_duration(text: str) -> float:
    """Seconds from ``5h``, ``90m``, ``1h30m``, ``45s`` or a bare number of seconds."""
    value = text.strip().lower()
    match = _DURATION.fullmatch(value)
    if not value or match is None or not any(match.groups()):
        raise ValueError(f"{text!r}: expected a duration such as 5h, 90m, 1h30m or 3600")
    hours, minutes, seconds = match.groups()
    total = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
    if total <= 0:
        raise ValueError(f"{text!r}: a time budget must be longer than zero")
    return total


def format_duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:g} s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class TimeBudget:
    """``seconds`` from ``started`` (event-loop time); ``None`` means unlimited."""

    seconds: float | None = None
    started: float = 0.0

    @classmethod
    def start(cls, seconds: float | None) -> TimeBudget:
        return cls(seconds, asyncio.get_running_loop().time())

    @property
    def deadline(self) -> float | None:
        """For :func:`asyncio.timeout_at`: ``None`` never expires."""
        return None if self.seconds is None else self.started + self.seconds

    @property
    def grace(self) -> float:
        return 0.0 if self.seconds is None else min(self.seconds / 10, MAX_GRACE)

    def describe(self) -> str:
        return (
            "the time budget"
            if self.seconds is None
            else (f"the time budget of {format_duration(self.seconds)}")
        )

    async def watch(self, expired: Callable[[], None], grace_over: Callable[[], None]) -> None:
        """Call ``expired`` at the deadline and ``grace_over`` after the grace period."""
        if self.deadline is None:
            return
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, self.deadline - loop.time()))
        expired()
        await asyncio.sleep(self.grace)
        grace_over()
