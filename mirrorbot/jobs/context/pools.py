"""Registry pools and credentials for a run: the one place a job's pool is assembled.

:meth:`RegistryPool.from_settings` turns ``network:`` into a pool; this adds
what the run's files say on top of it: storage-directory backends for
``strategy: storage`` namespaces, and the namespace-scoped credentials of an
image-syncer auth file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path

from mirrorbot.config import NetworkSettings, ResolvedNamespace
from mirrorbot.config.imagesyncer import AuthEntry, load_auth
from mirrorbot.engine.backends.storage import open_storage
from mirrorbot.engine.registry.credentials import Credential, CredentialStore
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.logs import secret_filter

__all__ = ["auth_file", "build_pool"]


def build_pool(
    credentials: CredentialStore,
    network: NetworkSettings,
    *,
    insecure: Iterable[str] = (),
    storage: Iterable[ResolvedNamespace] = (),
    scoped: Iterable[AuthEntry] = (),
) -> RegistryPool:
    """A pool from ``network:``, with storage backends and ``registry/namespace`` credentials."""
    pool = RegistryPool.from_settings(credentials, network, insecure=insecure)
    for namespace in storage:
        if namespace.strategy == "storage" and namespace.storage_path is not None:
            pool.register(
                namespace.registry,
                partial(open_storage, namespace.registry, namespace.storage_path),
            )
    for entry in scoped:
        pool.scope_credentials(entry.prefix, entry.credential)
    return pool


def auth_file(
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
