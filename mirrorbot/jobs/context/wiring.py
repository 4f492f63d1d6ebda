"""Wiring for the commands that read a config: config, state repository, credentials, pool.

This is the one place that assembles config, credentials, registry pool and
state repository for a run; the jobs themselves stay unaware of each other.

Credentials are resolved when a pool is built, for the registries that run
talks to (:mod:`mirrorbot.config.credentials`): required where the run writes (sync,
repair, rules), optional where it only reads (plan, verify); ``find`` reads
state files and builds no pool at all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import git

from mirrorbot.config import Config, StateSettings, load_config
from mirrorbot.config.credentials import Need, resolve_credentials
from mirrorbot.engine.registry.credentials import CredentialStore
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.errors import GitError
from mirrorbot.jobs.context.pools import build_pool
from mirrorbot.reference import split_registry
from mirrorbot.state.gitrepo import MetadataRepo, looks_like_url
from mirrorbot.state.store import NamespaceState, StateStore

__all__ = [
    "JobContext",
    "clone_root",
    "iso_utc",
    "open_context",
    "open_state",
    "run_async",
    "sync_hosts",
    "verify_hosts",
]


@dataclass(slots=True)
class JobContext:
    config: Config
    repo: MetadataRepo
    store: StateStore
    environ: Mapping[str, str] = field(default_factory=dict)

    def credentials(self, hosts: Iterable[str], need: Need) -> CredentialStore:
        """The configured credentials of ``hosts``, expanded now (see :mod:`mirrorbot.config.credentials`).

        Raises :class:`ConfigError` when ``need`` is required and a variable is unset.
        """
        resolved = resolve_credentials(self.config, self.environ, hosts=hosts, need=need)
        resolved.log_warnings()
        return CredentialStore(resolved.credentials)

    def pool(self, credentials: CredentialStore) -> RegistryPool:
        insecure = [host for host, settings in self.config.registries.items() if settings.insecure]
        return build_pool(
            credentials,
            self.config.network,
            insecure=insecure,
            storage=self.config.namespace_plans(),
        )


T = TypeVar("T")


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run`` whose main task returns nothing.

    On Python 3.11, ``asyncio.run`` formats its main task (result included) when
    restoring the SIGINT handler; with a 100,000-tag report as the result that
    cost more than a second of CPU. Handing the result out on the side avoids it.
    """
    holder: list[T] = []

    async def main() -> None:
        holder.append(await make())

    asyncio.run(main())
    return holder[0]


def clone_root(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(
        Path(environ.get("HOME", str(Path.home()))) / ".cache"
    )
    return Path(base) / "mirrorbot" / "state-repos"


def open_context(config_path: Path, environ: Mapping[str, str] | None = None) -> JobContext:
    """Config and state repository; no credential is expanded yet (each run asks for its own)."""
    env = dict(os.environ if environ is None else environ)
    config = load_config(config_path)
    repo = _open_repo(config, config_path, env)
    return JobContext(config, repo, _state_store(config, repo.root), env)


def _open_repo(config: Config, config_path: Path, env: Mapping[str, str]) -> MetadataRepo:
    return MetadataRepo.open(
        config.state.repo,
        branch=config.state.branch,
        base_dir=config_path.resolve().parent,
        clone_root=clone_root(env),
        environ=env,
    )


def _state_store(config: Config, root: Path) -> StateStore:
    default_mirror = f"{config.mirror.registry}/{config.mirror.namespace}"
    return StateStore(root / config.state.path, default_mirror=default_mirror, boundary=root)


def open_state(config_path: Path, environ: Mapping[str, str] | None = None) -> StateStore:
    """The state files alone, for readers of state (``find``): no credentials, no pool.

    When ``state.repo`` is a working tree (``"."``: the checkout holding the
    config), its state folder is read as it is: no worktree, no fetch, so a
    plain checkout works offline. A URL or a bare repository is cloned as a run would.
    """
    env = dict(os.environ if environ is None else environ)
    if not config_path.exists():
        return _rules_state(config_path)
    config = load_config(config_path)
    root = _working_tree(config.state.repo, config_path.resolve().parent)
    if root is None:
        root = _open_repo(config, config_path, env).root
    return _state_store(config, root)


def _rules_state(config_path: Path) -> StateStore:
    """No mirrorbot.yaml: an image-syncer repository's ``state/`` (as ``rules`` writes it).

    Without a state folder there is nothing to read: the missing config is the error.
    """
    settings = StateSettings()
    try:
        root = _working_tree(".", config_path.resolve().parent)
    except GitError:
        root = None
    if root is None or not (root / settings.path).is_dir():
        raise FileNotFoundError(str(config_path))
    return StateStore(root / settings.path, default_mirror="", boundary=root)


def _working_tree(spec: str, base_dir: Path) -> Path | None:
    """The top of the working tree ``spec`` names, or None for a URL or a bare repository."""
    if looks_like_url(spec):
        return None
    candidate = (base_dir / spec).resolve()
    if not candidate.exists():
        raise GitError(f"state.repo {spec!r}: no such path {candidate}")
    try:
        with git.Repo(candidate, search_parent_directories=True) as found:
            top = found.working_tree_dir
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitError(f"state.repo {spec!r}: {candidate} is not inside a git repository") from None
    return None if top is None else Path(top)


def sync_hosts(config: Config, namespaces: Iterable[str] = ()) -> set[str]:
    """Registries a sync of ``namespaces`` (default: all) talks to: upstreams and the mirror.

    A storage namespace is read from files, not from its registry.
    """
    wanted = set(namespaces)
    return {config.mirror.registry} | {
        ns.registry
        for ns in config.namespace_plans()
        if ns.strategy != "storage" and (not wanted or ns.source in wanted)
    }


def verify_hosts(config: Config, states: Iterable[NamespaceState], *, repair: bool) -> set[str]:
    """Registries a verify reads: where the recorded tags are; with ``repair``, their upstreams."""
    storage = {ns.source for ns in config.namespace_plans() if ns.strategy == "storage"}
    hosts: set[str] = set()
    for state in states:
        hosts.update(split_registry(entry.target)[0] for entry in state.images.values())
        if repair and state.source not in storage:
            hosts.add(split_registry(f"{state.source}/probe")[0])
    return hosts


def iso_utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
