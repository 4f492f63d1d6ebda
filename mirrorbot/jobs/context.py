"""Wiring for the commands that read a config: sync, plan, verify (and repair), find.

This is the one place that assembles config, credentials, registry pool, state
repository and publisher; the stages themselves stay unaware of each other.

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
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TypeVar

import git

from mirrorbot.config import (
    Config,
    NetworkSettings,
    StateSettings,
    load_config,
)
from mirrorbot.config.credentials import Need, resolve_credentials
from mirrorbot.config.imagesyncer import AuthEntry, Rule, load_auth, load_rules
from mirrorbot.domain.changes import Change, apply_changes, pending_changes
from mirrorbot.domain.shards import Fragment, assign, merge_changes, missing_shards, read_fragments
from mirrorbot.engine.backends.storage import open_storage
from mirrorbot.engine.copier import Copier
from mirrorbot.engine.registry.credentials import Credential, CredentialStore
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.errors import FragmentError, GitError
from mirrorbot.jobs.progress import ProgressSink
from mirrorbot.jobs.rules import RuleOptions, run_rules
from mirrorbot.jobs.sync import Failure, Sync, SyncOptions, SyncReport, stop_on_signals
from mirrorbot.jobs.verify import (
    RepairFailure,
    VerifyResult,
    confirm_changes,
    describe_repair,
    recheck_repairs,
    repair_drifts,
    verify_states,
)
from mirrorbot.logs import secret_filter
from mirrorbot.redact import redact
from mirrorbot.reference import split_registry
from mirrorbot.state.gitrepo import MetadataRepo, looks_like_url
from mirrorbot.state.store import NamespaceState, StateStore

__all__ = [
    "JobContext",
    "PublishOutcome",
    "SyncOutcome",
    "VerifyOutcome",
    "commit_message",
    "open_context",
    "open_state",
    "publish_changes",
    "run_publish",
    "run_sync",
    "run_verify",
    "shard_matrix",
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
        pool = RegistryPool.from_settings(credentials, self.config.network, insecure=insecure)
        for namespace in self.config.namespace_plans():
            if namespace.strategy == "storage" and namespace.storage_path is not None:
                pool.register(
                    namespace.registry,
                    partial(open_storage, namespace.registry, namespace.storage_path),
                )
        return pool


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


def commit_message(changes: list[Change], when: dt.datetime) -> str:
    new = sum(1 for c in changes if c.kind == "new")
    updated = sum(1 for c in changes if c.kind == "updated")
    images = len({(c.namespace, c.image) for c in changes})
    namespaces = sorted({c.namespace for c in changes})
    subject = f"mirror: {new} new, {updated} updated tags in {images} images"
    labels = {
        "repaired": "repaired",
        "skipped": "skipped",
        "gone": "gone upstream",
        "returned": "back upstream",
    }
    extra = {label: sum(1 for c in changes if c.kind == kind) for kind, label in labels.items()}
    if any(extra.values()):
        subject += "".join(f", {count} {label}" for label, count in extra.items() if count)
    body = "\n".join(f"- {ns}" for ns in namespaces)
    return f"{subject}\n\nRun at {when.astimezone(dt.UTC):%Y-%m-%d %H:%M UTC}.\n\n{body}\n"


@dataclass(slots=True)
class SyncOutcome:
    report: SyncReport
    commit: str | None = None
    pushed: bool = False
    fragment: Path | None = None


def run_sync(
    context: JobContext,
    options: SyncOptions,
    *,
    push: bool,
    now: dt.datetime | None = None,
    output: Path | None = None,
    progress: ProgressSink | None = None,
    shared: tuple[RegistryPool, asyncio.AbstractEventLoop] | None = None,
) -> SyncOutcome:
    """Sync, then commit (and push) — or, with ``output``, write a shard fragment instead.

    The clone is this run's from reading state to pushing it: one run at a time on it.
    ``shared`` is a pool kept open on a running event loop (``notify --listen`` keeps
    one for its life); called from a worker thread, the sync runs on that loop with
    that pool, so tokens and connections outlive the run. The loop's owner handles
    signals then.
    """
    with context.repo.locked():
        moment = now or dt.datetime.now(dt.UTC)
        credentials = context.credentials(
            sync_hosts(context.config, options.namespaces),
            Need.OPTIONAL if options.dry_run else Need.REQUIRED,
        )

        network = context.config.network
        options = replace(
            options,
            image_concurrency=network.image_concurrency,
            blob_concurrency=network.blob_concurrency,
            time_budget=network.time_budget if options.time_budget is None else options.time_budget,
        )

        async def go() -> SyncReport:
            opened = context.pool(credentials) if shared is None else nullcontext(shared[0])
            async with opened as pool:
                sync = Sync(
                    context.config, pool, context.store, options, now=moment, progress=progress
                )
                with stop_on_signals(sync) if shared is None else nullcontext():
                    report = await sync.run()
                    if options.repair and not options.dry_run and not sync.stopping:
                        await repair_after_sync(sync, pool)
                    return report

        # A link or special file under the state folder stops the run before anything is read.
        context.store.check()
        if not options.dry_run and output is None:
            # Uncommitted state is what a killed run left behind; the registries are the truth.
            context.repo.discard_changes(context.store.root)

        if shared is None:
            report = run_async(go)
        else:
            report = asyncio.run_coroutine_threadsafe(go(), shared[1]).result()
        outcome = SyncOutcome(report)
        if options.dry_run:
            return outcome
        changes = sorted(report.changes, key=lambda c: (c.namespace, c.image, c.tag))
        if output is not None:
            index, count = options.shard or (1, 1)
            fragment = Fragment(
                index=index,
                count=count,
                when=iso_utc(moment),
                changes=tuple(changes),
                # Fragments travel as artifacts and are printed by publish: redacted here.
                failures=tuple(
                    {"upstream": f.upstream, "target": f.target, "error": redact(f.error)}
                    for f in report.failures
                ),
                errors=tuple(redact(error) for error in report.listing_errors),
            )
            outcome.fragment = fragment.write(output)
            return outcome
        outcome.commit, outcome.pushed = publish_changes(context, changes, moment, push=push)
        return outcome


async def repair_after_sync(sync: Sync, pool: RegistryPool) -> None:
    """``sync --repair``: a shallow verify of the namespaces synced; copy again what is missing.

    Tags this run already copied are the mirror's truth now, whatever the
    recorded digest was: they are not repaired.
    """
    report = sync.report
    states = [run.state for run in report.runs if run.state is not None and run.error is None]
    result = await verify_states(states, pool, concurrency=sync.options.head_concurrency)
    copied = {(c.namespace, c.image, c.tag) for c in report.changes}
    holes = [d for d in result.drifts if (d.namespace, d.image, d.tag) not in copied]
    namespaces = {run.namespace.source: run.namespace for run in report.runs}
    changes, failures = await repair_drifts(
        holes,
        states,
        namespaces,
        sync.copier,
        synced=sync.synced_stamp,
        concurrency=sync.options.image_concurrency,
        stopping=lambda: sync.stopping,
    )
    report.changes.extend(changes)
    report.warnings.extend(describe_repair(change) for change in changes)
    report.failures.extend(
        Failure(f.upstream, f.target, f"not repaired: {f.error}") for f in failures
    )


@dataclass(slots=True)
class VerifyOutcome:
    result: VerifyResult
    repair: bool = False
    changes: list[Change] = field(default_factory=list)
    failures: list[RepairFailure] = field(default_factory=list)
    commit: str | None = None
    pushed: bool = False

    @property
    def exit_code(self) -> int:
        """0 when the mirror matches state (again, after a repair)."""
        return 1 if self.failures or (self.result.drifts and not self.repair) else 0


def run_verify(
    context: JobContext,
    *,
    deep: bool = False,
    repair: bool = False,
    push: bool = True,
    now: dt.datetime | None = None,
) -> VerifyOutcome:
    """Verify every state file; with ``repair``, copy the holes again and publish like a sync."""
    moment = now or dt.datetime.now(dt.UTC)
    if repair:
        context.repo.discard_changes(context.store.root)
    states = list(context.store.all())
    namespaces = {ns.source: ns for ns in context.config.namespace_plans()}
    network = context.config.network
    credentials = context.credentials(
        verify_hosts(context.config, states, repair=repair),
        Need.REQUIRED if repair else Need.OPTIONAL,
    )

    async def go() -> VerifyOutcome:
        async with context.pool(credentials) as pool:
            outcome = VerifyOutcome(await verify_states(states, pool, deep=deep), repair)
            if repair and outcome.result.drifts:
                outcome.changes, outcome.failures = await repair_drifts(
                    outcome.result.drifts,
                    states,
                    namespaces,
                    Copier(pool, blob_concurrency=network.blob_concurrency),
                    synced=iso_utc(moment),
                    concurrency=network.image_concurrency,
                )
                outcome.failures += await recheck_repairs(outcome.changes, pool, deep=deep)
            return outcome

    outcome = run_async(go)
    if outcome.changes:
        outcome.commit, outcome.pushed = publish_changes(
            context, outcome.changes, moment, push=push
        )
    return outcome


def publish_changes(
    context: JobContext | RulesContext, changes: list[Change], moment: dt.datetime, *, push: bool
) -> tuple[str | None, bool]:
    """Record what of ``changes`` the remote state lacks: state, CHANGELOG, index; one commit.

    The changes are re-applied on the remote's tip after every fetch (see
    ``MetadataRepo.publish``), so a concurrent run, a re-run or a second
    ``publish`` of the same fragments never duplicates or loses an entry.
    """
    repo, store = context.repo, context.store
    if not changes and not (push and repo.has_remote and repo.unpushed()):
        return None, False

    def build() -> tuple[list[Path], str]:
        pending = pending_changes(store, changes)
        if not pending:
            return [], ""
        return apply_changes(store, pending, moment), commit_message(pending, moment)

    return repo.publish(build, push=push)


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
        return _rules_pool(credentials, self.network, self.insecure, self.scoped)


def _rules_pool(
    credentials: CredentialStore,
    network: NetworkSettings,
    insecure: Iterable[str],
    scoped: Iterable[AuthEntry],
) -> RegistryPool:
    """A pool for image-syncer files: host credentials plus ``registry/namespace`` ones."""
    pool = RegistryPool.from_settings(credentials, network, insecure=insecure)
    for entry in scoped:
        pool.scope_credentials(entry.prefix, entry.credential)
    return pool


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
    # (namespace, destination) pair gets its own state file (see rulesync).
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
        async with _rules_pool(credentials, NetworkSettings(), insecure, scoped) as pool:
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


@dataclass(slots=True)
class PublishOutcome:
    changes: list[Change]
    fragments: int
    missing: list[int]
    failures: list[dict[str, str]]
    errors: list[str]
    commit: str | None = None
    pushed: bool = False
    # Fragment records that failed validation: dropped, never recorded, always reported.
    rejected: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.missing or self.failures or self.errors or self.rejected else 0


def run_publish(context: JobContext, directories: list[Path], *, push: bool) -> PublishOutcome:
    """Merge shard fragments into state, one CHANGELOG section and the index; commit once."""
    context.store.check()
    fragments = read_fragments(directories)
    if not fragments:
        raise FragmentError("no fragment-*.json found in " + ", ".join(str(d) for d in directories))
    changes, unconfirmed = confirm_in_mirror(context, merge_changes(fragments))
    when = min(fragment.when for fragment in fragments)
    outcome = PublishOutcome(
        changes=changes,
        fragments=len(fragments),
        missing=missing_shards(fragments),
        failures=[failure for fragment in fragments for failure in fragment.failures],
        errors=[error for fragment in fragments for error in fragment.errors],
        rejected=[line for fragment in fragments for line in fragment.rejected] + unconfirmed,
    )
    moment = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    outcome.commit, outcome.pushed = publish_changes(context, changes, moment, push=push)
    return outcome


def confirm_in_mirror(context: JobContext, changes: list[Change]) -> tuple[list[Change], list[str]]:
    """Keep the fragments' records the mirror verifiably holds (read-only HEADs).

    The mirror is read with its credentials when they are set, anonymously otherwise
    (a public Docker Hub repository answers HEADs to anyone).
    """
    if not changes:
        return [], []
    hosts = {split_registry(change.target_repository)[0] for change in changes}
    credentials = context.credentials(hosts, Need.OPTIONAL)

    async def go() -> tuple[list[Change], list[str]]:
        async with context.pool(credentials) as pool:
            return await confirm_changes(changes, pool)

    return run_async(go)


def iso_utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shard_matrix(report: SyncReport, count: int) -> dict[str, object]:
    """What ``plan --shards N --json`` adds: the Actions matrix and the image assignment."""
    weights = report.shard_weights()
    assignments = assign(weights, count)
    loads = [0] * count
    for key, shard in assignments.items():
        loads[shard - 1] += weights[key]
    return {
        "matrix": {"shard": [f"{index}/{count}" for index in range(1, count + 1)]},
        "assignments": dict(sorted(assignments.items())),
        "loads": loads,
    }
