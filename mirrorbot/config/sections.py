"""The sections of ``mirrorbot.yaml`` as strict pydantic models, one class per mapping.

Strict (``"yes"`` or ``1`` is not silently a boolean), frozen, and with
``extra="forbid"`` so a misspelt key is an error with a suggestion
(:mod:`mirrorbot.config.diagnostics`). The ``description`` of every field is
what editors show from the checked-in JSON Schema (:mod:`mirrorbot.config.schema`).
The whole file, and rules that span sections, are :class:`mirrorbot.config.document.Config`.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mirrorbot.config.fields import (
    BackupTemplate,
    BaseUrl,
    BranchName,
    Host,
    MirrorNamespace,
    NameTemplate,
    NonEmpty,
    Platform,
    Regex,
    RepositoryName,
    Separator,
    Source,
    StatePath,
)
from mirrorbot.config.regex import MAX_PATTERNS
from mirrorbot.domain.keep import KeepOrder, KeepRule
from mirrorbot.reference import DOCKER_HUB

__all__ = [
    "DEFAULT_HUB_API",
    "DEFAULT_REQUEST_REGISTRIES",
    "STRATEGIES",
    "ArtifactType",
    "Filters",
    "KeepSettings",
    "MirrorSettings",
    "NamespaceSettings",
    "NetworkSettings",
    "ReferrersSettings",
    "RegistrySettings",
    "RequestSettings",
    "StateSettings",
    "Strategy",
]

DEFAULT_HUB_API: Final = "https://hub.docker.com"
STRATEGIES: Final = ("catalog", "gcr", "dockerhub", "images", "storage")

Strategy = Literal["catalog", "gcr", "dockerhub", "images", "storage", "quay"]

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)


class MirrorSettings(BaseModel):
    """Where mirrored images go and how they are named there."""

    model_config = _STRICT

    registry: Host = Field(default=DOCKER_HUB, description="Target registry host.")
    namespace: MirrorNamespace = Field(
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

    repo: NonEmpty = Field(
        default=".",
        description='Git metadata repo: "." (this repo), a path, or a clone URL.',
    )
    path: StatePath = Field(default="state", description="Folder inside the state repo.")
    branch: BranchName = Field(default="main", description="Branch the state is committed to.")


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

    source: Source = Field(
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
    hub_api: BaseUrl | None = Field(
        default=None, description=f"Docker Hub web API base URL (default {DEFAULT_HUB_API})."
    )
    quay_api: BaseUrl | None = Field(
        default=None,
        description="For list: quay, the Quay API base URL (default: the registry itself, "
        "e.g. https://quay.io).",
    )
    path: NonEmpty | None = Field(
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
    label: NonEmpty = Field(
        default="mirror-request", description="Issue label that marks a namespace request."
    )
