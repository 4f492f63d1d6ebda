"""Upstream → mirror repository names: one pure mapping, validated, collision-checked.

A mirror such as ``docker.io/gcrxio`` is flat: every upstream repository of every
namespace lands in one target namespace, so the mapping must be total (every
upstream name renders to a valid repository) and injective (no two upstream
repositories share a mirror name). Both are checked here, without I/O.

Placeholders of a name template:

- ``{registry}``: the upstream registry host as one path component: lowercased,
  every run of characters other than ``[a-z0-9]`` (the ``.`` of ``gcr.io``, the
  ``:`` before a port, IPv6 brackets) becomes one ``-``: ``gcr.io`` → ``gcr-io``,
  ``localhost:5000`` → ``localhost-5000``. A dash rather than the separator keeps
  the host one component whatever the separator (``/`` would split it).
- ``{namespace}``: the upstream namespace path (``google-containers``). For a
  registry-root source (``registry.k8s.io``, whose images sit at the root) it is
  empty and takes one separator next to it (``/``, ``_``, ``-`` or ``.``) along:
  ``{namespace}/{repo}`` renders ``pause``, ``{registry}/{namespace}/{repo}``
  ``registry-k8s-io/pause``, never a name with a leading or doubled separator.
- ``{repo}``: the repository path below the namespace (``pause``, ``etcd/backup``).

After rendering, every ``/`` left in the name becomes the separator (Docker Hub
has no nesting) unless the separator is ``/`` itself.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

from mirrorbot.errors import ConfigError, InvalidReferenceError, NameCollisionError
from mirrorbot.reference import upstream_name, validate_repository

__all__ = [
    "PLACEHOLDERS",
    "SEPARATORS",
    "check_collisions",
    "check_template",
    "find_collisions",
    "mirror_repository",
    "registry_component",
]

PLACEHOLDERS = ("registry", "namespace", "repo")
SEPARATORS = ("_", "-", ".", "__", "/")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
# Stands for an empty {namespace} while rendering; never part of a valid name.
_EMPTY = "\x00"
_EMPTY_AND_SEPARATOR = re.compile(r"^\x00[/_.-]?|[/_.-]?\x00")


def check_template(template: str) -> frozenset[str]:
    """Return the placeholders used; reject unknown ones, format specs and a missing ``{repo}``.

    Without ``{repo}`` every repository of a namespace would get the same name.
    """
    used: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"name template {template!r} is malformed: {exc}") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            shown = "{" + field + "}"
            raise ConfigError(
                f"name template {template!r} uses unknown placeholder {shown}; "
                "allowed: {registry}, {namespace}, {repo}"
            )
        if spec or conversion:
            raise ConfigError(
                f"name template {template!r}: placeholders take no format spec or conversion"
            )
        used.add(field)
    if "repo" not in used:
        raise ConfigError(
            f"name template {template!r} must contain {{repo}}, "
            "or every repository of a namespace gets the same name"
        )
    return frozenset(used)


def registry_component(registry: str) -> str:
    """The registry host as one repository path component (see the module docstring)."""
    return _NOT_ALNUM.sub("-", registry.lower()).strip("-")


def mirror_repository(
    template: str,
    *,
    mirror_namespace: str,
    source_registry: str,
    source_path: str,
    repo: str,
    separator: str,
) -> str:
    """Render the mirror repository (``namespace/name``, without registry) for one upstream repo.

    Raises :class:`ConfigError` when the template is bad or the result is not a
    valid repository name, naming the upstream repository it failed for.
    """
    check_template(template)
    if separator not in SEPARATORS:
        raise ConfigError(
            f"separator {separator!r} is not one of " + ", ".join(repr(s) for s in SEPARATORS)
        )
    rendered = template.format_map(
        {
            "registry": registry_component(source_registry),
            "namespace": source_path or _EMPTY,
            "repo": repo,
        }
    )
    if not source_path:
        rendered = _EMPTY_AND_SEPARATOR.sub("", rendered)
    if separator != "/":
        rendered = rendered.replace("/", separator)
    target = f"{mirror_namespace}/{rendered}"
    try:
        validate_repository(target)
    except InvalidReferenceError as exc:
        upstream = upstream_name(source_registry, source_path, repo)
        raise ConfigError(
            f"name template {template!r} renders {upstream} as {target!r}, "
            f"which is not a valid repository name: {exc.reason}"
        ) from None
    return target


def find_collisions(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """``(upstream_a, upstream_b, mirror)`` for every mirror name claimed by two upstreams.

    ``pairs`` are ``(upstream, mirror)``. The same upstream listed twice is not a
    collision. ``upstream_a`` is the first claimer, in input order.
    """
    first: dict[str, str] = {}
    found: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str, str]] = set()
    for upstream, mirror in pairs:
        owner = first.setdefault(mirror, upstream)
        if owner != upstream and (owner, upstream, mirror) not in seen:
            seen.add((owner, upstream, mirror))
            found.append((owner, upstream, mirror))
    return found


def check_collisions(pairs: Iterable[tuple[str, str]]) -> None:
    """Raise :class:`NameCollisionError` for the first mirror name claimed twice."""
    collisions = find_collisions(pairs)
    if collisions:
        raise NameCollisionError(*collisions[0])
