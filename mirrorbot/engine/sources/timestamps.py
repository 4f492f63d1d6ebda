"""RFC 3339 times from upstream (Hub ``last_updated``, an image config's ``created``), parsed warily.

Both are untrusted text: at most :data:`MAX_LENGTH` characters, ASCII, with a
zone (a time without one says nothing comparable); fractions beyond
microseconds (Go writes nanoseconds) are cut, not refused. Anything else is
``None``: no time, which ranks a tag below every tag with one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["MAX_LENGTH", "parse_timestamp"]

MAX_LENGTH = 64
_SHAPE = re.compile(
    r"(?P<main>\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d{1,12}))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})"
)


def parse_timestamp(value: object) -> datetime | None:
    """``2024-05-01T12:00:00.123456789Z`` as an aware UTC datetime; None for anything else."""
    if not isinstance(value, str) or len(value) > MAX_LENGTH or not value.isascii():
        return None
    match = _SHAPE.fullmatch(value)
    if match is None:
        return None
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    zone = "+00:00" if match["zone"] in ("Z", "z") else match["zone"]
    try:
        parsed = datetime.fromisoformat(f"{match['main'].replace(' ', 'T')}.{fraction}{zone}")
    except ValueError:
        return None
    if parsed.year < 1971:
        return None  # reproducible builds write the epoch: "unknown", not "oldest"
    return parsed.astimezone(UTC)
