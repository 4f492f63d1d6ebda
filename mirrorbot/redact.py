"""The one redaction layer: every byte mirrorbot prints or writes passes through here.

Two kinds of masking, both replacing with :data:`REDACTED`:

- **Known secrets.** Registered as soon as they are known (config load, a
  credential lookup, a token fetched from a realm) with :func:`register`.
  Each is masked in every form a program might echo it in: as is, base64
  (standard and URL-safe, padded or not), URL-encoded and JSON-escaped.
  Credentials register ``base64(user:password)`` themselves (the Basic form).
  Values shorter than :data:`MIN_SECRET` characters are not masked on their own:
  a 3-character password would turn every "abc" in a report into ``***``. Their
  Basic form is long, and an ``Authorization`` value is masked by pattern anyway.
- **Anything that looks like a credential**, known or not (a registry's error
  page echoing the request): the value of an ``Authorization`` header in any
  dump style (``Authorization: Basic …``, ``"Authorization": ["Bearer …"]``,
  ``map[Authorization:[…]]``), ``Basic <base64 of user:password>``,
  ``Bearer <token of 16+ characters>``, JWTs (``eyJ….….…``) and
  ``token=``/``password=``/``"access_token": "…"`` pairs.

Masking is per call: a secret split across two separate writes is not seen.
Every writer in mirrorbot hands over whole lines or documents.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import sys
import threading
from collections.abc import Iterable
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

__all__ = [
    "MIN_SECRET",
    "REDACTED",
    "RedactingStream",
    "Redactor",
    "guard_standard_streams",
    "redact",
    "redact_data",
    "register",
    "secret_forms",
]

REDACTED = "***"
MIN_SECRET = 4  # shorter values would mask ordinary words

_HEADER = re.compile(
    r"""(?ix)
    (\b(?:proxy-)?authorization\b["']?\s*[:=]\s*[\[("']*\s*)  # the name, then : or =, quoting
    ((?:basic|bearer|token|digest|negotiate)\s+)?             # the scheme, kept
    [^\s"'\\\]),;}<>]+                                        # the credential
    """
)
_SCHEME = re.compile(r"(?i)\b(basic|bearer)(\s+)([A-Za-z0-9._~+/-]+=*)")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]*)?")
_KEYED = re.compile(
    r"""(?ix)
    (\b(?:(?:access_|refresh_|id_)?token|identitytoken|passw(?:or)?d|secret)
    ["']?\s*(?:=|:\s*["']))                                   # token=… or "token": "…
    [^\s"'\\&,;}\]]+
    """
)
_MIN_BEARER = 16  # "Bearer realm=…", "bearer authentication" are words, not tokens


def secret_forms(secret: str) -> set[str]:
    """The ways ``secret`` may appear in output: raw, base64, URL-encoded, JSON-escaped."""
    if len(secret) < MIN_SECRET:
        return set()
    raw = secret.encode("utf-8", "surrogatepass")
    found = {secret, quote(secret, safe=""), quote_plus(secret, safe=""), json.dumps(secret)[1:-1]}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        found.update((text, text.rstrip("=")))
    return {form for form in found if len(form) >= MIN_SECRET}


def _is_basic_credential(text: str) -> bool:
    """Whether ``text`` is base64 of ``user:password`` (what follows ``Basic``)."""
    padded = text + "=" * (-len(text) % 4)
    try:
        decoded = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


def _scheme(match: re.Match[str]) -> str:
    scheme, space, value = match.groups()
    if scheme.lower() == "bearer" and len(value) >= _MIN_BEARER:
        return f"{scheme}{space}{REDACTED}"
    if scheme.lower() == "basic" and _is_basic_credential(value):
        return f"{scheme}{space}{REDACTED}"
    return match.group(0)


class Redactor:
    """Known secrets plus the credential patterns; thread-safe, cheap when nothing changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secrets: Iterable[str | None]) -> None:
        with self._lock:
            before = len(self._forms)
            for secret in secrets:
                if secret:
                    self._forms.update(secret_forms(secret))
            if len(self._forms) != before:
                ordered = sorted(self._forms, key=len, reverse=True)  # longest form wins
                self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def redact(self, text: str, extra: Iterable[str] = ()) -> str:
        """``text`` with every known secret (and ``extra``) and credential pattern masked."""
        if not text:
            return text
        extras = {form for secret in extra if secret for form in secret_forms(secret)}
        if extras:
            ordered = sorted(extras, key=len, reverse=True)
            text = re.sub("|".join(map(re.escape, ordered)), REDACTED, text)
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{REDACTED}", text)
        text = _SCHEME.sub(_scheme, text)
        text = _JWT.sub(REDACTED, text)
        return _KEYED.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


_REDACTOR = Redactor()


def register(secrets: Iterable[str | None]) -> None:
    """Make these values (and their encoded forms) unprintable for the rest of the process."""
    _REDACTOR.add(secrets)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` fit for output: registered secrets, ``secrets`` and credential patterns masked."""
    return _REDACTOR.redact(text, secrets)


def redact_data(value: Any) -> Any:
    """A JSON-like document with every string (keys included) redacted, before it is dumped."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(key): redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


class RedactingStream(io.TextIOBase):
    """A text stream that redacts every write before passing it on.

    It has no ``buffer``: nobody can go around it with bytes.
    """

    def __init__(self, wrapped: TextIO) -> None:
        super().__init__()
        self._wrapped = wrapped

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._wrapped, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._wrapped, "errors", None)

    @property
    def wrapped(self) -> TextIO:
        return self._wrapped

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._wrapped.write(redact(text))
        return len(text)

    def flush(self) -> None:
        if not getattr(self._wrapped, "closed", False):
            self._wrapped.flush()

    def isatty(self) -> bool:
        return self._wrapped.isatty()

    def fileno(self) -> int:
        return self._wrapped.fileno()

    def close(self) -> None:
        # Closing stdout/stderr is the interpreter's business; leave the wrapped stream open.
        self.flush()


def guard_standard_streams() -> None:
    """Route ``sys.stdout`` and ``sys.stderr`` through the redactor (tracebacks included)."""
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)
