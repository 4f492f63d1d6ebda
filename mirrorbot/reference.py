"""Image references: parsed once, purely, into frozen values.

The grammar is the one of distribution/reference, with Docker Hub's
normalisation (``busybox`` → ``docker.io/library/busybox``) so that every
later stage can compare references as plain values.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from mirrorbot.errors import InvalidReferenceError

__all__ = [
    "DOCKER_HUB",
    "NAME_TOTAL_MAX",
    "Reference",
    "is_loopback_host",
    "looks_like_host",
    "normalize_registry",
    "parse_reference",
    "split_registry",
    "split_tag",
    "upstream_name",
    "validate_digest",
    "validate_repository",
    "validate_tag",
]

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
)
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # ASCII only: not \w
_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_SHA256_HEX_RE = re.compile(r"[a-f0-9]{64}")
_SHA512_HEX_RE = re.compile(r"[a-f0-9]{128}")
NAME_TOTAL_MAX = 255


def validate_repository(path: str) -> str:
    """Return ``path`` if it is a valid repository path (without registry)."""
    if not path:
        raise InvalidReferenceError(path, "empty repository name")
    if _REPOSITORY_RE.fullmatch(path) is None:
        if path != path.lower():
            raise InvalidReferenceError(path, "repository names must be lowercase")
        raise InvalidReferenceError(
            path, "repository components are [a-z0-9] separated by '.', '_', '__' or '-'"
        )
    if len(path) > NAME_TOTAL_MAX:
        raise InvalidReferenceError(path, f"repository name longer than {NAME_TOTAL_MAX}")
    return path


def validate_tag(tag: str) -> str:
    if _TAG_RE.fullmatch(tag) is None:
        raise InvalidReferenceError(
            tag, "tags are [A-Za-z0-9_.-], at most 128, not starting with . or -"
        )
    return tag


def validate_digest(digest: str) -> str:
    if _DIGEST_RE.fullmatch(digest) is None:
        raise InvalidReferenceError(digest, "digests look like sha256:<64 hex>")
    algorithm, _, hex_part = digest.partition(":")
    if algorithm == "sha256" and _SHA256_HEX_RE.fullmatch(hex_part) is None:
        raise InvalidReferenceError(digest, "sha256 digests have 64 lowercase hex digits")
    if algorithm == "sha512" and _SHA512_HEX_RE.fullmatch(hex_part) is None:
        raise InvalidReferenceError(digest, "sha512 digests have 128 lowercase hex digits")
    if algorithm not in ("sha256", "sha512"):
        raise InvalidReferenceError(digest, f"unsupported digest algorithm {algorithm!r}")
    return digest


def _validate_registry(registry: str, original: str) -> str:
    if _DOMAIN_RE.fullmatch(registry) is None:
        raise InvalidReferenceError(original, f"invalid registry host {registry!r}")
    return registry


def is_loopback_host(registry: str) -> bool:
    """True for ``localhost`` and 127.0.0.0/8 (and ::1), with or without a port."""
    host = registry
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_registry(registry: str) -> str:
    return DOCKER_HUB if registry.lower() in _HUB_ALIASES else registry


@dataclass(frozen=True, slots=True)
class Reference:
    """A fully qualified image reference: registry, repository, tag and/or digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository``, the thing a tag or digest is attached to."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What to ask the registry for: the digest when known, else the tag."""
        if self.digest is not None:
            return self.digest
        return self.tag or "latest"

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, validate_tag(tag), None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, None, validate_digest(digest))

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def looks_like_host(component: str) -> bool:
    """Docker's rule for a name's first component: a host has a ``.``, a ``:port``, is
    ``localhost`` or an IPv6 literal (``[::1]:5000``); anything else is a Docker Hub path."""
    return (
        "." in component
        or ":" in component
        or component == "localhost"
        or component.startswith("[")
    )


def split_registry(value: str) -> tuple[str, str]:
    """Split ``host/path`` into (registry, path) with Docker's rule for the first component."""
    first, sep, rest = value.partition("/")
    if sep and looks_like_host(first):
        return normalize_registry(first), rest
    return DOCKER_HUB, value


def upstream_name(registry: str, *path: str) -> str:
    """``registry/namespace/repo`` as people write it; empty parts (a registry root) are dropped.

    The one way an upstream name is built: namespaces, their repositories, listings.
    """
    return "/".join(part for part in (registry, *path) if part)


def split_tag(value: str) -> tuple[str, str | None]:
    """``name[:tag]`` → (name, tag): a colon before the last ``/`` is a registry's port, not a tag."""
    last_slash = value.rfind("/")
    colon = value.rfind(":")
    if colon > last_slash:
        return value[:colon], value[colon + 1 :]
    return value, None


def parse_reference(value: str, *, default_tag: str | None = "latest") -> Reference:
    """Parse ``[registry/]repo[/more][:tag][@digest]``.

    Docker Hub names are normalised (``busybox`` → ``docker.io/library/busybox``).
    With neither tag nor digest, ``default_tag`` is used (``None`` keeps it bare).
    """
    if not value or value != value.strip():
        raise InvalidReferenceError(value, "empty or surrounded by whitespace")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in value):
        raise InvalidReferenceError(value, "control characters or spaces")
    remainder = value
    digest: str | None = None
    if "@" in remainder:
        remainder, _, digest = remainder.partition("@")
        try:
            validate_digest(digest)
        except InvalidReferenceError as exc:
            raise InvalidReferenceError(value, exc.reason) from None
    remainder, tag = split_tag(remainder)
    if tag is not None:
        try:
            validate_tag(tag)
        except InvalidReferenceError as exc:
            raise InvalidReferenceError(value, exc.reason) from None
    registry, path = split_registry(remainder)
    _validate_registry(registry, value)
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    try:
        validate_repository(path)
    except InvalidReferenceError as exc:
        raise InvalidReferenceError(value, exc.reason) from None
    if len(f"{registry}/{path}") > NAME_TOTAL_MAX:
        raise InvalidReferenceError(value, f"name longer than {NAME_TOTAL_MAX} characters")
    if tag is None and digest is None:
        tag = default_tag
    return Reference(registry, path, tag, digest)
