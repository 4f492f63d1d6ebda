"""Registry pools for a run: the one place a job's pool is assembled.

:meth:`RegistryPool.from_settings` turns ``network:`` into a pool; this adds
what the run's files say on top of it: storage-directory backends for
``strategy: storage`` namespaces, and the namespace-scoped credentials of an
image-syncer auth file (read by :mod:`mirrorbot.jobs.context.imagesyncer`, so a
plain sync never loads the image-syncer format).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING

from mirrorbot.config import NetworkSettings, ResolvedNamespace
from mirrorbot.engine.backends.storage import open_storage
from mirrorbot.engine.registry.credentials import CredentialStore
from mirrorbot.engine.registry.pool import RegistryPool

if TYPE_CHECKING:
    from mirrorbot.config.imagesyncer import AuthEntry

__all__ = ["build_pool"]


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
