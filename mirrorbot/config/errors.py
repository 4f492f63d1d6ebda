"""Config errors, importable without pydantic or YAML: the CLI catches them on every path."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from mirrorbot.errors import MirrorbotError

__all__ = ["ConfigError", "Location", "format_key"]

Location = tuple[str | int, ...]


def format_key(location: Sequence[object]) -> str:
    """``("namespaces", 1, "include", 0)`` → ``namespaces[1].include[0]``.

    Keys that are not identifier-like (registry hosts) are quoted so the path
    stays unambiguous: ``registries["docker.io"].password``.
    """
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(str(part))}]"
    return text


class ConfigError(MirrorbotError):
    """The configuration is unusable: where (file, line, key) and why.

    ``str(err)`` is ``path:line: key: message``; parts that are unknown are left out.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        line: int | None = None,
        key: str = "",
        location: Location = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.location: Location = tuple(location)
        self.key = key or format_key(self.location)

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return ": ".join(part for part in (where, self.key, self.message) if part)
