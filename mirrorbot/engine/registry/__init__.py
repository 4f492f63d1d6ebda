"""The registry client: one concern per module, assembled by :class:`RegistryPool`."""

from mirrorbot.engine.registry.blobs import MountResult
from mirrorbot.engine.registry.bounded import Limits
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.registry.credentials import Credential, CredentialStore
from mirrorbot.engine.registry.media import Descriptor, Manifest, Platform, PlatformFilter
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.engine.registry.retry import RetryBudget, RetryPolicy
from mirrorbot.engine.registry.session import RequestCounter
from mirrorbot.errors import (
    BlobIntegrityError,
    BreakerOpenError,
    CredentialError,
    CredentialsRefusedError,
    DeadlineExceededError,
    DigestMismatchError,
    ErrorCode,
    ListingTooLargeError,
    ManifestTooLargeError,
    MirrorbotError,
    NoMatchingPlatformError,
    ProtocolViolationError,
    PullBudgetError,
    RegistryDownError,
    RegistryError,
    RegistryUnreachableError,
    ResponseTooLargeError,
    StreamInterruptedError,
    TransferTooSlowError,
    UnsupportedManifestError,
)

__all__ = [
    "BlobIntegrityError",
    "BreakerOpenError",
    "Credential",
    "CredentialError",
    "CredentialStore",
    "CredentialsRefusedError",
    "DeadlineExceededError",
    "Descriptor",
    "DigestMismatchError",
    "ErrorCode",
    "Limits",
    "ListingTooLargeError",
    "Manifest",
    "ManifestTooLargeError",
    "MirrorbotError",
    "MountResult",
    "NoMatchingPlatformError",
    "Platform",
    "PlatformFilter",
    "ProtocolViolationError",
    "PullBudgetError",
    "RegistryClient",
    "RegistryDownError",
    "RegistryError",
    "RegistryPool",
    "RegistryUnreachableError",
    "RequestCounter",
    "ResponseTooLargeError",
    "RetryBudget",
    "RetryPolicy",
    "StreamInterruptedError",
    "TransferTooSlowError",
    "UnsupportedManifestError",
]
