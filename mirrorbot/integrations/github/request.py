"""``mirrorbot request``: a namespace request from a GitHub issue form, checked, then added.

The form is read and normalised by :mod:`.issueform`. A request is rejected
when it is malformed, names a registry outside the allowlist
(``requests.allowed_registries``), is already mirrored, would land on mirror
names that other upstream repositories already use, or cannot be listed
upstream (nothing there, or the listing fails). An accepted namespace is added
to the config by :mod:`.configedit`, and the reply is rendered by
:mod:`.markdown`, which shows the requester's text only inertly (an expression
such as ``${{ github.token }}`` or a ``@mention`` in the issue stays inert).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from mirrorbot.config import Config, ResolvedNamespace, load_config
from mirrorbot.config.credentials import Need, resolve_credentials
from mirrorbot.domain.naming import find_collisions
from mirrorbot.engine.registry.credentials import CredentialStore
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.engine.sources import Listing, namespace_source
from mirrorbot.errors import (
    ConfigError,
    EmptyListingError,
    MirrorbotError,
    RequestRejectedError,
)
from mirrorbot.integrations.github.actions import output_lines
from mirrorbot.integrations.github.configedit import edited_config, replace_config
from mirrorbot.integrations.github.issueform import (
    MAX_INCLUDE,
    check_images,
    normalise_namespace,
    parse_form,
    read_issue_body,
)
from mirrorbot.integrations.github.markdown import render_reply
from mirrorbot.logs import redact
from mirrorbot.reference import normalize_registry, upstream_name
from mirrorbot.state.gitrepo import TOKEN_VARIABLES, looks_like_url
from mirrorbot.state.store import StateStore

__all__ = ["RequestOutcome", "github_output_lines", "handle_request", "request_outputs"]

_LISTING_ATTEMPTS: Final = 3


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """What happened: the reply to post and what the workflow needs to know."""

    accepted: bool
    reply: str
    namespace: str = ""  # normalised; only set once it passed the grammar
    open_pull_request: bool = False
    dry_run: bool = False


@dataclass(slots=True)
class _Found:
    """What the upstream listing showed, for the reply."""

    repositories: list[str] = field(default_factory=list)
    tags: int = 0
    selected: int = 0


def _credentials(config: Config, environ: Mapping[str, str], host: str) -> CredentialStore:
    """The listed registry's configured credentials when its variables are set, else none.

    The request workflow gets no registry secrets and only reads upstream: an
    unset variable means anonymous listing (one warning), never an unusable config.
    """
    resolved = resolve_credentials(config, environ, hosts=[host], need=Need.OPTIONAL)
    resolved.log_warnings()
    return CredentialStore(resolved.credentials)


# --------------------------------------------------------------------------- checks


def _check_new(config: Config, registry: str, path: str, allowed: Sequence[str]) -> None:
    source = upstream_name(registry, path)
    if registry not in allowed:
        raise RequestRejectedError(
            f"the registry `{registry}` is not on this mirror's allowlist "
            f"({', '.join(f'`{host}`' for host in allowed) or 'empty'}); "
            "a maintainer can add it under requests.allowed_registries"
        )
    for existing in config.namespace_plans():
        if existing.source == source:
            raise RequestRejectedError(f"`{source}` is already mirrored")
        covers = existing.strategy != "images" and (
            not existing.path or path.startswith(existing.path + "/")
        )
        if existing.registry == registry and covers:
            raise RequestRejectedError(
                f"`{source}` is already mirrored as part of `{existing.source}`"
            )


def _existing_claims(config: Config, config_path: Path) -> list[tuple[str, str]]:
    """(upstream, mirror) pairs the mirror already has: static image lists and state files."""
    claims: list[tuple[str, str]] = []
    for ns in config.namespace_plans():
        for repo in ns.images:
            claims.append((ns.upstream(repo), f"{ns.mirror_registry}/{ns.mirror_repository(repo)}"))
    if not looks_like_url(config.state.repo):
        repository = config_path.resolve().parent / config.state.repo
        for state in StateStore(repository / config.state.path, boundary=repository).all():
            for image, entry in state.images.items():
                claims.append((upstream_name(state.source, image), entry.target))
    return claims


def _pool(config: Config, credentials: CredentialStore) -> RegistryPool:
    return RegistryPool.from_settings(
        credentials,
        config.network,
        insecure=[host for host, settings in config.registries.items() if settings.insecure],
        attempts=min(config.network.retries, _LISTING_ATTEMPTS),
    )


async def _list(
    config: Config, namespace: ResolvedNamespace, credentials: CredentialStore
) -> Listing:
    async with _pool(config, credentials) as pool:
        return await namespace_source(namespace, pool.reader(namespace.registry)).list()


def _check_listing(namespace: ResolvedNamespace, listing: Listing) -> _Found:
    skipped = "\n".join(listing.skipped)
    found = _Found()
    listed = {repo.path for repo in listing.repositories if repo.tags}
    missing = [image for image in namespace.images if image not in listed]
    if missing:
        raise RequestRejectedError(
            f"{len(missing)} of the requested images have no tags upstream: "
            + ", ".join(f"`{image}`" for image in missing[:10]),
            detail=skipped,
        )
    for repo in listing.repositories:
        if not repo.tags:
            continue
        found.repositories.append(repo.path)
        found.tags += len(repo.tags)
        found.selected += sum(1 for tag in repo.tags if namespace.tag_selected(tag.name))
    if not found.selected:
        raise RequestRejectedError(
            f"none of the {found.tags} tags upstream matches the include regexes"
        )
    return found


def _check_names(
    namespace: ResolvedNamespace, repositories: Sequence[str], existing: list[tuple[str, str]]
) -> list[str]:
    """The mirror repository of each listed repository; names already taken are rejected."""
    new: list[tuple[str, str]] = []
    for repo in repositories:
        try:
            target = f"{namespace.mirror_registry}/{namespace.mirror_repository(repo)}"
        except ConfigError as exc:
            raise RequestRejectedError(
                "an upstream repository cannot be given a valid mirror name",
                detail=exc.message,
            ) from None
        new.append((namespace.upstream(repo), target))
    fresh = {upstream for upstream, _ in new}
    clashes = [c for c in find_collisions([*existing, *new]) if c[1] in fresh and c[0] not in fresh]
    if clashes:
        raise RequestRejectedError(
            (
                f"{len(clashes)} repositories would land on mirror names that are already taken: "
                if len(clashes) > 1
                else "a repository would land on a mirror name that is already taken: "
            )
            + "; ".join(
                f"`{new_}` → `{mirror}` (taken by `{old}`)" for old, new_, mirror in clashes[:5]
            )
            + "; a maintainer can give this namespace its own name template"
        )
    return [target for _, target in new]


def _secrets(environ: Mapping[str, str]) -> list[str]:
    # Registry credentials are registered for redaction when they are expanded.
    return [environ[name] for name in TOKEN_VARIABLES if environ.get(name)]


# --------------------------------------------------------------------------- the whole


def handle_request(
    issue_file: Path,
    config_path: Path,
    *,
    allow: Sequence[str] = (),
    dry_run: bool = False,
    environ: Mapping[str, str] | None = None,
) -> RequestOutcome:
    """Check one request and, when it passes, add it to the config (unless ``dry_run``).

    Raises :class:`ConfigError` when the config itself is unusable and
    ``OSError`` when the issue file cannot be read: those are the
    maintainer's to fix (exit 2), not the requester's.
    """
    env = dict(os.environ if environ is None else environ)
    config = load_config(config_path)
    settings = config.requests
    allowed = list(dict.fromkeys([*settings.allowed_registries, *_hosts(allow)]))
    secrets = _secrets(env)
    common = {"dry_run": dry_run, "open_pull_request": settings.open_pull_request}
    source = ""
    try:
        form = parse_form(read_issue_body(issue_file))
        registry, path = normalise_namespace(form.namespace)
        source = upstream_name(registry, path)
        images = check_images(form.images, registry, path)
        if not path and not images:
            raise RequestRejectedError(
                f"`{registry}` is a whole registry: name a namespace below it "
                f"(e.g. `{registry}/project`) or list the images to mirror"
            )
        if len(form.include) > MAX_INCLUDE:
            raise RequestRejectedError(f"more than {MAX_INCLUDE} include regexes")
        _check_new(config, registry, path, allowed)
        new_text, new_config = edited_config(config, config_path, source, images, form.include)
        namespace = new_config.namespace_plans()[-1]
        credentials = _credentials(new_config, env, namespace.registry)
        try:
            listing = asyncio.run(_list(new_config, namespace, credentials))
        except EmptyListingError as exc:
            if not namespace.images:
                raise RequestRejectedError(
                    redact(str(exc), secrets), detail=redact("\n".join(exc.skipped), secrets)
                ) from None
            listing = Listing(exc.source, (), exc.skipped)  # says which images are missing
        except (MirrorbotError, httpx.HTTPError, ValueError) as exc:
            raise RequestRejectedError(
                f"`{source}` could not be listed upstream", detail=redact(str(exc), secrets)
            ) from None
        found = _check_listing(namespace, listing)
        mirrors = _check_names(namespace, found.repositories, _existing_claims(config, config_path))
        if not dry_run:
            replace_config(config_path, new_text)
    except RequestRejectedError as exc:
        reply = render_reply(
            secrets,
            accepted=False,
            reason=exc.reason,
            detail=exc.detail,
            quoted=exc.quoted,
            namespace=source,
            **common,
        )
        return RequestOutcome(False, reply, source, settings.open_pull_request, dry_run)
    reply = render_reply(
        secrets,
        accepted=True,
        namespace=source,
        strategy=namespace.strategy,
        images=list(images),
        include=list(form.include),
        repositories=found.repositories,
        tags=found.tags,
        selected=found.selected,
        pairs=list(zip(found.repositories, mirrors, strict=True)),
        config_name=config_path.name,
        **common,
    )
    return RequestOutcome(True, reply, source, settings.open_pull_request, dry_run)


def _hosts(values: Iterable[str]) -> list[str]:
    return [normalize_registry(value.strip().lower()) for value in values if value.strip()]


def request_outputs(outcome: RequestOutcome) -> dict[str, str | bool]:
    """The step outputs the request workflow reads (accepted, namespace, ...)."""
    return {
        "accepted": outcome.accepted,
        "namespace": outcome.namespace,
        "open_pull_request": outcome.open_pull_request,
        "dry_run": outcome.dry_run,
    }


def github_output_lines(outcome: RequestOutcome) -> str:
    """``key=value`` lines for ``$GITHUB_OUTPUT``; values cannot carry newlines or oddities."""
    return output_lines(request_outputs(outcome))
