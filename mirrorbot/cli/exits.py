"""Exit codes and the error → exit code mapping of every command, in one place.

Contract (every command): 0 success, 1 some namespaces or tags failed, 2 usage or
config error (a flag that does not apply included), 130 interrupted. A command
never prints a traceback for an error mirrorbot raises on purpose: it prints ONE
redacted ``error:`` line and exits with the code chosen here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import typer

from mirrorbot.errors import ConfigError, MirrorbotError
from mirrorbot.redact import redact

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "exit_codes",
    "exit_on",
    "fail",
    "interrupted",
    "opened",
]

_T = TypeVar("_T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def fail(message: str, code: int) -> typer.Exit:
    """Print one ``error:`` line; the caller raises the returned exit."""
    # One line, whatever the cause quoted (git's stderr, a registry's error page that
    # may echo our Authorization header): redacted before it is joined.
    typer.echo(f"error: {' '.join(redact(message).split())}", err=True)
    return typer.Exit(code)


@contextmanager
def exit_on(code: int, *errors: type[Exception], prefix: str = "") -> Iterator[None]:
    """One of ``errors`` raised inside: one line (``prefix`` + its message), exit ``code``."""
    try:
        yield
    except errors as exc:
        raise fail(f"{prefix}{exc}", code) from None


@contextmanager
def exit_codes() -> Iterator[None]:
    """Config errors are usage errors (2); every other mirrorbot error is a failed run (1)."""
    try:
        yield
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    except MirrorbotError as exc:
        raise fail(str(exc), EXIT_FAILED) from None


def opened(config: Path, opener: Callable[[Path], _T]) -> _T:
    """``opener(config)``; a config, file or state repository problem is a usage error (2)."""
    try:
        return opener(config)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    except FileNotFoundError:
        raise fail(f"{config}: no such config file", EXIT_USAGE) from None
    except MirrorbotError as exc:
        raise fail(str(exc), EXIT_USAGE) from None


@contextmanager
def interrupted() -> Iterator[None]:
    """Ctrl-C (or SIGINT from a runner) anywhere in a command: exit 130, no traceback."""
    try:
        yield
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
