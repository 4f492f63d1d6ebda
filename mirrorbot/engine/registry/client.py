"""An async client for one registry: one method per endpoint of the distribution API.

The request core (HTTP, auth, retries, deadlines, typed errors) is
:mod:`.session`; the endpoints are grouped by kind in :mod:`.manifests`,
:mod:`.blobs` and :mod:`.listing`. This class joins them: what callers hold.
"""

from __future__ import annotations

from mirrorbot.engine.registry.blobs import BlobEndpoints
from mirrorbot.engine.registry.listing import ListingEndpoints
from mirrorbot.engine.registry.manifests import ManifestEndpoints

__all__ = ["RegistryClient"]


class RegistryClient(ManifestEndpoints, BlobEndpoints, ListingEndpoints):
    """The HTTP API of one registry. Use as an async context manager."""
