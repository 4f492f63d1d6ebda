"""The registry client: one concern per module, assembled by :class:`RegistryPool`."""

from mirrorbot.registry.bounded import Limits
from mirrorbot.registry.client import MountResult, RegistryClient, RequestCounter
from mirrorbot.registry.credentials import Credential, CredentialError, CredentialStore
from mirrorbot.registry.errors import (
    BlobIntegrityError,
    DeadlineExceededError,
    DigestMismatchError,
    ErrorCode,
    ListingTooLargeError,
    ManifestTooLargeError,
    MirrorbotError,
    NoMatchingPlatformError,
    ProtocolViolationError,
    RegistryError,
    RegistryUnreachableError,
    ResponseTooLargeError,
    StreamInterruptedError,
    TransferTooSlowError,
    UnsupportedManifestError,
)
from mirrorbot.registry.media import Descriptor, Manifest, Platform, PlatformFilter
from mirrorbot.registry.pool import RegistryPool
from mirrorbot.registry.pulls import PullBudgetError
from mirrorbot.registry.retry import (
    BreakerOpenError,
    CredentialsRefusedError,
    RegistryDownError,
    RetryBudget,
    RetryPolicy,
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
