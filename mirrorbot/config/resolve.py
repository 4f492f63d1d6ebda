"""A namespace entry with the defaults merged in: :class:`ResolvedNamespace`, what the jobs consume.

Resolution is pure: the source is split into registry and path, the listing
strategy is chosen (:func:`guess_strategy` when ``list`` is omitted), filter
keys given on the namespace *replace* the ``defaults`` value, tag regexes are
compiled with RE2 (:mod:`mirrorbot.config.regex`), and mirror names are
rendered by :mod:`mirrorbot.domain.naming`, the only place names are computed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from mirrorbot.config.fields import split_source
from mirrorbot.config.regex import TagRegex, compile_tag_regexes
from mirrorbot.config.sections import (
    DEFAULT_HUB_API,
    Filters,
    KeepSettings,
    MirrorSettings,
    NamespaceSettings,
    ReferrersSettings,
    Strategy,
)
from mirrorbot.domain.keep import KeepRule
from mirrorbot.domain.naming import mirror_repository
from mirrorbot.reference import DOCKER_HUB, upstream_name

__all__ = ["ResolvedNamespace", "guess_strategy", "resolve_namespace"]


def guess_strategy(registry: str) -> Strategy:
    """The listing strategy a host most likely needs when ``list`` is omitted."""
    if registry == "gcr.io" or registry.endswith((".gcr.io", "-docker.pkg.dev", ".pkg.dev")):
        return "gcr"
    if registry == DOCKER_HUB:
        return "dockerhub"
    if registry == "quay.io":
        return "quay"  # Quay's catalog is empty for anonymous users
    return "catalog"


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


def _strategy(ns: NamespaceSettings, registry: str) -> str:
    if ns.list is not None:
        return ns.list
    if ns.images:
        return "images"
    return guess_strategy(registry)


def resolve_namespace(
    ns: NamespaceSettings,
    *,
    mirror: MirrorSettings,
    defaults: Filters,
    base: Path | None,
) -> ResolvedNamespace:
    """``ns`` with ``defaults`` and ``mirror`` merged in; ``path:`` is relative to ``base``.

    ``base`` is the folder of the config file (``None``: the working directory).
    """
    registry, path = split_source(ns.source)
    return ResolvedNamespace(
        source=upstream_name(registry, path),
        registry=registry,
        path=path,
        strategy=_strategy(ns, registry),
        images=ns.images,
        hub_api=ns.hub_api or DEFAULT_HUB_API,
        include=compile_tag_regexes(defaults.include if ns.include is None else ns.include),
        exclude=compile_tag_regexes(defaults.exclude if ns.exclude is None else ns.exclude),
        platforms=defaults.platforms if ns.platforms is None else ns.platforms,
        mutable=compile_tag_regexes(defaults.mutable if ns.mutable is None else ns.mutable),
        signatures=defaults.signatures if ns.signatures is None else ns.signatures,
        name_template=mirror.name if ns.name is None else ns.name,
        separator=mirror.separator,
        mirror_registry=mirror.registry,
        mirror_namespace=mirror.namespace,
        storage_path=_storage_path(ns, base),
        quay_api=ns.quay_api,
        keep=_keep(defaults.keep if ns.keep is None else ns.keep),
        backup=defaults.backup if ns.backup is None else ns.backup,
        prune=defaults.prune if ns.prune is None else ns.prune,
        referrers=defaults.referrers if ns.referrers is None else ns.referrers,
    )


def _keep(settings: KeepSettings | None) -> KeepRule | None:
    return None if settings is None else settings.rule()


def _storage_path(ns: NamespaceSettings, base: Path | None) -> Path | None:
    if ns.path is None:
        return None
    return (Path.cwd() if base is None else base) / ns.path
