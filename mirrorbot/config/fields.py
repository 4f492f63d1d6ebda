"""Field checks and field types of ``mirrorbot.yaml``: what one value may be, alone.

Each check raises ``ValueError`` with a readable reason that never quotes a
value that may be a secret (URLs); pydantic turns it into a located
:class:`~mirrorbot.errors.ConfigError` (:mod:`mirrorbot.config.diagnostics`).
Rules that span several keys live with the model (:mod:`mirrorbot.config.document`).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, WithJsonSchema

from mirrorbot.config.regex import MAX_PATTERN_LENGTH, check_tag_regex
from mirrorbot.domain.backups import check_template as check_backup_template
from mirrorbot.domain.naming import check_template
from mirrorbot.errors import ConfigError, InvalidReferenceError
from mirrorbot.reference import (
    looks_like_host,
    normalize_registry,
    parse_reference,
    split_registry,
    validate_repository,
)

__all__ = [
    "MAX_REGEX_LENGTH",
    "BackupTemplate",
    "BaseUrl",
    "BranchName",
    "Host",
    "MirrorNamespace",
    "NameTemplate",
    "NonEmpty",
    "Platform",
    "Regex",
    "RepositoryName",
    "Separator",
    "Source",
    "StatePath",
    "check_host",
    "split_source",
]

MAX_REGEX_LENGTH: Final = MAX_PATTERN_LENGTH


def check_host(value: str) -> str:
    """A registry host (``gcr.io``, ``localhost:5000``), lowercased, Hub aliases → docker.io."""
    host = normalize_registry(value.lower())
    registry, _ = split_registry(f"{host}/probe")
    try:
        parsed = parse_reference(f"{host}/probe", default_tag=None)
    except InvalidReferenceError as exc:
        raise ValueError(f"invalid registry host {value!r}: {exc.reason}") from None
    if registry != host or parsed.registry != host:
        raise ValueError(
            f"{value!r} is not a registry host (a host has a '.', a ':port' or is 'localhost')"
        )
    return host


def split_source(source: str) -> tuple[str, str]:
    """``gcr.io/google-containers`` → ``("gcr.io", "google-containers")``.

    A bare host (``registry.k8s.io``) is a whole registry (path ``""``); a bare
    name (``bitnami``) is a Docker Hub namespace, following Docker's rule for
    the first component (:func:`mirrorbot.reference.split_registry`).
    Raises ``ValueError`` with a readable reason.
    """
    if not source or source != source.strip():
        raise ValueError("a namespace source must be non-empty and without spaces")
    if "/" not in source and looks_like_host(source):
        registry, path = source, ""
    else:
        registry, path = split_registry(source)
        if not path:
            raise ValueError(f"invalid namespace source {source!r}: nothing after the '/'")
    registry = check_host(registry)
    if path:
        try:
            validate_repository(path)
        except InvalidReferenceError as exc:
            raise ValueError(
                f"invalid namespace source {source!r} (expected registry/path): {exc.reason}"
            ) from None
    return registry, path


def _check_source(value: str) -> str:
    split_source(value)
    return value


def _check_repository(value: str) -> str:
    try:
        return validate_repository(value)
    except InvalidReferenceError as exc:
        raise ValueError(f"invalid repository name {value!r}: {exc.reason}") from None


def _check_mirror_namespace(value: str) -> str:
    try:
        return validate_repository(value)
    except InvalidReferenceError as exc:
        raise ValueError(f"invalid mirror namespace {value!r}: {exc.reason}") from None


_PLATFORM_COMPONENT = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
_PLATFORM_RE = re.compile(
    rf"{_PLATFORM_COMPONENT}/{_PLATFORM_COMPONENT}(?:/{_PLATFORM_COMPONENT})?"
)


def _check_platform(value: str) -> str:
    if _PLATFORM_RE.fullmatch(value) is None:
        raise ValueError(
            f"platform {value!r} is not os/arch[/variant] in lowercase (e.g. linux/arm64/v8)"
        )
    return value


def _check_template(value: str) -> str:
    try:
        check_template(value)
    except ConfigError as exc:
        raise ValueError(exc.message) from None
    return value


def _check_url(value: str) -> str:
    """An http(s) base URL without credentials, query or fragment; trailing '/' dropped."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")  # the value is not echoed: it may hold a token
    if parts.username is not None or parts.password is not None:
        raise ValueError("the URL must not contain credentials (use registries: instead)")
    if parts.query or parts.fragment:
        raise ValueError("a base URL has no query or fragment")
    return value.rstrip("/")


def _check_state_path(value: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value:
        raise ValueError(f"{value!r} must be a relative folder inside the state repo, without '..'")
    return value


_BRANCH_BAD = re.compile(r"(?:^[-/.]|\.\.|//|@\{|[\x00-\x20~^:?*\[\\\x7f]|/$|\.lock$|\.$)")


def _check_branch(value: str) -> str:
    if not value or _BRANCH_BAD.search(value):
        raise ValueError(f"{value!r} is not a valid git branch name")
    return value


def _check_nonempty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


# --------------------------------------------------------------------------- field types

Host = Annotated[str, AfterValidator(check_host)]
Regex = Annotated[
    str,
    AfterValidator(check_tag_regex),  # RE2: linear-time matching (mirrorbot.config.regex)
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": MAX_REGEX_LENGTH,
            "description": "An RE2 regex (Go's syntax) that must match the whole tag.",
        }
    ),
]
Platform = Annotated[
    str,
    AfterValidator(_check_platform),
    WithJsonSchema({"type": "string", "pattern": f"^{_PLATFORM_RE.pattern}$"}),
]
RepositoryName = Annotated[str, AfterValidator(_check_repository)]
NameTemplate = Annotated[str, AfterValidator(_check_template)]
BackupTemplate = Annotated[str, AfterValidator(check_backup_template)]  # mirrorbot.domain.backups
Separator = Literal["_", "-", ".", "__", "/"]
Source = Annotated[str, AfterValidator(_check_source)]
MirrorNamespace = Annotated[str, AfterValidator(_check_mirror_namespace)]
BaseUrl = Annotated[str, AfterValidator(_check_url)]
StatePath = Annotated[str, AfterValidator(_check_state_path)]
BranchName = Annotated[str, AfterValidator(_check_branch)]
NonEmpty = Annotated[str, AfterValidator(_check_nonempty)]
