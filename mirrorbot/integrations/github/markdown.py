"""Untrusted text shown inertly in Markdown, and the request reply rendered from its template.

An issue's text is the requester's: a reply must never let it become a link,
a ``@mention``, HTML or an Actions expression. It appears only inside code
spans or fenced blocks that it cannot close (backticks neutralised, control
characters replaced, length bounded), and the whole reply is redacted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final

import jinja2

from mirrorbot.logs import redact

__all__ = ["DETAIL_LIMIT", "QUOTE_LIMIT", "code_block", "code_span", "render_reply"]

QUOTE_LIMIT: Final = 100
DETAIL_LIMIT: Final = 1000


def _printable(text: str) -> str:
    """Control and format characters (newlines, NUL, bidi overrides) become U+FFFD."""
    return "".join(
        "\N{REPLACEMENT CHARACTER}" if unicodedata.category(ch) in ("Cc", "Cf") else ch
        for ch in text
    )


def code_span(text: str, limit: int = QUOTE_LIMIT) -> str:
    """Untrusted text as one inert Markdown code span: bounded, one line, no backticks.

    Backticks become U+02CB so the span cannot be closed early; inside a code
    span GitHub renders no HTML, links, mentions or emphasis.
    """
    shown = _printable(text).replace("`", "\N{MODIFIER LETTER GRAVE ACCENT}")
    if len(shown) > limit:
        shown = shown[:limit] + "…"
    if not shown.strip():
        return "(empty)"
    return f"`{shown}`"


def code_block(text: str, limit: int = DETAIL_LIMIT) -> str:
    """Untrusted multi-line text as a fenced block that the text cannot close."""
    lines = [_printable(line) for line in text.splitlines()] or [""]
    shown = "\n".join(lines)
    if len(shown) > limit:
        shown = shown[:limit] + "…"
    longest = max((len(run) for run in re.findall(r"`+", shown)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{shown}\n{fence}"


_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("mirrorbot", "templates"),
    autoescape=False,  # noqa: S701 - Markdown, not HTML; untrusted text only through |code and |block
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)
_ENVIRONMENT.filters["code"] = code_span
_ENVIRONMENT.filters["block"] = code_block


def render_reply(secrets: Iterable[str], **values: object) -> str:
    """The request reply (``request_reply.md.j2``) with ``secrets`` redacted."""
    return redact(_ENVIRONMENT.get_template("request_reply.md.j2").render(**values), secrets)
