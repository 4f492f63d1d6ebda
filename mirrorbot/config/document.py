"""The whole of ``mirrorbot.yaml``: :class:`Config`, and the rules that span several keys.

Single values are checked by their field types (:mod:`mirrorbot.config.fields`),
sections by their models (:mod:`mirrorbot.config.sections`); what needs two
keys at once (a strategy and its source, names that collide once rendered, a
password without a username) is checked here, after the model is built, and
each error points at the key to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from mirrorbot.config.fields import Host, check_host
from mirrorbot.config.resolve import ResolvedNamespace, resolve_namespace
from mirrorbot.config.sections import (
    Filters,
    MirrorSettings,
    NamespaceSettings,
    NetworkSettings,
    RegistrySettings,
    RequestSettings,
    StateSettings,
)
from mirrorbot.domain.naming import find_collisions
from mirrorbot.errors import ConfigError, Location, NameCollisionError
from mirrorbot.reference import DOCKER_HUB

__all__ = ["Config"]

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
                    host = check_host(key)
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


def _resolve(config: Config, ns: NamespaceSettings) -> ResolvedNamespace:
    base = config.source_path.parent if config.source_path is not None else None
    return resolve_namespace(ns, mirror=config.mirror, defaults=config.defaults, base=base)


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
