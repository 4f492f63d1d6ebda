"""Wiring for the commands that read a config: sync, plan, verify, find.

This is the one place that assembles config, credentials, registry pool, state
repository and publisher; the stages themselves stay unaware of each other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mirrorbot.config import Config, credentials_from_config, load_config
from mirrorbot.logs import secret_filter
from mirrorbot.publish import Change, apply_changes
from mirrorbot.registry.credentials import CredentialStore
from mirrorbot.registry.pool import RegistryPool
from mirrorbot.state.gitrepo import MetadataRepo
from mirrorbot.state.store import StateStore
from mirrorbot.sync import SyncOptions, SyncReport, sync_namespaces

__all__ = ["JobContext", "commit_message", "open_context", "run_sync"]


@dataclass(slots=True)
class JobContext:
    config: Config
    repo: MetadataRepo
    store: StateStore
    credentials: CredentialStore
    environ: Mapping[str, str] = field(default_factory=dict)

    def pool(self) -> RegistryPool:
        insecure = [host for host, settings in self.config.registries.items() if settings.insecure]
        return RegistryPool(self.credentials, insecure=insecure)


def clone_root(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(
        Path(environ.get("HOME", str(Path.home()))) / ".cache"
    )
    return Path(base) / "mirrorbot" / "state-repos"


def open_context(config_path: Path, environ: Mapping[str, str] | None = None) -> JobContext:
    env = dict(os.environ if environ is None else environ)
    config = load_config(config_path, env)
    credentials = CredentialStore(credentials_from_config(config))
    secret_filter().add(credentials.secrets())
    repo = MetadataRepo.open(
        config.state.repo,
        branch=config.state.branch,
        base_dir=config_path.resolve().parent,
        clone_root=clone_root(env),
        environ=env,
    )
    store = StateStore(repo.root / config.state.path)
    return JobContext(config, repo, store, credentials, env)


def commit_message(changes: list[Change], when: dt.datetime) -> str:
    new = sum(1 for c in changes if c.kind == "new")
    updated = len(changes) - new
    images = len({(c.namespace, c.image) for c in changes})
    namespaces = sorted({c.namespace for c in changes})
    subject = f"mirror: {new} new, {updated} updated tags in {images} images"
    body = "\n".join(f"- {ns}" for ns in namespaces)
    return f"{subject}\n\nRun at {when.astimezone(dt.UTC):%Y-%m-%d %H:%M UTC}.\n\n{body}\n"


@dataclass(slots=True)
class SyncOutcome:
    report: SyncReport
    commit: str | None = None
    pushed: bool = False


def run_sync(
    context: JobContext,
    options: SyncOptions,
    *,
    push: bool,
    now: dt.datetime | None = None,
    on_report: Callable[[SyncReport], None] | None = None,
) -> SyncOutcome:
    moment = now or dt.datetime.now(dt.UTC)

    async def go() -> SyncReport:
        async with context.pool() as pool:
            return await sync_namespaces(context.config, pool, context.store, options, now=moment)

    report = asyncio.run(go())
    outcome = SyncOutcome(report)
    if options.dry_run or not report.changes:
        return outcome
    changes = sorted(report.changes, key=lambda c: (c.namespace, c.image, c.tag))

    def write() -> list[Path]:
        return apply_changes(context.store, changes, moment)

    files = write()
    message = commit_message(changes, moment)
    outcome.commit = context.repo.commit(files, message)
    if push and outcome.commit and context.repo.has_remote:
        context.repo.push(write, message)
        outcome.pushed = True
        outcome.commit = context.repo.head()
    return outcome
