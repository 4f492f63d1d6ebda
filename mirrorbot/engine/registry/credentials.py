"""Where credentials come from, and how they stay out of sight.

Lookup order for a registry host: explicit (config file or CLI flag) →
``$DOCKER_CONFIG/config.json`` (``credHelpers``, ``auths``, ``credsStore``) →
anonymous. A :class:`Credential` never prints its secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from mirrorbot.errors import CredentialError
from mirrorbot.redact import register
from mirrorbot.reference import DOCKER_HUB

__all__ = [
    "ANONYMOUS",
    "HELPER_TIMEOUT",
    "Credential",
    "CredentialStore",
    "HelperRunner",
    "docker_config_path",
    "expand_env",
    "parse_user_password",
    "run_credential_helper",
]

_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
# "$" then "$", "{NAME}" or "NAME"; a bare "$" (no group matched) is an error.
_ENV_RE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))?")
HELPER_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Credential:
    """A username and a secret (password, access token) or an OAuth identity token."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    # Where it came from, for the one line that says what to fix when it is refused.
    origin: str = field(default="", compare=False)

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token)

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in any output (for redaction)."""
        found = [s for s in (self.password, self.identity_token) if s]
        if self.password:
            found.append(base64.b64encode(f"{self.username}:{self.password}".encode()).decode())
        return tuple(found)


ANONYMOUS = Credential()


def expand_env(value: str, environ: Mapping[str, str] | None = None, *, where: str = "") -> str:
    """Expand ``${NAME}`` and ``$NAME``; ``$$`` is a literal ``$``; any other ``$`` is an error.

    A missing variable is an error, not an empty secret. No message quotes the
    value: ``${NAME}`` unset names NAME (braces say it is a name); ``$NAME``
    unset does not, since ``pa$sword`` may be a literal password whose tail
    ``sword`` must not be printed; a stray ``$`` (``5$``, ``$1``) names nothing.
    """
    env = os.environ if environ is None else environ
    place = f" in {where}" if where else ""

    def replace(match: re.Match[str]) -> str:
        literal, braced, bare = match.groups()
        if literal:
            return "$"
        if braced is not None:
            if braced not in env:
                raise CredentialError(f"environment variable {braced} is not set{place}")
            return env[braced]
        if bare is not None:
            if bare not in env:
                raise CredentialError(
                    f"a $NAME{place} names an environment variable that is not set "
                    "(write ${NAME} to have it named here, $$ for a literal $)"
                )
            return env[bare]
        raise CredentialError(
            f"a $ must start ${{NAME}} or $NAME{place} (write $$ for a literal $)"
        )

    return _ENV_RE.sub(replace, value)


def parse_user_password(value: str, origin: str = "") -> Credential:
    """``user:password`` as given to ``--src-creds`` (the secret may contain ':')."""
    username, sep, password = value.partition(":")
    if not sep or not username:
        raise CredentialError("credentials must be given as USERNAME:PASSWORD")
    return Credential(username, password, origin=origin)


def docker_config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("DOCKER_CONFIG")
    if base:
        return Path(base) / "config.json"
    return Path(env.get("HOME", str(Path.home()))) / ".docker" / "config.json"


def _hostname(key: str) -> str:
    """A config key as Docker compares it: no scheme, nothing after the host."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
    return key.partition("/")[0]


def _registry_keys(registry: str) -> tuple[str, ...]:
    if registry == DOCKER_HUB:
        return _HUB_KEYS
    return (registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/")


HelperRunner = Callable[[str, str], str]


def run_credential_helper(helper: str, registry: str) -> str:
    """Run ``docker-credential-<helper> get`` with the server URL on stdin."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", helper):
        raise CredentialError(f"invalid credential helper name {helper!r}")
    try:
        completed = subprocess.run(
            [f"docker-credential-{helper}", "get"],
            input=registry,
            capture_output=True,
            text=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CredentialError(
            f"credential helper docker-credential-{helper} failed: {type(exc).__name__}"
        ) from None
    if completed.returncode != 0:
        # Helpers print "credentials not found in native keychain" on a miss.
        if "not found" in completed.stdout.lower() + completed.stderr.lower():
            return ""
        raise CredentialError(
            f"credential helper docker-credential-{helper} exited {completed.returncode} for {registry}"
        )
    return completed.stdout


class CredentialStore:
    """Resolves the credential for a registry host, caching the answer per run."""

    def __init__(
        self,
        explicit: Mapping[str, Credential] | None = None,
        *,
        docker_config: Path | None = None,
        helper_runner: HelperRunner = run_credential_helper,
    ) -> None:
        self._explicit = dict(explicit or {})
        register(s for credential in self._explicit.values() for s in credential.secrets())
        self._docker_config_path = (
            docker_config if docker_config is not None else docker_config_path()
        )
        self._helper_runner = helper_runner
        self._cache: dict[str, Credential] = {}
        self._docker_config: dict[str, object] | None = None

    def set(self, registry: str, credential: Credential) -> None:
        register(credential.secrets())
        self._explicit[registry] = credential
        self._cache.pop(registry, None)

    def lookup(self, registry: str) -> Credential:
        if registry not in self._cache:
            credential = self._resolve(registry)
            register(credential.secrets())  # before anything can print it
            self._cache[registry] = credential
        return self._cache[registry]

    def secrets(self) -> tuple[str, ...]:
        """Every secret resolved so far, for output redaction."""
        found: list[str] = []
        for credential in [*self._explicit.values(), *self._cache.values()]:
            found.extend(credential.secrets())
        return tuple(found)

    def _resolve(self, registry: str) -> Credential:
        if registry in self._explicit:
            return self._explicit[registry]
        config = self._load_docker_config()
        keys = _registry_keys(registry)
        helpers = config.get("credHelpers")
        if isinstance(helpers, dict):
            for key in keys:
                helper = helpers.get(key)
                if isinstance(helper, str):
                    found = self._from_helper(helper, keys[0])
                    where = f'credHelpers."{key}" (docker-credential-{helper})'
                    return self._located(found, f"{where} in {self._docker_config_path}")
        auths = config.get("auths")
        if isinstance(auths, dict):
            # Exact keys first, then any key naming the same host ("https://host/v2/").
            hosts = {_hostname(key) for key in keys}
            others = [key for key in auths if key not in keys and _hostname(key) in hosts]
            for key in [*keys, *others]:
                entry = auths.get(key)
                if isinstance(entry, dict):
                    credential = self._from_auth_entry(entry, registry)
                    if not credential.anonymous:
                        where = f'auths."{key}" in {self._docker_config_path}'
                        return self._located(credential, where)
        store = config.get("credsStore")
        if isinstance(store, str) and store:
            found = self._from_helper(store, keys[0])
            where = f"credsStore (docker-credential-{store})"
            return self._located(found, f"{where} in {self._docker_config_path}")
        return ANONYMOUS

    @staticmethod
    def _located(credential: Credential, origin: str) -> Credential:
        return credential if credential.anonymous else replace(credential, origin=origin)

    def _load_docker_config(self) -> dict[str, object]:
        if self._docker_config is None:
            try:
                text = self._docker_config_path.read_text(encoding="utf-8")
            except FileNotFoundError:
                text = "{}"
            except OSError as exc:
                raise CredentialError(
                    f"cannot read {self._docker_config_path.name}: {exc.strerror}"
                ) from None
            try:
                loaded = json.loads(text)
            except ValueError:
                raise CredentialError(
                    f"{self._docker_config_path.name} is not valid JSON"
                ) from None
            self._docker_config = loaded if isinstance(loaded, dict) else {}
        return self._docker_config

    @staticmethod
    def _from_auth_entry(entry: Mapping[str, object], registry: str) -> Credential:
        identity = entry.get("identitytoken")
        encoded = entry.get("auth")
        username = entry.get("username")
        password = entry.get("password")
        if isinstance(encoded, str) and encoded:
            try:
                decoded = base64.b64decode(encoded, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise CredentialError(
                    f"docker config: the auth entry for {registry} is not base64"
                ) from None
            username, _, password = decoded.partition(":")
        return Credential(
            username if isinstance(username, str) else "",
            password if isinstance(password, str) else "",
            identity if isinstance(identity, str) else "",
        )

    def _from_helper(self, helper: str, server: str) -> Credential:
        output = self._helper_runner(helper, server)
        if not output.strip():
            return ANONYMOUS
        try:
            payload = json.loads(output)
        except ValueError:
            raise CredentialError(
                f"credential helper {helper} printed something other than JSON"
            ) from None
        username = payload.get("Username", "") if isinstance(payload, dict) else ""
        secret = payload.get("Secret", "") if isinstance(payload, dict) else ""
        if not isinstance(username, str) or not isinstance(secret, str):
            raise CredentialError(f"credential helper {helper} returned malformed credentials")
        if username == "<token>":
            return Credential(identity_token=secret)
        return Credential(username, secret)
