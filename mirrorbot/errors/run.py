"""The rest of the hierarchy: references, configuration, listing, state, shards and runs."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Protocol

from mirrorbot.errors.base import ErrorCode, MirrorbotError, RegistryError

__all__ = [
    "BackupError",
    "BackupTemplateError",
    "BreakerOpenError",
    "ConfigError",
    "CorruptStateError",
    "CredentialError",
    "CredentialsRefusedError",
    "EmptyListingError",
    "FragmentError",
    "GitError",
    "InvalidFragmentRecordError",
    "InvalidReferenceError",
    "ListingError",
    "Location",
    "LockError",
    "MissingFileError",
    "NameCollisionError",
    "PullBudgetError",
    "RefusedIdentity",
    "RegistryDownError",
    "RequestRejectedError",
    "StateError",
    "StorageError",
    "TagRegexError",
    "UnexpectedError",
    "UnsafeStatePathError",
    "format_key",
    "status_and_code",
]


# --- References -------------------------------------------------------------


class InvalidReferenceError(MirrorbotError, ValueError):
    """A string that is not a valid image reference, repository, tag or digest."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"invalid reference {value!r}: {reason}")
        self.value = value
        self.reason = reason


# --- Runs -------------------------------------------------------------------


class UnexpectedError(MirrorbotError):
    """Something no handler foresaw; reported for its image, never retried."""


# --- Configuration ----------------------------------------------------------


Location = tuple[str | int, ...]


def format_key(location: Sequence[object]) -> str:
    """``("namespaces", 1, "include", 0)`` → ``namespaces[1].include[0]``.

    Keys that are not identifier-like (registry hosts) are quoted so the path
    stays unambiguous: ``registries["docker.io"].password``.
    """
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(str(part))}]"
    return text


class ConfigError(MirrorbotError):
    """The configuration is unusable: where (file, line, key) and why.

    ``str(err)`` is ``path:line: key: message``; parts that are unknown are left out.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        line: int | None = None,
        key: str = "",
        location: Location = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.location: Location = tuple(location)
        self.key = key or format_key(self.location)

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return ": ".join(part for part in (where, self.key, self.message) if part)


class TagRegexError(MirrorbotError, ValueError):
    """A tag pattern RE2 cannot (or would silently mis-) read; the message says which part."""


class NameCollisionError(ConfigError):
    """Two different upstream repositories would overwrite each other in the mirror."""

    def __init__(
        self,
        upstream_a: str,
        upstream_b: str,
        mirror: str,
        *,
        path: str = "",
        line: int | None = None,
        key: str = "",
        location: tuple[str | int, ...] = (),
    ) -> None:
        self.upstream_a = upstream_a
        self.upstream_b = upstream_b
        self.mirror = mirror
        super().__init__(
            f"{upstream_a} and {upstream_b} both map to mirror repository {mirror}; "
            'use a name template that tells them apart, e.g. "{registry}/{namespace}/{repo}" '
            '(README: "Choosing mirror names")',
            path=path,
            line=line,
            key=key,
            location=location,
        )


# --- Registry traffic -------------------------------------------------------


class PullBudgetError(MirrorbotError):
    """A manifest GET not started: the run's pull budget or the registry's limit is reached.

    Not a failure: what needed the pull is deferred to the next run.
    """

    def __init__(self, registry: str, reference: str, why: str, *, shown_as: str = "") -> None:
        self.registry = registry
        self.reference = reference
        self.why = why
        super().__init__(f"{reference}: deferred: {shown_as or registry} pull budget ({why})")


class CredentialError(MirrorbotError):
    """Credentials could not be read; the message never includes a secret."""


class BreakerOpenError(MirrorbotError):
    """A breaker stopped asking a registry; it said why once, callers need not repeat it."""

    registry: str


class RegistryDownError(BreakerOpenError):
    """A registry failed too many operations in a row; the run stops asking it."""

    def __init__(self, registry: str, failures: int, last: str) -> None:
        self.registry = registry
        self.failures = failures
        self.last = last
        super().__init__(
            f"registry {registry} is down: {failures} operations in a row failed "
            f"(last: {last}); skipping it for the rest of this run"
        )


class RefusedIdentity(Protocol):
    """What a refusal names of the credential (``Credential`` has it; no secret is read)."""

    @property
    def username(self) -> str: ...
    @property
    def anonymous(self) -> bool: ...
    @property
    def origin(self) -> str: ...


def status_and_code(error: RegistryError) -> str:
    """``401 UNAUTHORIZED``: the registry's code, else the spec's for the status (a HEAD has
    no body to carry one), else the HTTP reason phrase."""
    code = min(error.codes, default="") or _STATUS_CODES.get(error.status, "")
    if not code:
        try:
            code = HTTPStatus(error.status).phrase
        except ValueError:
            code = ""
    return f"{error.status} {code}".strip()


_STATUS_CODES = {401: ErrorCode.UNAUTHORIZED.value, 403: ErrorCode.DENIED.value}


class CredentialsRefusedError(BreakerOpenError):
    """A registry refused a credential (or asked for one): no request with it can succeed."""

    def __init__(self, registry: str, credential: RefusedIdentity, error: RegistryError) -> None:
        self.registry = registry
        self.username = credential.username
        self.anonymous = credential.anonymous
        self.status = error.status
        self.reason = status_and_code(error)
        if credential.anonymous:
            text = (
                f"{registry}: needs credentials ({self.reason} to an anonymous request): "
                f"add registries.{registry} (username, password) to the config "
                f"or log in with `docker login {registry}`"
            )
        else:
            who = f"user {credential.username!r}" if credential.username else "an identity token"
            where = credential.origin or f"the credentials configured for {registry}"
            text = f"{registry}: credentials refused for {who} ({self.reason}): check {where}"
        super().__init__(text)


# --- Listing ----------------------------------------------------------------


class ListingError(MirrorbotError):
    """The top-level listing of a namespace failed: nothing about it can be trusted."""

    def __init__(self, source: str, cause: Exception | str) -> None:
        self.source = source
        self.cause = cause
        super().__init__(f"{source}: listing failed: {cause}")

    @property
    def reason(self) -> str:
        """The message without the leading ``<source>: `` (for reports that name it already)."""
        return str(self).removeprefix(f"{self.source}: ")


class EmptyListingError(ListingError):
    """The namespace listed no repository with a tag: a typo, or a strategy that sees nothing.

    Raised where a listing is assembled, so that sync, plan and request all fail
    the namespace instead of mirroring nothing, forever, with a green run.
    """

    def __init__(self, source: str, skipped: tuple[str, ...] = ()) -> None:
        self.source = source
        self.cause = "lists no repositories"
        self.skipped = skipped  # what the listing refused on the way, if anything
        MirrorbotError.__init__(
            self, f"{source}: lists no repositories: check the name or set `list:`"
        )


# --- Storage-directory backend ----------------------------------------------


class StorageError(MirrorbotError):
    """The storage directory is unusable, or one of its files is missing or refused."""


class MissingFileError(StorageError):
    """A file the layout expects is not there (as opposed to one we refuse to read)."""


# --- Requests ---------------------------------------------------------------


class RequestRejectedError(MirrorbotError):
    """The request cannot be accepted; ``reason`` is prose we wrote, the rest is quoted."""

    def __init__(self, reason: str, *, detail: str = "", quoted: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.quoted = quoted


# --- State ------------------------------------------------------------------


class LockError(MirrorbotError):
    """The lock file cannot be opened (a link, a directory, no permission)."""


class StateError(MirrorbotError):
    """A state file that is not what mirrorbot writes: named, never silently rewritten."""


class UnsafeStatePathError(StateError):
    """A link or special file where the state repository must hold plain files and folders."""

    def __init__(self, path: str, what: str, expected: str = "regular file") -> None:
        super().__init__(
            f"{path} is a {what}, not a {expected}: links and special files in the state "
            "repository are refused, never followed"
        )
        self.path = path
        self.what = what


class CorruptStateError(StateError):
    """A state file that cannot be data: too large, not UTF-8, not (sane) JSON."""


class GitError(MirrorbotError):
    """A git operation failed; the message is redacted."""


# --- Backups ----------------------------------------------------------------


class BackupTemplateError(MirrorbotError, ValueError):
    """A ``backup:`` template that cannot render a tag (config load: exit 2)."""


class BackupError(MirrorbotError):
    """The previous image could not be kept: the tag's update does not happen."""


# --- Shards -----------------------------------------------------------------


class FragmentError(MirrorbotError):
    """A fragment that cannot be read or does not fit with the others."""


class InvalidFragmentRecordError(FragmentError):
    """One record of a fragment that does not fit the grammar mirrorbot writes: dropped."""
