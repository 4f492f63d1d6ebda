"""Registry credentials from ``registries:``, resolved when and where a command needs them.

The config keeps ``${VAR}`` as written (:mod:`mirrorbot.config` checks only
their syntax). A command expands them at the moment it builds its registry
pool, for the registries that run talks to, under one of two policies:

- :attr:`Need.REQUIRED` (``sync``, ``verify --repair``, image-syncer rules):
  an unset variable is a :class:`ConfigError` naming it (exit 2). A writer
  must not quietly fall back to anonymous access.
- :attr:`Need.OPTIONAL` (``plan``, ``verify``, ``mirrorbot request``): an
  unset variable means "no configured credentials for that registry"; the run
  goes on and one warning line per registry names the variable.

A ``registries:`` entry for a host the run does not use is never expanded, so
its variables need not be set. Every value is registered for redaction as
soon as it is expanded, before anything could print it.
"""

from __future__ import annotations

import enum
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from mirrorbot.engine.registry.credentials import Credential, expand_env
from mirrorbot.errors import CredentialError, format_key
from mirrorbot.redact import register
from mirrorbot.reference import normalize_registry

if TYPE_CHECKING:
    from mirrorbot.config.document import Config

__all__ = ["Need", "ResolvedCredentials", "resolve_credentials"]

_log = logging.getLogger(__name__)
_FIELDS: Final = ("username", "password", "identity_token")


class Need(enum.Enum):
    """How much a command needs the configured credentials."""

    REQUIRED = "required"  # writes: an unset variable is a config error
    OPTIONAL = "optional"  # reads: an unset variable means no credentials for that registry


@dataclass(frozen=True, slots=True)
class ResolvedCredentials:
    """Host → credential for the hosts that have one, and what was done without."""

    credentials: dict[str, Credential]
    warnings: tuple[str, ...] = ()

    def log_warnings(self) -> None:
        for warning in self.warnings:
            _log.warning("%s", warning)


def resolve_credentials(
    config: Config,
    environ: Mapping[str, str] | None = None,
    *,
    hosts: Iterable[str] | None = None,
    need: Need = Need.REQUIRED,
) -> ResolvedCredentials:
    """Expand ``registries:`` for ``hosts`` (default: every entry) from ``environ``.

    ``environ`` defaults to ``os.environ``. Hosts without an entry, and entries
    whose credentials are left out under :attr:`Need.OPTIONAL`, fall back to the
    docker config (:class:`mirrorbot.engine.registry.credentials.CredentialStore`).
    """
    env = os.environ if environ is None else environ
    wanted = None if hosts is None else {normalize_registry(host) for host in hosts}
    found: dict[str, Credential] = {}
    warnings: list[str] = []
    for host, settings in config.registries.items():
        if wanted is not None and host not in wanted:
            continue
        values: dict[str, str] = {}
        problems: list[str] = []
        for field in _FIELDS:
            raw = getattr(settings, field)
            if raw is None:
                continue
            try:
                value = expand_env(raw, env)
            except CredentialError as exc:
                if need is Need.REQUIRED:
                    raise config.registry_error(host, field, str(exc)) from None
                problems.append(f"{format_key(('registries', host, field))}: {exc}")
                continue
            if field != "username":
                register([value])  # at once: before anything else can print it
            values[field] = value
        credential = Credential(
            values.get("username", ""),
            values.get("password", ""),
            values.get("identity_token", ""),
            origin=_origin(config, host, settings),
        )
        register(credential.secrets())
        if not problems and credential.password and not credential.username:
            message = "a password needs a username (the username is empty)"
            if need is Need.REQUIRED:
                raise config.registry_error(host, "username", message)
            problems.append(f"{format_key(('registries', host, 'username'))}: {message}")
        if problems:
            warnings.append(
                f"{', '.join(problems)}; reading {host} without the configured credentials"
            )
        elif not credential.anonymous:
            found[host] = credential
    return ResolvedCredentials(found, tuple(warnings))


def _origin(config: Config, host: str, settings: object) -> str:
    """Where a refused credential came from, for the one line that says so: key and variable."""
    field = "identity_token" if getattr(settings, "identity_token", None) else "password"
    raw = (getattr(settings, field, None) or "").replace("$$", "")  # a literal $ names nothing
    variables = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", raw)
    names = [braced or bare for braced, bare in variables]
    name = config.source_path.name if config.source_path is not None else "the config"
    shown = f" ({', '.join('$' + n for n in names)})" if names else ""
    return f"registries.{host}.{field}{shown} in {name}"
