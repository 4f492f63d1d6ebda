"""Pydantic's validation errors, as one :class:`ConfigError` a person can act on.

The first problem in file order wins, located by its key path and its line in
the YAML (:func:`mirrorbot.config.yamlio.line_of`). Messages never include
the input value (it may be a secret); an unknown key gets a "did you mean".
"""

from __future__ import annotations

import difflib
from typing import Final

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from mirrorbot.config.document import Config
from mirrorbot.config.sections import (
    Filters,
    KeepSettings,
    MirrorSettings,
    NamespaceSettings,
    RegistrySettings,
    RequestSettings,
    StateSettings,
)
from mirrorbot.config.yamlio import line_of
from mirrorbot.errors import ConfigError, Location

__all__ = ["located_error"]


_MODEL_AT: Final[dict[tuple[str, ...], type[BaseModel]]] = {
    (): Config,
    ("mirror",): MirrorSettings,
    ("state",): StateSettings,
    ("defaults",): Filters,
    ("defaults", "keep"): KeepSettings,
    ("namespaces", "#"): NamespaceSettings,
    ("namespaces", "#", "keep"): KeepSettings,
    ("registries", "*"): RegistrySettings,
    ("requests",): RequestSettings,
}


def _model_at(location: Location) -> type[BaseModel] | None:
    """The model whose keys are allowed at ``location`` (for "did you mean")."""
    shape: list[str] = []
    for index, part in enumerate(location):
        if isinstance(part, int):
            shape.append("#")
        elif index == 1 and location[0] == "registries":
            shape.append("*")
        else:
            shape.append(part)
    return _MODEL_AT.get(tuple(shape))


_MESSAGES: Final = {
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "bool_type": "expected true or false",
    "string_type": "expected a string (quote the value if YAML read it as something else)",
    "dict_type": "expected a mapping of keys",
    "model_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
    "missing": "required key is missing",
}


def _describe(error: ErrorDetails) -> str:
    """A message for one pydantic error; never includes the input value."""
    kind = error["type"]
    location = tuple(error["loc"])
    if kind == "extra_forbidden" and location:
        unknown = str(location[-1])
        model = _model_at(location[:-1])
        allowed = sorted(model.model_fields) if model is not None else []
        message = f"unknown key {unknown!r}"
        close = difflib.get_close_matches(unknown, allowed, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif allowed:
            message += f" (allowed: {', '.join(allowed)})"
        return message
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind == "literal_error" and "ctx" in error:
        return f"expected one of {error['ctx'].get('expected', '')}"
    message = error["msg"]
    return message.removeprefix("Value error, ")


def located_error(exc: ValidationError, root: object, filename: str) -> ConfigError:
    """The first problem in file order, located.

    Missing keys come last: a misspelt key yields both "unknown key" and
    "missing", and the unknown one (with its suggestion) is the useful one.
    """
    located: list[tuple[bool, int, int, Location, ErrorDetails]] = []
    for error in exc.errors(include_input=False, include_url=False):
        location = tuple(part for part in error["loc"] if part != "[key]")
        line = line_of(root, location)
        located.append((error["type"] == "missing", line or 0, len(located), location, error))
    _, line, _, location, error = min(located, key=lambda item: item[:3])
    return ConfigError(_describe(error), path=filename, line=line or None, location=location)
