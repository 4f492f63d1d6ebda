"""image-syncer mode: rules and auth files, with or without a mirrorbot.yaml.

Rules name destination repositories, not one mirror namespace: every
(namespace, destination) pair gets its own state file (see :mod:`mirrorbot.jobs.rules`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mirrorbot.config import Config, NetworkSettings, StateSettings, load_config
from mirrorbot.config.credentials import Need, resolve_credentials
from mirrorbot.config.imagesyncer import AuthEntry, Rule, load_auth, load_rules
from mirrorbot.engine.registry.credentials import Credential, CredentialStore
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.jobs.context.pools import build_pool
from mirrorbot.jobs.context.publishing import publish_changes
from mirrorbot.jobs.context.runs import SyncOutcome
from mirrorbot.jobs.context.verifying import VerifyOutcome
from mirrorbot.jobs.context.wiring import clone_root, run_async
from mirrorbot.jobs.outcome import SyncReport
from mirrorbot.jobs.rules import RuleOptions, run_rules
from mirrorbot.jobs.verify import verify_states
from mirrorbot.logs import secret_filter
from mirrorbot.state.gitrepo import MetadataRepo
from mirrorbot.state.store import StateStore

__all__ = ["RulesContext", "open_rules_context", "run_rules_sync", "run_rules_verify"]


@dataclass(slots=True)
class RulesContext:
    """image-syncer mode: rules and auth files, with or without a mirrorbot.yaml."""

    rules: list[Rule]
    repo: MetadataRepo
    store: StateStore
    config: Config | None
    auth: dict[str, Credential]  # per host, from the auth file (the config's entries win)
    scoped: list[AuthEntry]
    network: NetworkSettings
    insecure: frozenset[str]
    mutable: tuple[str, ...]
    environ: Mapping[str, str] = field(default_factory=dict)

    def hosts(self) -> set[str]:
        """Registries the rules read from and write to."""
        return {rule.source.registry for rule in self.rules} | {
            destination.repository.registry
            for rule in self.rules
            for destination in rule.destinations
        }

    def credentials(self, need: Need) -> CredentialStore:
        """The auth file's credentials and the config's, for the rules' registries only."""
        explicit: dict[str, Credential] = {}
        if self.config is not None:
            resolved = resolve_credentials(self.config, self.environ, hosts=self.hosts(), need=need)
            resolved.log_warnings()
            explicit.update(resolved.credentials)
        for host, credential in self.auth.items():
            explicit.setdefault(host, credential)
        return CredentialStore(explicit)

    def pool(self, credentials: CredentialStore) -> RegistryPool:
        return build_pool(credentials, self.network, insecure=self.insecure, scoped=self.scoped)


def open_rules_context(
    config_path: Path,
    images: Path,
    auth: Path | None,
    *,
    default: tuple[str, str] | None,
    environ: Mapping[str, str] | None = None,
) -> RulesContext:
    """State, network and credentials from mirrorbot.yaml when it exists; else defaults."""
    env = dict(os.environ if environ is None else environ)
    config = load_config(config_path) if config_path.exists() else None
    rules = load_rules(images, default=default)
    by_host, scoped, insecure = _auth_file(auth, env)
    if config is not None:
        insecure |= {host for host, settings in config.registries.items() if settings.insecure}
    state = config.state if config is not None else StateSettings()
    base_dir = (config_path if config is not None else images).resolve().parent
    repo = MetadataRepo.open(
        state.repo, branch=state.branch, base_dir=base_dir, clone_root=clone_root(env), environ=env
    )
    # Rules name destination repositories, not one mirror namespace: every
    # (namespace, destination) pair gets its own state file (see jobs/rules.py).
    return RulesContext(
        rules=rules,
        repo=repo,
        store=StateStore(repo.root / state.path, default_mirror="", boundary=repo.root),
        config=config,
        auth=by_host,
        scoped=scoped,
        network=config.network if config is not None else NetworkSettings(),
        insecure=frozenset(insecure),
        mutable=config.defaults.mutable if config is not None else ("latest",),
        environ=env,
    )


def run_rules_verify(
    store: StateStore,
    auth: Path | None,
    *,
    deep: bool = False,
    environ: Mapping[str, str] | None = None,
) -> VerifyOutcome:
    """``verify`` with no mirrorbot.yaml: ``store`` from :func:`open_state`, credentials
    from the image-syncer auth file."""
    env = dict(os.environ if environ is None else environ)
    by_host, scoped, insecure = _auth_file(auth, env)
    states = list(store.all())

    async def go() -> VerifyOutcome:
        credentials = CredentialStore(by_host)
        pool = build_pool(credentials, NetworkSettings(), insecure=insecure, scoped=scoped)
        async with pool:
            return VerifyOutcome(await verify_states(states, pool, deep=deep))

    return run_async(go)


def run_rules_sync(
    context: RulesContext,
    options: RuleOptions,
    *,
    push: bool,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> SyncOutcome:
    moment = now or dt.datetime.now(dt.UTC)
    credentials = context.credentials(Need.OPTIONAL if dry_run else Need.REQUIRED)

    async def go() -> SyncReport:
        async with context.pool(credentials) as pool:
            return await run_rules(
                context.rules, pool, context.store, options, now=moment, dry_run=dry_run
            )

    with context.repo.locked():
        context.store.check()
        if not dry_run:
            context.repo.discard_changes(context.store.root)
        report = run_async(go)
        outcome = SyncOutcome(report)
        if dry_run:
            return outcome
        changes = sorted(report.changes, key=lambda c: (c.namespace, c.mirror, c.image, c.tag))
        outcome.commit, outcome.pushed = publish_changes(context, changes, moment, push=push)
    return outcome


def _auth_file(
    auth: Path | None, env: Mapping[str, str]
) -> tuple[dict[str, Credential], list[AuthEntry], set[str]]:
    """An image-syncer auth file: per-host credentials, namespace-scoped ones, insecure hosts."""
    entries = load_auth(auth, env) if auth is not None else []
    by_host: dict[str, Credential] = {}
    scoped = []
    for entry in entries:
        if "/" in entry.prefix:
            scoped.append(entry)
        else:
            by_host.setdefault(entry.prefix, entry.credential)
    secret_filter().add(s for entry in entries for s in entry.credential.secrets())
    return by_host, scoped, {e.prefix.partition("/")[0] for e in entries if e.insecure}
