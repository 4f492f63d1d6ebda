"""The whole exception hierarchy; every error mirrorbot raises on purpose is one of these.

Import from here (``from mirrorbot.errors import RegistryError``); the two modules
behind it are only files. Each error carries what a user needs to act on it (the
reference, the registry's status and ``(code, message, detail)`` list, the config
key or state path); whether a registry error is worth retrying is decided by
:attr:`RegistryError.temporary` from two tables, never at the call site.
``httpx``'s ``_exceptions.py`` is the model: one tree, drawn here.

::

    MirrorbotError
        BackupError
        BackupTemplateError (also ValueError)
        BlobIntegrityError
        BreakerOpenError
            CredentialsRefusedError
            RegistryDownError
        ConfigError
            NameCollisionError
        CredentialError
        DigestMismatchError
        FragmentError
            InvalidFragmentRecordError
        GitError
        InvalidReferenceError (also ValueError)
        ListingError
            EmptyListingError
        ListingTooLargeError
        LockError
        ManifestTooLargeError
        ProtocolViolationError
            ResponseTooLargeError
        PullBudgetError
        RegistryError
        RegistryUnreachableError
            DeadlineExceededError
            StreamInterruptedError
            TransferTooSlowError
        RequestRejectedError
        StateError
            CorruptStateError
            UnsafeStatePathError
        StorageError
            MissingFileError
        TagRegexError (also ValueError)
        UnexpectedError
        UnsupportedManifestError
            NoMatchingPlatformError
"""

from mirrorbot.errors.base import (
    TEMPORARY_CODES,
    TEMPORARY_STATUSES,
    BlobIntegrityError,
    DeadlineExceededError,
    Diagnostic,
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
from mirrorbot.errors.run import (
    BackupError,
    BackupTemplateError,
    BreakerOpenError,
    ConfigError,
    CorruptStateError,
    CredentialError,
    CredentialsRefusedError,
    EmptyListingError,
    FragmentError,
    GitError,
    InvalidFragmentRecordError,
    InvalidReferenceError,
    ListingError,
    Location,
    LockError,
    MissingFileError,
    NameCollisionError,
    PullBudgetError,
    RefusedIdentity,
    RegistryDownError,
    RequestRejectedError,
    StateError,
    StorageError,
    TagRegexError,
    UnexpectedError,
    UnsafeStatePathError,
    format_key,
    status_and_code,
)

__all__ = [
    "TEMPORARY_CODES",
    "TEMPORARY_STATUSES",
    "BackupError",
    "BackupTemplateError",
    "BlobIntegrityError",
    "BreakerOpenError",
    "ConfigError",
    "CorruptStateError",
    "CredentialError",
    "CredentialsRefusedError",
    "DeadlineExceededError",
    "Diagnostic",
    "DigestMismatchError",
    "EmptyListingError",
    "ErrorCode",
    "FragmentError",
    "GitError",
    "InvalidFragmentRecordError",
    "InvalidReferenceError",
    "ListingError",
    "ListingTooLargeError",
    "Location",
    "LockError",
    "ManifestTooLargeError",
    "MirrorbotError",
    "MissingFileError",
    "NameCollisionError",
    "NoMatchingPlatformError",
    "ProtocolViolationError",
    "PullBudgetError",
    "RefusedIdentity",
    "RegistryDownError",
    "RegistryError",
    "RegistryUnreachableError",
    "RequestRejectedError",
    "ResponseTooLargeError",
    "StateError",
    "StorageError",
    "StreamInterruptedError",
    "TagRegexError",
    "TransferTooSlowError",
    "UnexpectedError",
    "UnsafeStatePathError",
    "UnsupportedManifestError",
    "format_key",
    "status_and_code",
]
