"""Registry answers turned into typed errors: the 64 KiB-bounded body, the spec's error codes.

The error types themselves are in :mod:`mirrorbot.errors`; this is the HTTP half that
needs httpx, so that importing the hierarchy costs nothing.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import time

import httpx

from mirrorbot.errors import Diagnostic, RegistryError

__all__ = [
    "MAX_ERROR_BODY",
    "parse_retry_after",
    "redact_url",
    "registry_error_from_response",
]

MAX_ERROR_BODY = 64 * 1024


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²": str.isdigit is Unicode-wide
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: HTTP dates are GMT, not local time
        when = when.replace(tzinfo=datetime.UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _parse_diagnostics(body: bytes) -> tuple[Diagnostic, ...]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # 64 KiB of "[" is deep
        return ()
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list):
        return ()
    found = []
    for entry in errors:
        if isinstance(entry, dict) and isinstance(entry.get("code"), str):
            message = entry.get("message")
            found.append(
                Diagnostic(
                    entry["code"], message if isinstance(message, str) else "", entry.get("detail")
                )
            )
    return tuple(found)


def redact_url(url: httpx.URL) -> str:
    """A URL fit for messages: no userinfo, no query (upload ``_state`` tokens live there)."""
    return str(url.copy_with(query=None, fragment=None, username=None, password=None))


async def registry_error_from_response(
    response: httpx.Response, reference: str | None
) -> RegistryError:
    """Build the typed error, reading at most 64 KiB of the body."""
    body = bytearray()
    try:
        body += response.content[:MAX_ERROR_BODY]
    except httpx.ResponseNotRead:
        if not response.is_stream_consumed:
            # Decoded bytes: a gzip-encoded JSON error body is still parsed.
            async for chunk in response.aiter_bytes():
                body += chunk[: MAX_ERROR_BODY - len(body)]
                if len(body) >= MAX_ERROR_BODY:
                    break
        await response.aclose()
    excerpt = bytes(body[:MAX_ERROR_BODY]).decode("utf-8", "replace")
    return RegistryError(
        status=response.status_code,
        method=response.request.method,
        url=redact_url(response.request.url),
        reference=reference,
        diagnostics=_parse_diagnostics(bytes(body)),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        body_excerpt=excerpt if not excerpt.lstrip().startswith("{") else "",
    )
