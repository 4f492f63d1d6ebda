"""The jinja2 environment for the Markdown mirrorbot publishes, and the filters it uses.

Built on first use: a run with nothing to publish never pays for importing jinja2.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2

__all__ = ["CODE_MAX", "code", "display_time", "format_when", "short_digest", "templates"]

CODE_MAX = 512
_PLAIN = re.compile(r"[A-Za-z0-9_.:/@+ …-]{0,512}")


def short_digest(digest: str) -> str:
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}:{hex_part[:8]}…"


def format_when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def display_time(iso: str) -> str:
    """``2026-11-23T03:04:05Z`` → ``2026-11-23 03:04 UTC``; anything else as it is."""
    if len(iso) == 20 and iso[10] == "T" and iso[19] == "Z":  # what mirrorbot writes: no parsing
        return f"{iso[:10]} {iso[11:16]} UTC"
    try:
        return format_when(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")))
    except ValueError:
        return code(iso)


def code(text: str) -> str:
    """Inline code safe in a Markdown table cell, whatever a state file holds."""
    if _PLAIN.fullmatch(text):  # every name that passed the reference grammar: the fast path
        return f"`{text}`"
    cleaned = " ".join(text.split())
    if len(cleaned) > CODE_MAX:  # only a hand-edited state file holds such text
        cleaned = cleaned[:CODE_MAX] + "…"
    cleaned = cleaned.replace("`", "'").replace("|", "\\|")
    return f"`{cleaned}`"


@cache
def templates() -> jinja2.Environment:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("mirrorbot", "templates"),
        autoescape=False,  # noqa: S701 - Markdown, not HTML; names are put in code spans (`code`)
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        auto_reload=False,  # packaged templates do not change while running: no stat per render
    )
    environment.filters["short"] = short_digest
    environment.filters["code"] = code
    return environment
