"""``mirrorbot.yaml``: loaded once, validated completely, frozen.

Every problem is a :class:`ConfigError` that names the file, the 1-based line
and the key path (``namespaces[1].include[0]``), because the person fixing it
is looking at the YAML, not at a Python traceback.

How a file becomes a :class:`Config`:

1. Files over 1 MiB are refused before parsing.
2. The YAML event stream is scanned first: **aliases (``*name``) are refused**
   (a config never needs them, and refusing them makes "billion laughs" bombs
   impossible), and so are documents of more than :data:`MAX_NODES` nodes.
3. ruamel.yaml's round-trip loader builds the tree, keeping line numbers.
4. The tree becomes plain data (sequences → tuples).
5. Pydantic models in strict mode validate it (strict, so ``"yes"`` or ``1`` is
   not silently a boolean); each pydantic error location is mapped back to the
   line through the ruamel tree. Cross-field rules (strategies, duplicates,
   name rendering and collisions) run in the :class:`Config` validator.
6. String values under ``registries:`` (only there: that is where secrets live)
   may name environment variables: ``${VAR}`` / ``$VAR``, ``$$`` is a literal
   ``$`` and any other ``$`` is an error, checked here. They are **not
   expanded here**: the config keeps the raw text, and
   :func:`mirrorbot.config.credentials.resolve_credentials` expands them when a command
   builds its registry pool, for the registries it talks to, as that command
   needs them (a writer requires them, a reader does without). So structure
   errors always come first, and ``plan``/``find``/``verify`` run without the
   push secrets. No error quotes a value: an unset ``${VAR}`` is named, an
   unset bare ``$VAR`` is not (``pa$sword`` may be a literal password).

Tag filters (``include``, ``exclude``, ``mutable``) are RE2 regexes (Go's
syntax, linear-time matching: :mod:`mirrorbot.config.regex`) with *full-match*
semantics: ``latest`` matches only ``latest``, ``v1.*`` is needed for a prefix.
Patterns longer than 1000 characters, more than 100 per list, and constructs
RE2 lacks (look-arounds, backreferences) are refused. A namespace's ``include``/``exclude``/``platforms``/
``mutable``/``signatures``/``keep`` *replace* the ``defaults`` value, they do not extend it.
``keep: {newest: N, by: semver|uploaded}`` is applied after the filters (:mod:`mirrorbot.domain.keep`).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, MappingStartEvent, ScalarEvent, SequenceStartEvent
from ruamel.yaml.scalarbool import ScalarBoolean

from mirrorbot.config.credentials import Need, resolve_credentials
from mirrorbot.config.regex import (
    MAX_PATTERN_LENGTH,
    MAX_PATTERNS,
    TagRegex,
    check_tag_regex,
    compile_tag_regexes,
)
from mirrorbot.domain.backups import check_template as check_backup_template
from mirrorbot.domain.keep import KeepOrder, KeepRule
from mirrorbot.domain.naming import check_template, find_collisions, mirror_repository
from mirrorbot.engine.registry.credentials import Credential, expand_env
from mirrorbot.errors import (
    ConfigError,
    CredentialError,
    InvalidReferenceError,
    Location,
    NameCollisionError,
)
from mirrorbot.reference import (
    DOCKER_HUB,
    looks_like_host,
    normalize_registry,
    parse_reference,
    split_registry,
    upstream_name,
    validate_repository,
)

__all__ = [
    "DEFAULT_HUB_API",
    "DEFAULT_REQUEST_REGISTRIES",
    "MAX_CONFIG_BYTES",
    "MAX_NODES",
    "MAX_REGEX_LENGTH",
    "STRATEGIES",
    "Config",
    "Filters",
    "KeepSettings",
    "MirrorSettings",
    "NamespaceSettings",
    "NetworkSettings",
    "ReferrersSettings",
    "RegistrySettings",
    "RequestSettings",
    "ResolvedNamespace",
    "StateSettings",
    "config_json_schema",
    "credentials_from_config",
    "guess_strategy",
    "load_config",
    "parse_config",
    "split_source",
]

MAX_CONFIG_BYTES: Final = 1024 * 1024
MAX_NODES: Final = 100_000
MAX_REGEX_LENGTH: Final = MAX_PATTERN_LENGTH
DEFAULT_HUB_API: Final = "https://hub.docker.com"
STRATEGIES: Final = ("catalog", "gcr", "dockerhub", "images", "storage")
SCHEMA_URI: Final = "https://json-schema.org/draft/2020-12/schema"

Strategy = Literal["catalog", "gcr", "dockerhub", "images", "storage", "quay"]


# --------------------------------------------------------------------------- value checks


def _check_host(value: str) -> str:
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
    registry = _check_host(registry)
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


# --------------------------------------------------------------------------- models

Host = Annotated[str, AfterValidator(_check_host)]
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

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)


class MirrorSettings(BaseModel):
    """Where mirrored images go and how they are named there."""

    model_config = _STRICT

    registry: Host = Field(default=DOCKER_HUB, description="Target registry host.")
    namespace: Annotated[str, AfterValidator(_check_mirror_namespace)] = Field(
        description="Target user, organisation or project (e.g. gcrxio)."
    )
    name: NameTemplate = Field(
        default="{repo}",
        description="Target repository name; placeholders {registry} {namespace} {repo}.",
    )
    separator: Separator = Field(
        default="_",
        description='Replaces every "/" left in the rendered name (Docker Hub has no nesting).',
    )


class StateSettings(BaseModel):
    """Where the state JSON files are kept in git."""

    model_config = _STRICT

    repo: Annotated[str, AfterValidator(_check_nonempty)] = Field(
        default=".",
        description='Git metadata repo: "." (this repo), a path, or a clone URL.',
    )
    path: Annotated[str, AfterValidator(_check_state_path)] = Field(
        default="state", description="Folder inside the state repo."
    )
    branch: Annotated[str, AfterValidator(_check_branch)] = Field(
        default="main", description="Branch the state is committed to."
    )


class KeepSettings(BaseModel):
    """Mirror only the newest N selected image tags of each repository (mutable tags always)."""

    model_config = _STRICT

    newest: int = Field(ge=1, description="How many image tags of each repository to mirror.")
    by: KeepOrder = Field(
        default="semver",
        description="semver: releases newest first, pre-releases below releases; uploaded: "
        "the listing's upload time (gcr's timeUploadedMs), else semver with a warning.",
    )

    def rule(self) -> KeepRule:
        return KeepRule(self.newest, self.by)


ArtifactType = Annotated[
    str,
    StringConstraints(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
    ),
]


class ReferrersSettings(BaseModel):
    """OCI 1.1 referrers (SBOMs, signatures, attestations with a ``subject``) of each copied image."""

    model_config = _STRICT

    enabled: bool = Field(
        default=False,
        description="Ask the referrers API (or read the sha256-<hex> fallback tag) for every "
        "copied image and copy what refers to it.",
    )
    types: tuple[ArtifactType, ...] = Field(
        default=(),
        max_length=MAX_PATTERNS,
        description="artifactType values to copy, e.g. application/spdx+json; empty means all.",
    )


class Filters(BaseModel):
    """Tag and platform selection, the defaults every namespace inherits."""

    model_config = _STRICT

    include: tuple[Regex, ...] = Field(
        default=(),
        max_length=MAX_PATTERNS,
        description="Tag regexes (RE2 syntax, full match); empty means every tag.",
    )
    exclude: tuple[Regex, ...] = Field(
        default=(),
        max_length=MAX_PATTERNS,
        description="Tag regexes (RE2 syntax, full match) never copied.",
    )
    platforms: tuple[Platform, ...] = Field(
        default=(), description="os/arch[/variant] to keep, e.g. linux/amd64; empty means all."
    )
    mutable: tuple[Regex, ...] = Field(
        default=("latest",),
        max_length=MAX_PATTERNS,
        description="Tag regexes (RE2 syntax, full match) whose digest is re-checked every run.",
    )
    signatures: bool = Field(
        default=True,
        description="Also copy cosign sha256-<hex>.sig/.att/.sbom tags and the referrers "
        "fallback tag sha256-<hex> of every mirrored image.",
    )
    referrers: ReferrersSettings = Field(
        default_factory=ReferrersSettings, description="OCI 1.1 referrers of copied images."
    )
    keep: KeepSettings | None = Field(
        default=None, description="Only the newest N image tags of each repository; unset: all."
    )
    backup: BackupTemplate | None = Field(
        default=None,
        description="Before a moved mutable tag is overwritten, keep the mirror's old image "
        "under this tag, e.g. {tag}-{date}-{short} (date: YYYYMMDD the old image was mirrored; "
        "short: 12 hex of its digest).",
    )
    prune: bool = Field(
        default=False,
        description="Delete from the mirror the tags gone upstream (never one a backup shares).",
    )


class NamespaceSettings(BaseModel):
    """One upstream namespace to mirror; filter keys override the defaults."""

    model_config = _STRICT

    source: Annotated[str, AfterValidator(_check_source)] = Field(
        description="Upstream registry/path, e.g. gcr.io/google-containers, or a bare "
        "registry host with list: images."
    )
    list: Strategy | None = Field(
        default=None,
        description="Listing strategy; default guessed from the host (gcr.io and *.pkg.dev: "
        "gcr, docker.io: dockerhub, quay.io: quay, else catalog; images when an images list "
        "is given).",
    )
    images: tuple[RepositoryName, ...] = Field(
        default=(), description="Repositories below the source, for list: images."
    )
    hub_api: Annotated[str, AfterValidator(_check_url)] | None = Field(
        default=None, description=f"Docker Hub web API base URL (default {DEFAULT_HUB_API})."
    )
    quay_api: Annotated[str, AfterValidator(_check_url)] | None = Field(
        default=None,
        description="For list: quay, the Quay API base URL (default: the registry itself, "
        "e.g. https://quay.io).",
    )
    path: Annotated[str, AfterValidator(_check_nonempty)] | None = Field(
        default=None,
        description="For list: storage, a Distribution storage root (its rootdirectory) or a "
        ".tar/.tar.gz of it; relative to this file. source then names the registry it was.",
    )
    include: tuple[Regex, ...] | None = Field(
        default=None, max_length=MAX_PATTERNS, description="Overrides defaults.include."
    )
    exclude: tuple[Regex, ...] | None = Field(
        default=None, max_length=MAX_PATTERNS, description="Overrides defaults.exclude."
    )
    platforms: tuple[Platform, ...] | None = Field(
        default=None, description="Overrides defaults.platforms."
    )
    mutable: tuple[Regex, ...] | None = Field(
        default=None, max_length=MAX_PATTERNS, description="Overrides defaults.mutable."
    )
    signatures: bool | None = Field(default=None, description="Overrides defaults.signatures.")
    keep: KeepSettings | None = Field(default=None, description="Overrides defaults.keep.")
    backup: BackupTemplate | None = Field(default=None, description="Overrides defaults.backup.")
    prune: bool | None = Field(default=None, description="Overrides defaults.prune.")
    referrers: ReferrersSettings | None = Field(
        default=None, description="Overrides defaults.referrers."
    )
    name: NameTemplate | None = Field(
        default=None, description="Overrides mirror.name for this namespace."
    )


class RegistrySettings(BaseModel):
    """Credentials and transport for one registry host; ${VAR} expands from the environment."""

    model_config = _STRICT

    username: str | None = Field(default=None, description="User name.")
    password: str | None = Field(
        default=None, repr=False, description="Password or access token (use ${VAR})."
    )
    identity_token: str | None = Field(
        default=None, repr=False, description="OAuth identity (refresh) token (use ${VAR})."
    )
    insecure: bool = Field(
        default=False,
        description="Plain HTTP / unverified TLS (localhost and 127.0.0.0/8 are plain "
        "HTTP anyway).",
    )


class NetworkSettings(BaseModel):
    """How hard and how wide a run pushes: timeouts, retries, concurrency."""

    model_config = _STRICT

    connect_timeout: float = Field(default=15.0, gt=0, le=300, description="Seconds to connect.")
    read_timeout: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Seconds without a byte before a transfer counts as stalled and is retried.",
    )
    request_deadline: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds a small request (manifest, listing page, token) may take in total; "
        "also the span over which a blob download must keep min_transfer_rate.",
    )
    min_transfer_rate: int = Field(
        default=10 * 1024,
        ge=0,
        description="Bytes per second a blob download must average over every "
        "request_deadline span, or it fails (0: no minimum).",
    )
    retries: int = Field(default=6, ge=1, le=20, description="Attempts per request.")
    retry_budget: int = Field(
        default=1000,
        ge=0,
        description="Retries the whole run may spend; past it, failures are reported at once.",
    )
    circuit_breaker: int = Field(
        default=20,
        ge=1,
        description="Consecutive failed operations after which a registry is declared down "
        "for the rest of the run (one message instead of thousands).",
    )
    time_budget: float | None = Field(
        default=18000.0,
        gt=0,
        description="Seconds a sync may run (default 5 h, inside GitHub's 6 h job limit); past "
        "it no copy starts, what finished is published and the run exits 1. null: no limit.",
    )
    image_concurrency: int = Field(default=4, ge=1, le=64, description="Images copied at once.")
    blob_concurrency: int = Field(default=8, ge=1, le=64, description="Blobs streamed at once.")
    pull_budget: int | None = Field(
        default=None,
        ge=0,
        description="Manifest GETs (what Docker Hub counts as pulls) a run may send to each "
        "registry; past it, tags needing one are deferred to the next run (not failed). "
        "null: no own limit.",
    )
    pull_reserve: int = Field(
        default=0,
        ge=0,
        description="Start no manifest GET once the registry's ratelimit-remaining header "
        "(Docker Hub) is at or below this: the rest is deferred to the next run, not 429'd.",
    )


DEFAULT_REQUEST_REGISTRIES: Final = (
    "gcr.io",
    "quay.io",
    "registry.k8s.io",
    "ghcr.io",
    "docker.io",
    "public.ecr.aws",
    "mcr.microsoft.com",
    "k8s.gcr.io",
)


class RequestSettings(BaseModel):
    """How ``mirrorbot request`` treats namespace requests opened as GitHub issues."""

    model_config = _STRICT

    allowed_registries: tuple[Host, ...] = Field(
        default=DEFAULT_REQUEST_REGISTRIES,
        description="Upstream registry hosts a request may name; others are rejected.",
    )
    open_pull_request: bool = Field(
        default=False,
        description="Open a pull request for an accepted request instead of pushing the config.",
    )
    label: Annotated[str, AfterValidator(_check_nonempty)] = Field(
        default="mirror-request", description="Issue label that marks a namespace request."
    )


def guess_strategy(registry: str) -> Strategy:
    """The listing strategy a host most likely needs when ``list`` is omitted."""
    if registry == "gcr.io" or registry.endswith((".gcr.io", "-docker.pkg.dev", ".pkg.dev")):
        return "gcr"
    if registry == DOCKER_HUB:
        return "dockerhub"
    if registry == "quay.io":
        return "quay"  # Quay's catalog is empty for anonymous users
    return "catalog"


def _compile(patterns: Sequence[str]) -> tuple[TagRegex, ...]:
    return compile_tag_regexes(patterns)


@dataclass(frozen=True)
class ResolvedNamespace:
    """A namespace with defaults merged and names normalised: what the stages consume.

    Tag regexes are compiled with RE2 (:mod:`mirrorbot.config.regex`) and must match the whole tag.
    """

    source: str
    registry: str
    path: str
    strategy: str
    images: tuple[str, ...]
    hub_api: str
    include: tuple[TagRegex, ...]
    exclude: tuple[TagRegex, ...]
    platforms: tuple[str, ...]
    mutable: tuple[TagRegex, ...]
    signatures: bool
    name_template: str
    separator: str
    mirror_registry: str = DOCKER_HUB
    mirror_namespace: str = ""
    storage_path: Path | None = None  # list: storage, resolved against the config's folder
    quay_api: str | None = None  # list: quay; None: the registry's own host
    keep: KeepRule | None = None  # only the newest N image tags of each repository
    backup: str | None = None  # mirrorbot.domain.backups template for moved mutable tags
    prune: bool = False  # delete tags gone upstream from the mirror
    referrers: ReferrersSettings = dataclasses.field(default_factory=ReferrersSettings)

    def tag_selected(self, tag: str) -> bool:
        """Included (no include patterns = all) and not excluded."""
        if self.include and not any(p.fullmatch(tag) for p in self.include):
            return False
        return not any(p.fullmatch(tag) for p in self.exclude)

    def is_mutable(self, tag: str) -> bool:
        """Whether the tag's digest must be re-checked every run."""
        return any(p.fullmatch(tag) for p in self.mutable)

    def upstream(self, repo: str) -> str:
        """``registry/path/repo`` of a repository below this namespace."""
        return upstream_name(self.registry, self.path, repo)

    def mirror_repository(self, repo: str) -> str:
        """Target repository (``namespace/name``, no registry) for ``repo``."""

        return mirror_repository(
            self.name_template,
            mirror_namespace=self.mirror_namespace,
            source_registry=self.registry,
            source_path=self.path,
            repo=repo,
            separator=self.separator,
        )


_SAMPLE_REPOS: Final = ("image", "team/image")


class Config(BaseModel):
    """The whole of ``mirrorbot.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, title="mirrorbot.yaml")

    mirror: MirrorSettings = Field(description="Target registry, namespace and naming.")
    state: StateSettings = Field(default=StateSettings(), description="Where state is kept in git.")
    defaults: Filters = Field(default=Filters(), description="Filters every namespace inherits.")
    namespaces: tuple[NamespaceSettings, ...] = Field(description="Upstream namespaces to mirror.")
    registries: dict[Host, RegistrySettings] = Field(
        default_factory=dict,
        description="Per registry host: credentials (${VAR} expanded) and insecure.",
    )
    network: NetworkSettings = Field(
        default=NetworkSettings(), description="Timeouts, retries and concurrency."
    )
    requests: RequestSettings = Field(
        default=RequestSettings(),
        description="Namespace requests from GitHub issues (mirrorbot request).",
    )

    _source_path: Path | None = PrivateAttr(default=None)
    _filename: str = PrivateAttr(default="")
    # (host as normalised, field) → the key as written and its line, for located errors.
    _registry_keys: dict[tuple[str, str], tuple[Location, int | None]] = PrivateAttr(
        default_factory=dict
    )

    @property
    def source_path(self) -> Path | None:
        """The file this configuration was loaded from (None when parsed from text)."""
        return self._source_path

    def registry_error(self, host: str, field: str, message: str) -> ConfigError:
        """A :class:`ConfigError` at ``registries.<host>.<field>`` as written (file, line)."""
        location, line = self._registry_keys.get((host, field), (("registries", host, field), None))
        return ConfigError(message, path=self._filename, line=line, location=location)

    @field_validator("registries", mode="wrap")
    @classmethod
    def _registry_hosts(
        cls, value: object, handler: ValidatorFunctionWrapHandler
    ) -> dict[str, RegistrySettings]:
        """Normalise host keys (index.docker.io → docker.io) and refuse duplicates after that."""
        if isinstance(value, Mapping):
            seen: dict[str, str] = {}
            for key in value:
                if not isinstance(key, str):
                    continue
                try:
                    host = _check_host(key)
                except ValueError as exc:
                    raise ConfigError(str(exc), location=("registries", key)) from None
                if host in seen:
                    raise ConfigError(
                        f"{key!r} and {seen[host]!r} are the same registry",
                        location=("registries", key),
                    )
                seen[host] = key
        result: dict[str, RegistrySettings] = handler(value)
        return result

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        _check_consistency(self)
        return self

    def namespace_plans(self) -> tuple[ResolvedNamespace, ...]:
        """Every namespace with the defaults merged in, ready for listing and planning."""
        return tuple(_resolve(self, ns) for ns in self.namespaces)


def _strategy(ns: NamespaceSettings, registry: str) -> str:
    if ns.list is not None:
        return ns.list
    if ns.images:
        return "images"
    return guess_strategy(registry)


def _resolve(config: Config, ns: NamespaceSettings) -> ResolvedNamespace:
    registry, path = split_source(ns.source)
    defaults = config.defaults
    return ResolvedNamespace(
        source=upstream_name(registry, path),
        registry=registry,
        path=path,
        strategy=_strategy(ns, registry),
        images=ns.images,
        hub_api=ns.hub_api or DEFAULT_HUB_API,
        include=_compile(defaults.include if ns.include is None else ns.include),
        exclude=_compile(defaults.exclude if ns.exclude is None else ns.exclude),
        platforms=defaults.platforms if ns.platforms is None else ns.platforms,
        mutable=_compile(defaults.mutable if ns.mutable is None else ns.mutable),
        signatures=defaults.signatures if ns.signatures is None else ns.signatures,
        name_template=config.mirror.name if ns.name is None else ns.name,
        separator=config.mirror.separator,
        mirror_registry=config.mirror.registry,
        mirror_namespace=config.mirror.namespace,
        storage_path=_storage_path(config, ns),
        quay_api=ns.quay_api,
        keep=_keep(defaults.keep if ns.keep is None else ns.keep),
        backup=defaults.backup if ns.backup is None else ns.backup,
        prune=defaults.prune if ns.prune is None else ns.prune,
        referrers=defaults.referrers if ns.referrers is None else ns.referrers,
    )


def _keep(settings: KeepSettings | None) -> KeepRule | None:
    return None if settings is None else settings.rule()


def _storage_path(config: Config, ns: NamespaceSettings) -> Path | None:
    if ns.path is None:
        return None
    base = config.source_path.parent if config.source_path is not None else Path.cwd()
    return base / ns.path


def _check_consistency(config: Config) -> None:
    """Rules spanning several keys; each error points at the key to change."""

    mirror = config.mirror
    if mirror.registry == DOCKER_HUB:
        if "/" in mirror.namespace:
            raise ConfigError(
                "a Docker Hub namespace is one user or organisation, without '/'",
                location=("mirror", "namespace"),
            )
        if mirror.separator == "/":
            raise ConfigError(
                'Docker Hub has no nested repositories: separator "/" cannot work there',
                location=("mirror", "separator"),
            )
    if not config.namespaces:
        raise ConfigError("at least one namespace is required", location=("namespaces",))
    seen: dict[str, int] = {}
    claims: list[tuple[str, str]] = []
    where: dict[str, Location] = {}
    for index, ns in enumerate(config.namespaces):
        here: Location = ("namespaces", index)
        plan = _resolve(config, ns)
        if plan.source in seen:
            raise ConfigError(
                f"namespace {plan.source} is listed twice (also namespaces[{seen[plan.source]}])",
                location=(*here, "source"),
            )
        seen[plan.source] = index
        _check_strategy(ns, plan, here)
        name_key: Location = (*here, "name") if ns.name is not None else ("mirror", "name")
        for repo in plan.images or _SAMPLE_REPOS:
            try:
                target = plan.mirror_repository(repo)
            except ConfigError as exc:
                raise ConfigError(exc.message, location=name_key) from None
            if plan.images:
                upstream = plan.upstream(repo)
                claims.append((upstream, target))
                where.setdefault(upstream, (*here, "images", plan.images.index(repo)))
        if len(set(plan.images)) != len(plan.images):
            duplicate = next(i for i, r in enumerate(plan.images) if plan.images.index(r) != i)
            raise ConfigError(
                f"image {plan.images[duplicate]!r} is listed twice",
                location=(*here, "images", duplicate),
            )
    collisions = find_collisions(claims)
    if collisions:
        first, second, target = collisions[0]
        raise NameCollisionError(first, second, target, location=where[second])
    for host, settings in config.registries.items():
        if settings.password is not None and not settings.username:
            raise ConfigError(
                "a password needs a username", location=("registries", host, "password")
            )


def _check_strategy(ns: NamespaceSettings, plan: ResolvedNamespace, here: Location) -> None:
    strategy = plan.strategy
    if strategy == "images" and not plan.images:
        key = "images" if "images" in ns.model_fields_set else "list"
        raise ConfigError("list: images needs a non-empty images list", location=(*here, key))
    if plan.images and strategy != "images":
        raise ConfigError(
            f"images is only used with list: images (this namespace lists with {strategy})",
            location=(*here, "images"),
        )
    if (strategy == "storage") != (ns.path is not None):
        key = "path" if ns.path is not None else "list"
        raise ConfigError(
            "list: storage and path: go together (path is the storage root or its tarball)",
            location=(*here, key),
        )
    if strategy == "gcr" and not plan.path:
        raise ConfigError(
            "list: gcr needs a project path (e.g. gcr.io/google-containers)",
            location=(*here, "source"),
        )
    if strategy == "quay" and (not plan.path or "/" in plan.path):
        raise ConfigError(
            "list: quay needs exactly one Quay organisation or user (e.g. quay.io/coreos)",
            location=(*here, "source"),
        )
    if ns.quay_api is not None and strategy != "quay":
        raise ConfigError(
            f"quay_api is only used with list: quay (this namespace lists with {strategy})",
            location=(*here, "quay_api"),
        )
    if strategy == "dockerhub" and (not plan.path or "/" in plan.path):
        raise ConfigError(
            "list: dockerhub needs exactly one Docker Hub user or organisation "
            "(e.g. docker.io/bitnami)",
            location=(*here, "source"),
        )


def credentials_from_config(
    config: Config,
    environ: Mapping[str, str] | None = None,
    *,
    hosts: Iterable[str] | None = None,
) -> dict[str, Credential]:
    """Registry host → credential, for hosts that have any (others fall back to docker config).

    ``${VAR}`` expand from ``environ`` (default ``os.environ``), for ``hosts``
    only (default: every entry); an unset one is a :class:`ConfigError` naming
    it. Readers that can do without use :func:`resolve_credentials` directly.
    """
    return resolve_credentials(config, environ, hosts=hosts, need=Need.REQUIRED).credentials


def config_json_schema() -> dict[str, object]:
    """JSON Schema of ``mirrorbot.yaml`` (for editors and the checked-in schema file)."""
    schema: dict[str, object] = {"$schema": SCHEMA_URI}
    schema.update(Config.model_json_schema())
    schema["title"] = "mirrorbot.yaml"
    schema["description"] = (
        "Configuration of mirrorbot: upstream namespaces mirrored into one target namespace. "
        "Tag filters are RE2 regexes (Go's syntax) matched against the whole tag."
    )
    return schema


# --------------------------------------------------------------------------- loading


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; ``${VAR}`` under ``registries:`` stay unexpanded.

    With ``environ``, every variable those entries name must also be set in it
    (the check a writer such as ``sync`` makes for the registries it uses);
    without it, only the structure is checked.
    """
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"file is {size} bytes; a config may be at most {MAX_CONFIG_BYTES} (1 MiB)",
                path=name,
            )
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the config: {exc.strerror or exc}", path=name) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"file is larger than {MAX_CONFIG_BYTES} bytes (1 MiB)", path=name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", path=name) from None
    config = parse_config(text, filename=name, environ=environ)
    config._source_path = path
    return config


def parse_config(
    text: str, *, filename: str = "mirrorbot.yaml", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate config text; errors name ``filename``, the line and the key.

    ``environ``: as for :func:`load_config`.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config is larger than {MAX_CONFIG_BYTES} bytes (1 MiB)", path=filename)
    root = _load_yaml(text, filename)
    try:
        data = _plain(root, ())
        config = Config.model_validate(data)
        config._filename = filename
        config._registry_keys = _registry_keys(data, root)
        _check_variables(config)
        if environ is not None:
            credentials_from_config(config, environ)
        return config
    except ValidationError as exc:
        raise _from_validation(exc, root, filename) from None
    except ConfigError as exc:
        if not exc.path:
            exc.path = filename
        if exc.line is None:
            exc.line = _line_of(root, exc.location)
        raise


def _load_yaml(text: str, filename: str) -> CommentedMap:
    """Parse YAML safely (no aliases, bounded size) into a round-trip tree with line info."""
    yaml = YAML(typ="rt")
    try:
        nodes = 0
        for event in yaml.parse(text):
            if isinstance(event, AliasEvent):
                raise ConfigError(
                    f"YAML aliases (*{event.anchor}) are not supported: write the value out",
                    path=filename,
                    line=event.start_mark.line + 1,
                )
            if isinstance(event, ScalarEvent | MappingStartEvent | SequenceStartEvent):
                nodes += 1
                if nodes > MAX_NODES:
                    raise ConfigError(
                        f"more than {MAX_NODES} YAML nodes: not a plausible config",
                        path=filename,
                        line=event.start_mark.line + 1,
                    )
        root = yaml.load(text)
    except DuplicateKeyError as exc:
        # Its message quotes both values, which may be secrets: name the key only.
        found = re.search(r'duplicate key "(.*?)" with value', str(exc.problem or ""))
        what = f"duplicate key {found.group(1)!r}" if found else "duplicate key"
        raise ConfigError(what, path=filename, line=_mark_line(exc)) from None
    except MarkedYAMLError as exc:
        # problem/context only: str(exc) would quote the offending line (maybe a secret).
        reason = "; ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ConfigError(
            f"not valid YAML: {reason or 'syntax error'}", path=filename, line=_mark_line(exc)
        ) from None
    except YAMLError as exc:
        raise ConfigError(f"not valid YAML: {type(exc).__name__}", path=filename) from None
    if root is None:
        raise ConfigError(
            "the config is empty: expected a mapping with mirror and namespaces",
            path=filename,
            line=1,
        )
    if not isinstance(root, CommentedMap):
        raise ConfigError(
            f"the top level must be a mapping of keys, not a {_yaml_kind(root)}",
            path=filename,
            line=1,
        )
    return root


def _mark_line(exc: MarkedYAMLError) -> int | None:
    mark = exc.problem_mark or exc.context_mark
    return None if mark is None else mark.line + 1


def _yaml_kind(value: object) -> str:
    if isinstance(value, CommentedSeq | list):
        return "list"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _plain(node: object, location: Location) -> Any:
    """The ruamel tree as plain Python: dicts, tuples, str, bool, int, float, None (dates stay)."""
    if isinstance(node, CommentedMap):
        result: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise ConfigError(
                    f"key {key!r} is not a string (quote it)",
                    location=(*location, str(key)),
                    line=node.lc.key(key)[0] + 1,
                )
            result[str(key)] = _plain(value, (*location, key))
        return result
    if isinstance(node, CommentedSeq | list):
        return tuple(_plain(value, (*location, index)) for index, value in enumerate(node))
    if node is None or type(node) in (str, bool, int, float):
        return node
    if isinstance(node, str):  # ruamel's ScalarString subclasses
        return str(node)
    if isinstance(node, ScalarBoolean | bool):  # ScalarBoolean subclasses int: test it first
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, date):
        return node  # strict validation rejects it where text is expected
    raise ConfigError(
        "unsupported YAML value (custom tags and binary data are not allowed)",
        location=location,
    )


class _EveryName(Mapping[str, str]):
    """An environment where every variable is set (empty): only ``$`` syntax can fail."""

    def __getitem__(self, key: str) -> str:
        return ""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _registry_keys(
    data: Any, root: CommentedMap
) -> dict[tuple[str, str], tuple[Location, int | None]]:
    """Where each string under ``registries:`` was written: key path as written, line."""
    found: dict[tuple[str, str], tuple[Location, int | None]] = {}
    registries = data.get("registries") if isinstance(data, dict) else None
    if not isinstance(registries, dict):
        return found
    for written, entry in registries.items():
        if not isinstance(entry, dict):
            continue
        host = _check_host(written)  # validated already
        for field, value in entry.items():
            if isinstance(value, str):
                location: Location = ("registries", written, field)
                found[(host, field)] = (location, _line_of(root, location))
    return found


def _check_variables(config: Config) -> None:
    """A ``$`` under ``registries:`` must start ``${NAME}``, ``$NAME`` or ``$$``.

    The syntax is structure, checked now; whether the variables are set is
    asked only when a command needs the credentials (:mod:`mirrorbot.config.credentials`).
    """
    every = _EveryName()
    for host, settings in config.registries.items():
        for field in _SECRET_FIELDS:
            value = getattr(settings, field)
            if isinstance(value, str):
                try:
                    expand_env(value, every)
                except CredentialError as exc:
                    raise config.registry_error(host, field, str(exc)) from None


_SECRET_FIELDS: Final = ("username", "password", "identity_token")


def _line_of(root: object, location: Location) -> int | None:
    """1-based line of the deepest part of ``location`` present in the YAML tree."""
    node = root
    line = root.lc.line + 1 if isinstance(root, CommentedMap | CommentedSeq) else None
    for part in location:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


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


def _from_validation(exc: ValidationError, root: CommentedMap, filename: str) -> ConfigError:
    """The first problem in file order, located.

    Missing keys come last: a misspelt key yields both "unknown key" and
    "missing", and the unknown one (with its suggestion) is the useful one.
    """
    located: list[tuple[bool, int, int, Location, ErrorDetails]] = []
    for error in exc.errors(include_input=False, include_url=False):
        location = tuple(part for part in error["loc"] if part != "[key]")
        line = _line_of(root, location)
        located.append((error["type"] == "missing", line or 0, len(located), location, error))
    _, line, _, location, error = min(located, key=lambda item: item[:3])
    return ConfigError(_describe(error), path=filename, line=line or None, location=location)


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mirrorbot.config --schema`` prints the JSON Schema; ``FILE`` validates one."""
    parser = argparse.ArgumentParser(prog="python -m mirrorbot.config", description=__doc__)
    parser.add_argument("--schema", action="store_true", help="print the JSON Schema")
    parser.add_argument("file", nargs="?", type=Path, help="config file to validate")
    args = parser.parse_args(argv)
    if args.schema:
        sys.stdout.write(json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n")
        return 0
    if args.file is None:
        parser.error("give --schema or a config file")
    try:
        load_config(args.file)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    sys.stdout.write(f"{args.file}: ok\n")
    return 0
