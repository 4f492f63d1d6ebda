"""image-syncer rule files, read as they are: ``images.yaml`` / ``auth.yaml`` (or JSON).

Rules map a source to one destination or a list of them::

    quay.io/coreos/kube-rbac-proxy: quay.io/ruohe/kube-rbac-proxy          # all tags
    quay.io/coreos/kube-rbac-proxy:v1.0,v2.0: quay.io/ruohe/kube-rbac-proxy # these tags
    quay.io/coreos/kube-rbac-proxy:/a+/: quay.io/ruohe/kube-rbac-proxy     # tags containing a match (RE2)
    quay.io/coreos/kube-rbac-proxy@sha256:…: quay.io/ruohe/kube-rbac-proxy  # one digest
    quay.io/coreos/kube-rbac-proxy:v1.1: [quay.io/ruohe/a, quay.io/ruohe/b] # several targets
    quay.io/coreos/kube-rbac-proxy:v1.0: quay.io/ruohe/proxy:stable         # retag (counts match)
    quay.io/coreos/kube-rbac-proxy: ""     # default registry/namespace (--registry/--namespace)
    registry.local:5000/app:v1: registry.local:5000/copy  # registry/repository, no namespace

Auth entries are keyed by ``registry`` or ``registry/namespace``; the longest
match wins; ``${VAR}``/``$VAR`` expand from the environment, and an unset
one expands to "" with a warning naming it (as image-syncer does).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirrorbot.config.regex import TagRegex, compile_tag_regex
from mirrorbot.config.yamlio import line_of, load_yaml, to_plain
from mirrorbot.engine.registry.credentials import Credential, expand_env
from mirrorbot.errors import ConfigError, CredentialError, InvalidReferenceError, TagRegexError
from mirrorbot.reference import (
    Reference,
    parse_reference,
    split_registry,
    validate_digest,
    validate_tag,
)

__all__ = [
    "AuthEntry",
    "Destination",
    "Rule",
    "load_auth",
    "load_rules",
    "parse_rules",
]

MAX_FILE = 1024 * 1024

log = logging.getLogger("mirrorbot.imagesyncer")


@dataclass(frozen=True, slots=True)
class Destination:
    repository: Reference  # registry + repository, no tag
    tags: tuple[str, ...] = ()  # empty: keep the source tags
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One key of images.yaml: a source repository, which of its tags, and where to."""

    key: str
    source: Reference  # registry + repository, no tag
    tags: tuple[str, ...] = ()  # explicit tags; empty with no regex and no digest means all
    regex: TagRegex | None = None  # RE2, unanchored (search) as in image-syncer
    digest: str | None = None
    destinations: tuple[Destination, ...] = ()

    @property
    def all_tags(self) -> bool:
        return not self.tags and self.regex is None and self.digest is None


@dataclass(frozen=True, slots=True)
class AuthEntry:
    prefix: str  # "quay.io" or "quay.io/coreos"
    credential: Credential
    insecure: bool = False


def _load_document(path: Path, what: str) -> tuple[Any, dict[str, int]]:
    """The file as plain data, and the line of each top-level key (YAML only).

    YAML goes through the guarded loader (:mod:`mirrorbot.config.yamlio`).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file: {exc.strerror}", path=str(path)) from None
    if len(raw) > MAX_FILE:
        raise ConfigError(f"the {what} file is larger than {MAX_FILE} bytes", path=str(path))
    text = raw.decode("utf-8", "replace")
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text), {}
        except ValueError as exc:
            raise ConfigError(f"not valid JSON: {exc}", path=str(path)) from None
        except RecursionError:
            raise ConfigError("not valid JSON: nested too deeply", path=str(path)) from None
    try:
        tree = load_yaml(text, path=str(path), max_bytes=MAX_FILE)
        document = to_plain(tree)
    except ConfigError as exc:
        exc.path = exc.path or str(path)
        raise
    lines = {}
    if isinstance(document, dict):
        lines = {key: line for key in document if (line := line_of(tree, (key,))) is not None}
    return document, lines


def _split_selector(key: str) -> tuple[str, str | None, str | None]:
    """``name[:tags|:/regex/][@digest]`` → (name, tag part, digest)."""
    name, _, digest = key.partition("@")
    tag_part: str | None = None
    regex_start = name.find(":/")
    if regex_start != -1 and name.endswith("/") and regex_start < len(name) - 2:
        return name[:regex_start], name[regex_start + 1 :], digest or None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag_part = name[:colon], name[colon + 1 :]
    return name, tag_part, digest or None


def _repository(name: str, key: str, where: str) -> Reference:
    """``registry/repository`` (image-syncer's documented short form) or deeper; the registry is explicit."""
    needs = (
        f"{where} {name!r} needs a registry: registry/repository or registry/namespace/repository"
    )
    if "/" not in name.strip("/"):
        raise ConfigError(needs, key=key)
    try:
        reference = parse_reference(name, default_tag=None)
    except InvalidReferenceError as exc:
        raise ConfigError(f"{where} {name!r}: {exc.reason}", key=key) from None
    registry, _ = split_registry(name)
    if reference.registry != registry:
        raise ConfigError(needs, key=key)
    return reference


def _tags(part: str, key: str) -> tuple[str, ...]:
    tags = tuple(t.strip() for t in part.split(","))
    for tag in tags:
        try:
            validate_tag(tag)
        except InvalidReferenceError as exc:
            raise ConfigError(f"tag {tag!r}: {exc.reason}", key=key) from None
    return tags


def _destination(
    value: str,
    rule_source: Reference,
    rule_tags: int,
    rule_digest: str | None,
    key: str,
    default: tuple[str, str] | None,
) -> Destination:
    if not value.strip():
        if default is None:
            raise ConfigError(
                "an empty destination needs a default registry and namespace "
                "(--registry and --namespace, or DEFAULT_REGISTRY and DEFAULT_NAMESPACE)",
                key=key,
            )
        registry, namespace = default
        repository_name = rule_source.repository.rsplit("/", 1)[-1]
        return Destination(Reference(registry, f"{namespace}/{repository_name}"))
    name, tag_part, digest = _split_selector(value.strip())
    repository = _repository(name, key, "destination")
    if digest is not None:
        try:
            validate_digest(digest)
        except InvalidReferenceError as exc:
            raise ConfigError(f"destination digest: {exc.reason}", key=key) from None
        if digest != rule_digest:
            raise ConfigError(
                f"digest mismatch: the destination asks for {digest} but the source is "
                f"{rule_digest or 'not a digest'}; a copy cannot change a digest",
                key=key,
            )
    tags: tuple[str, ...] = ()
    if tag_part is not None:
        if tag_part.startswith("/"):
            raise ConfigError("a destination cannot be a regular expression", key=key)
        tags = _tags(tag_part, key)
        source_count = rule_tags if rule_digest is None else 1
        if rule_tags == 0 and rule_digest is None:
            raise ConfigError(
                "tag count mismatch: the source selects all (or matching) tags, so the "
                f"destination cannot name tags ({len(tags)} given)",
                key=key,
            )
        if len(tags) != source_count:
            raise ConfigError(
                f"tag count mismatch: {source_count} source tag(s) but {len(tags)} destination tag(s)",
                key=key,
            )
    return Destination(repository, tags, digest)


def parse_rules(
    document: Any,
    *,
    default: tuple[str, str] | None = None,
    filename: str = "images.yaml",
    lines: Mapping[str, int] | None = None,
) -> list[Rule]:
    """Every rule of an images file, validated; errors name the rule (and its line, from ``lines``)."""
    if document is None:
        return []
    if not isinstance(document, Mapping):
        raise ConfigError("the images file must map sources to destinations", path=filename)
    rules: list[Rule] = []
    for raw_key, raw_value in document.items():
        key = str(raw_key).strip()
        try:
            rules.append(_rule(key, raw_value, default))
        except ConfigError as exc:
            line = (lines or {}).get(str(raw_key))
            raise ConfigError(exc.message, path=filename, line=line, key=key) from None
    return rules


def _rule(key: str, value: Any, default: tuple[str, str] | None) -> Rule:
    if not key:
        raise ConfigError("a source cannot be empty", key=key)
    name, tag_part, digest = _split_selector(key)
    source = _repository(name, key, "source")
    tags: tuple[str, ...] = ()
    regex: TagRegex | None = None
    if digest is not None:
        try:
            validate_digest(digest)
        except InvalidReferenceError as exc:
            raise ConfigError(f"source digest: {exc.reason}", key=key) from None
        if tag_part is not None:
            raise ConfigError("a source has tags or a digest, not both", key=key)
    elif (
        tag_part is not None
        and tag_part.startswith("/")
        and tag_part.endswith("/")
        and len(tag_part) > 2
    ):
        try:
            regex = compile_tag_regex(tag_part[1:-1])
        except TagRegexError as exc:
            raise ConfigError(str(exc), key=key) from None
    elif tag_part is not None:
        tags = _tags(tag_part, key)
    values = value if isinstance(value, list | tuple) else [value]
    if not values:
        raise ConfigError("no destination", key=key)
    destinations = []
    for entry in values:
        if entry is None:
            entry = ""
        if not isinstance(entry, str):
            raise ConfigError("destinations are strings (or a list of strings)", key=key)
        destinations.append(_destination(entry, source, len(tags), digest, key, default))
    return Rule(key, source, tags, regex, digest, tuple(destinations))


def load_rules(path: Path, *, default: tuple[str, str] | None = None) -> list[Rule]:
    document, lines = _load_document(path, "images")
    return parse_rules(document, default=default, filename=str(path), lines=lines)


def load_auth(path: Path, environ: Mapping[str, str] | None = None) -> list[AuthEntry]:
    """Auth entries by prefix, longest first (so the first match is the best one)."""
    document, lines = _load_document(path, "auth")
    if document is None:
        return []
    if not isinstance(document, Mapping):
        raise ConfigError("the auth file must map registries to credentials", path=str(path))
    entries: list[AuthEntry] = []
    for raw_key, value in document.items():
        try:
            entries.append(_auth_entry(raw_key, value, environ, path))
        except ConfigError as exc:
            exc.line = lines.get(str(raw_key))
            raise
    return sorted(entries, key=lambda e: len(e.prefix), reverse=True)


def _auth_entry(
    raw_key: object, value: object, environ: Mapping[str, str] | None, path: Path
) -> AuthEntry:
    """One ``registry[/namespace]: {username, password, insecure}`` entry, validated."""
    prefix = str(raw_key).strip().rstrip("/")
    registry, rest = split_registry(prefix) if "/" in prefix else (prefix, "")
    prefix = f"{registry}/{rest}" if rest else registry
    if not isinstance(value, Mapping):
        raise ConfigError(
            "an auth entry holds username, password and insecure", path=str(path), key=prefix
        )
    unknown = set(value) - {"username", "password", "insecure"}
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}", path=str(path), key=prefix)
    try:
        username = _expand(str(value.get("username") or ""), environ, f"{prefix}.username")
        password = _expand(str(value.get("password") or ""), environ, f"{prefix}.password")
    except CredentialError as exc:
        raise ConfigError(str(exc), path=str(path), key=prefix) from None
    insecure = value.get("insecure", False)
    if not isinstance(insecure, bool):
        raise ConfigError("insecure must be true or false", path=str(path), key=prefix)
    credential = Credential(username, password, origin=f"{prefix} in {path.name}")
    return AuthEntry(prefix, credential, insecure)


class _Unset(Mapping[str, str]):
    """The environment, where an unset name reads as "" and is remembered (image-syncer's way)."""

    def __init__(self, environ: Mapping[str, str] | None) -> None:
        self._env = os.environ if environ is None else environ
        self.missing: list[str] = []

    def __getitem__(self, name: str) -> str:
        if name not in self._env:
            self.missing.append(name)
            return ""
        return self._env[name]

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


def _expand(value: str, environ: Mapping[str, str] | None, where: str) -> str:
    """``expand_env``, except that an unset variable is "" with one warning line.

    As in ``expand_env``, ``${NAME}`` is named (braces say it is a name) and a
    bare ``$NAME`` only when it is the whole value (image-syncer's documented
    form): inside a longer value it may be part of a literal password.
    """
    env = _Unset(environ)
    expanded = expand_env(value, env, where=where)
    if "$$" in value:  # a deliberate difference: say so once, at startup
        log.warning(
            "%s: `$$` is a literal `$` in mirrorbot; image-syncer would expand it to nothing",
            where,
        )
    for name in dict.fromkeys(env.missing):
        named = f"${{{name}}}" in value or value.strip() == f"${name}"
        shown = name if named else "a $NAME"
        log.warning(
            "%s: environment variable %s is not set; it expands to an empty value, "
            "as image-syncer does",
            where,
            shown,
        )
    return expanded


def credential_for(entries: list[AuthEntry], registry: str, repository: str) -> AuthEntry | None:
    """The longest ``registry[/namespace]`` prefix matching ``registry/repository``."""
    name = f"{registry}/{repository}"
    for entry in entries:
        if name == entry.prefix or name.startswith(entry.prefix + "/"):
            return entry
    return None
