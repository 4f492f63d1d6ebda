"""The registry client: one concern per module, assembled by :class:`RegistryPool`."""

from mirrorbot.registry.client import MountResult, RegistryClient, RequestCounter
from mirrorbot.registry.credentials import Credential, CredentialError, CredentialStore
from mirrorbot.registry.errors import (
    BlobIntegrityError,
    DigestMismatchError,
    ErrorCode,
    ManifestTooLargeError,
    MirrorbotError,
    RegistryError,
    RegistryUnreachableError,
    StreamInterruptedError,
    UnsupportedManifestError,
)
from mirrorbot.registry.media import Descriptor, Manifest, Platform, PlatformFilter
from mirrorbot.registry.pool import RegistryPool
from mirrorbot.registry.retry import RegistryDownError, RetryBudget, RetryPolicy

__all__ = [
    "BlobIntegrityError",
    "Credential",
    "CredentialError",
    "CredentialStore",
    "Descriptor",
    "DigestMismatchError",
    "ErrorCode",
    "Manifest",
    "ManifestTooLargeError",
    "MirrorbotError",
    "MountResult",
    "Platform",
    "PlatformFilter",
    "RegistryClient",
    "RegistryDownError",
    "RegistryError",
    "RegistryPool",
    "RegistryUnreachableError",
    "RequestCounter",
    "RetryBudget",
    "RetryPolicy",
    "StreamInterruptedError",
    "UnsupportedManifestError",
]
