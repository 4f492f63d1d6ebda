"""The registry half of the hierarchy: the root, HTTP answers, transport and protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "TEMPORARY_CODES",
    "TEMPORARY_STATUSES",
    "BlobIntegrityError",
    "DeadlineExceededError",
    "Diagnostic",
    "DigestMismatchError",
    "ErrorCode",
    "ListingTooLargeError",
    "ManifestTooLargeError",
    "MirrorbotError",
    "NoMatchingPlatformError",
    "ProtocolViolationError",
    "RegistryError",
    "RegistryUnreachableError",
    "ResponseTooLargeError",
    "StreamInterruptedError",
    "TransferTooSlowError",
    "UnsupportedManifestError",
]


class ErrorCode(StrEnum):
    """Error codes of the distribution spec, plus the ones registries add in practice."""

    BLOB_UNKNOWN = "BLOB_UNKNOWN"
    BLOB_UPLOAD_INVALID = "BLOB_UPLOAD_INVALID"
    BLOB_UPLOAD_UNKNOWN = "BLOB_UPLOAD_UNKNOWN"
    DIGEST_INVALID = "DIGEST_INVALID"
    MANIFEST_BLOB_UNKNOWN = "MANIFEST_BLOB_UNKNOWN"
    MANIFEST_INVALID = "MANIFEST_INVALID"
    MANIFEST_UNKNOWN = "MANIFEST_UNKNOWN"
    MANIFEST_UNVERIFIED = "MANIFEST_UNVERIFIED"
    NAME_INVALID = "NAME_INVALID"
    NAME_UNKNOWN = "NAME_UNKNOWN"
    SIZE_INVALID = "SIZE_INVALID"
    TAG_INVALID = "TAG_INVALID"
    UNAUTHORIZED = "UNAUTHORIZED"
    DENIED = "DENIED"
    UNSUPPORTED = "UNSUPPORTED"
    TOOMANYREQUESTS = "TOOMANYREQUESTS"
    PAGINATION_NUMBER_INVALID = "PAGINATION_NUMBER_INVALID"
    RANGE_INVALID = "RANGE_INVALID"
    UNAVAILABLE = "UNAVAILABLE"
    UNKNOWN = "UNKNOWN"


TEMPORARY_CODES = frozenset(
    {
        ErrorCode.BLOB_UPLOAD_INVALID,
        ErrorCode.TOOMANYREQUESTS,
        ErrorCode.UNAVAILABLE,
        ErrorCode.UNKNOWN,
    }
)
TEMPORARY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class MirrorbotError(Exception):
    """Base of every error mirrorbot raises on purpose."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One entry of a registry's ``{"errors": [...]}`` body."""

    code: str
    message: str = ""
    detail: Any = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


class RegistryError(MirrorbotError):
    """A registry answered with an unexpected status."""

    def __init__(
        self,
        *,
        status: int,
        method: str,
        url: str,
        reference: str | None,
        diagnostics: Sequence[Diagnostic] = (),
        retry_after: float | None = None,
        body_excerpt: str = "",
    ) -> None:
        self.status = status
        self.method = method
        self.url = url
        self.reference = reference
        self.diagnostics = tuple(diagnostics)
        self.retry_after = retry_after
        self.body_excerpt = body_excerpt
        super().__init__(self._describe())

    def _describe(self) -> str:
        what = f"{self.reference}: " if self.reference else ""
        detail = "; ".join(str(d) for d in self.diagnostics) or self.body_excerpt[:200]
        detail = " ".join(detail.split())  # an HTML error page must not break the one-line message
        text = f"{what}{self.method} {self.url} returned {self.status}"
        return f"{text} ({detail})" if detail else text

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(d.code for d in self.diagnostics)

    def has(self, code: ErrorCode) -> bool:
        return code.value in self.codes

    @property
    def temporary(self) -> bool:
        if self.status in TEMPORARY_STATUSES:
            return True
        return any(code in TEMPORARY_CODES for code in self.codes)

    @property
    def not_found(self) -> bool:
        return self.status == 404


class RegistryUnreachableError(MirrorbotError):
    """The network failed us (connection refused, reset, timed out) after retries."""

    def __init__(self, registry: str, reference: str | None, cause: Exception) -> None:
        self.registry = registry
        self.reference = reference
        self.cause = cause
        what = f"{reference}: " if reference else ""
        super().__init__(f"{what}registry {registry} unreachable: {type(cause).__name__}: {cause}")


class StreamInterruptedError(RegistryUnreachableError):
    """A download broke off mid-body (cut connection, stall past the read timeout)."""


class DeadlineExceededError(RegistryUnreachableError):
    """A small request (manifest, listing page, token) took longer than its total deadline.

    Timeouts are per read: without a deadline, an answer sent at one byte a
    second would hold the run for hours.
    """

    def __init__(self, registry: str, reference: str | None, seconds: float) -> None:
        self.seconds = seconds
        cause = TimeoutError(f"no complete answer within {seconds:g} s (network.request_deadline)")
        super().__init__(registry, reference, cause)


class TransferTooSlowError(RegistryUnreachableError):
    """A blob stream moved fewer bytes than the minimum rate asks for over a whole window."""

    def __init__(self, registry: str, reference: str | None, rate: int, window: float) -> None:
        self.rate = rate
        self.window = window
        cause = TimeoutError(
            f"fewer than {rate} bytes/s over {window:g} s (network.min_transfer_rate)"
        )
        super().__init__(registry, reference, cause)


class ProtocolViolationError(MirrorbotError):
    """A registry answered outside the protocol: a redirect loop, a body that is not what its
    headers say, a ``Link`` to another host, an answer past its size cap."""

    def __init__(
        self, registry: str, reference: str | None, problem: str, url: str | None = None
    ) -> None:
        self.registry = registry
        self.reference = reference
        self.problem = problem
        self.url = url
        what = f"{reference}: " if reference else ""
        where = f" ({url})" if url else ""
        # One line: a hostile answer must not break the report's layout.
        text = " ".join(f"{what}registry {registry} broke the protocol: {problem}{where}".split())
        super().__init__(text)


class ResponseTooLargeError(ProtocolViolationError):
    """An answer went past the byte cap of its kind (decoded bytes; raw ones too)."""

    def __init__(
        self, registry: str, reference: str | None, limit: int, received: int, url: str | None
    ) -> None:
        self.limit = limit
        self.received = received
        super().__init__(registry, reference, f"answer exceeds the {limit} byte limit", url)


class ListingTooLargeError(MirrorbotError):
    """A listing went past mirrorbot's cap on pages or entries: no real namespace is that big."""

    def __init__(self, registry: str, reference: str | None, what: str, limit: int) -> None:
        self.registry = registry
        self.reference = reference
        self.what = what
        self.limit = limit
        where = f"{reference}: " if reference else ""
        super().__init__(
            f"{where}listing on {registry} has more than {limit} {what}: refused, not truncated"
        )


class DigestMismatchError(MirrorbotError):
    """Content did not hash to the digest it was asked for or announced with."""

    def __init__(self, reference: str, expected: str, actual: str, what: str = "content") -> None:
        self.reference = reference
        self.expected = expected
        self.actual = actual
        super().__init__(f"{reference}: {what} digest mismatch: expected {expected}, got {actual}")


class BlobIntegrityError(MirrorbotError):
    """A blob stream ended with the wrong size (truncated or padded)."""

    def __init__(self, reference: str, digest: str, expected_size: int, actual_size: int) -> None:
        self.reference = reference
        self.digest = digest
        self.expected_size = expected_size
        self.actual_size = actual_size
        super().__init__(
            f"{reference}: blob {digest} has {actual_size} bytes, descriptor says {expected_size}"
        )


class UnsupportedManifestError(MirrorbotError):
    """A manifest we refuse to copy rather than mangle (schema1, unknown types)."""

    def __init__(self, reference: str, media_type: str, reason: str) -> None:
        self.reference = reference
        self.media_type = media_type
        super().__init__(
            f"{reference}: unsupported manifest {media_type or '(no media type)'}: {reason}"
        )


class NoMatchingPlatformError(UnsupportedManifestError):
    """A platform filter keeps nothing of this image: image-syncer's --os/--arch skip it."""


class ManifestTooLargeError(MirrorbotError):
    def __init__(self, reference: str, size: int, limit: int) -> None:
        self.reference = reference
        self.size = size
        self.limit = limit
        super().__init__(f"{reference}: manifest of {size} bytes exceeds the {limit} byte limit")
