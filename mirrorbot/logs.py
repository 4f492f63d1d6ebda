"""Logging that cannot leak a secret.

Only mirrorbot's logger reaches stderr (stamina's retry lines are replaced
by mirrorbot's own). Every handler mirrorbot installs carries a
:class:`RedactingFilter` that masks, through the one redaction layer (:mod:`mirrorbot.redact`), every registered
secret and anything that looks like a credential in the final message,
arguments and tracebacks included.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from mirrorbot.redact import REDACTED, redact, register

__all__ = ["REDACTED", "RedactingFilter", "configure_logging", "redact", "secret_filter"]


class RedactingFilter(logging.Filter):
    """Redacts each record in place; :meth:`add` registers secrets process-wide."""

    def add(self, secrets: Iterable[str]) -> None:
        register(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at the time of writing: a live progress display swaps it
    for a proxy that prints above the display, and log lines must follow."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(verbose: bool = False) -> RedactingFilter:
    """Send mirrorbot's log to stderr; returns the filter to register secrets with."""
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_FILTER)
    root = logging.getLogger("mirrorbot")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    root.propagate = False
    _quiet_stamina()
    if verbose:
        for noisy in ("httpx", "httpcore"):
            # Request lines name URLs; never headers. Keep httpcore's wire traces off.
            logging.getLogger(noisy).handlers[:] = [handler]
        logging.getLogger("httpx").setLevel(logging.INFO)
    return _FILTER


def _quiet_stamina() -> None:
    """Retries are logged by mirrorbot (host, attempt, wait, reason; see
    :mod:`mirrorbot.engine.registry.retry`, which also switches stamina's retry hooks off
    when it first imports stamina): stamina's own bare ``stamina.retry_scheduled``
    lines would reach stderr through logging's last-resort handler."""
    quiet = logging.getLogger("stamina")
    quiet.handlers[:] = [logging.NullHandler()]
    quiet.propagate = False


def secret_filter() -> RedactingFilter:
    return _FILTER
