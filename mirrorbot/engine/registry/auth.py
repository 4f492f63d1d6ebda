"""Registry authentication as an ``httpx.Auth`` flow.

The flow sends the request, reads a ``WWW-Authenticate`` challenge when the
registry answers 401, and retries once with Basic credentials or a Bearer
token exchanged at the challenge's realm. Tokens are cached by scope until
shortly before they expire, so after the first challenge every request goes
out already authorised: no extra round trip per request.

Credentials only ever go to the registry host they belong to, and to its token
realm when that realm is HTTPS (or loopback). Redirects to other hosts (blob
downloads from a CDN) are sent without ``Authorization`` by httpx itself.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections.abc import AsyncGenerator, Generator, Iterable
from dataclasses import dataclass

import httpx

from mirrorbot.engine.registry.credentials import ANONYMOUS, Credential
from mirrorbot.engine.registry.responses import redact_url
from mirrorbot.errors import Diagnostic, ErrorCode, RegistryError
from mirrorbot.redact import register
from mirrorbot.reference import is_loopback_host

__all__ = [
    "SCOPE_EXTENSION",
    "Challenge",
    "RegistryAuth",
    "catalog_scope",
    "parse_challenges",
    "pull_scope",
    "push_scope",
]

SCOPE_EXTENSION = "mirrorbot.scopes"
DEFAULT_TOKEN_LIFETIME = 60.0
# Refresh a little before expiry so a request never arrives with a dead token.
EXPIRY_MARGIN = 0.9

_PARAM_RE = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def catalog_scope() -> str:
    return "registry:catalog:*"


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str
    params: dict[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` (several challenges may share one header)."""
    challenges: list[Challenge] = []
    position = 0
    scheme_re = re.compile(r"\s*,?\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)")
    while position < len(header):
        match = scheme_re.match(header, position)
        if match is None:
            break
        scheme = match.group(1).lower()
        position = match.end()
        params: dict[str, str] = {}
        while True:
            param = _PARAM_RE.match(header, position)
            if param is None:
                break
            value = param.group(2) if param.group(2) is not None else param.group(3)
            params[param.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
            position = param.end()
            separator = re.match(r"\s*,\s*", header[position:])
            if separator is None:
                break
            lookahead = _PARAM_RE.match(header, position + separator.end())
            if lookahead is None:
                break
            position += separator.end()
        challenges.append(Challenge(scheme, params))
    return challenges


@functools.lru_cache(maxsize=1024)
def _request_atoms(scopes: tuple[str, ...]) -> frozenset[tuple[str, str]]:
    """:func:`_scope_atoms` of a request's scopes: the same few tuples, request after request."""
    return _scope_atoms(scopes)


def _scope_atoms(scopes: Iterable[str]) -> frozenset[tuple[str, str]]:
    """``repository:a:pull,push`` → {("repository:a", "pull"), ("repository:a", "push")}."""
    atoms: set[tuple[str, str]] = set()
    for scope in scopes:
        for part in scope.split():
            resource, _, actions = part.rpartition(":")
            for action in actions.split(","):
                if resource and action:
                    atoms.add((resource, action))
    return frozenset(atoms)


def _scope_strings(atoms: frozenset[tuple[str, str]]) -> list[str]:
    grouped: dict[str, set[str]] = {}
    for resource, action in atoms:
        grouped.setdefault(resource, set()).add(action)
    return [
        f"{resource}:{','.join(sorted(actions))}" for resource, actions in sorted(grouped.items())
    ]


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: float


class RegistryAuth(httpx.Auth):
    """Auth for one registry host; share one instance across all requests to it."""

    def __init__(
        self,
        netloc: str,
        credential: Credential = ANONYMOUS,
        *,
        registry: str = "",
        user_agent: str = "mirrorbot",
        scheme: str | None = None,
    ) -> None:
        self._netloc = netloc
        # When known, credentials never go out over another scheme (https registry → http URL).
        self._scheme = scheme
        self._registry = registry or netloc
        self._credential = credential
        self._user_agent = user_agent
        self._challenge: Challenge | None = None
        self._tokens: dict[frozenset[tuple[str, str]], _Token] = {}
        self._locks: dict[frozenset[tuple[str, str]], asyncio.Lock] = {}
        self.token_requests = 0
        # Set once the registry refused authentication itself (not one repository):
        # every later 401/403 with this credential is the same refusal.
        self.refused = False

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("mirrorbot's registry auth is async only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._is_registry(request.url):
            # Not our host (a redirect target or a token realm): never attach credentials.
            yield request
            return
        wanted = _request_atoms(tuple(request.extensions.get(SCOPE_EXTENSION, ())))
        refresh = False
        for attempt in range(2):
            challenge = self._challenge
            if challenge is not None and challenge.scheme == "basic":
                request.headers["Authorization"] = self._credential.basic_header()
            elif challenge is not None:
                if refresh:
                    self._forget(wanted)
                lock = self._locks.setdefault(wanted, asyncio.Lock())
                async with lock:
                    token = self._cached(wanted)
                    if token is None:
                        token_response = yield self._token_request(challenge, wanted)
                        # Capped (1 MiB) by the client's bound_response hook.
                        await token_response.aread()
                        token = self._store_token(challenge, wanted, token_response)
                request.headers["Authorization"] = f"Bearer {token}"
            response = yield request
            if response.status_code != 401 or not _replayable(request):
                return
            if attempt == 1:
                # Basic credentials sent and refused: the registry refuses the credential.
                self.refused |= "Authorization" in request.headers and _is_basic(challenge)
                return
            challenges = parse_challenges(response.headers.get("www-authenticate", ""))
            fresh = next((c for c in challenges if c.scheme in ("bearer", "basic")), None)
            if fresh is None:
                return
            if fresh.scheme == "basic" and self._credential.anonymous:
                self.refused = True  # Basic auth covers the whole registry: it needs credentials
                return
            if fresh.scheme == "basic" and _is_basic(challenge):
                # Our Basic credentials were refused; asking again will not help.
                self.refused = True
                return
            refresh = "Authorization" in request.headers
            wanted |= _scope_atoms([fresh.params.get("scope", "")])
            self._challenge = fresh

    def _is_registry(self, url: httpx.URL) -> bool:
        """Same scheme, host and port as the registry; ``host:443`` over HTTPS is ``host``."""
        if self._scheme is not None and url.scheme != self._scheme:
            return False
        ours = _netloc(url.scheme, self._netloc)
        return ours is not None and url.netloc == ours

    def _cached(self, wanted: frozenset[tuple[str, str]]) -> str | None:
        now = time.monotonic()
        for atoms, token in self._tokens.items():
            if token.expires_at > now and wanted <= atoms:
                return token.value
        return None

    def _forget(self, wanted: frozenset[tuple[str, str]]) -> None:
        for atoms in [a for a in self._tokens if wanted <= a]:
            del self._tokens[atoms]

    def _token_request(
        self, challenge: Challenge, wanted: frozenset[tuple[str, str]]
    ) -> httpx.Request:
        realm = challenge.realm
        if not realm:
            raise self._auth_error(challenge, "bearer challenge without a realm")
        realm_url = httpx.URL(realm)
        if realm_url.scheme not in ("http", "https"):
            raise self._auth_error(
                challenge, f"unsupported token realm scheme {realm_url.scheme!r}"
            )
        send_credentials = not self._credential.anonymous
        if (
            send_credentials
            and realm_url.scheme != "https"
            and not is_loopback_host(realm_url.host)
        ):
            raise self._auth_error(
                challenge,
                f"refusing to send credentials to a plain-HTTP token realm ({realm_url.host})",
            )
        scopes = _scope_strings(wanted)
        service = challenge.params.get("service", "")
        headers = {"User-Agent": self._user_agent}
        self.token_requests += 1
        if self._credential.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": self._credential.identity_token,
                "service": service,
                "client_id": "mirrorbot",
                "scope": " ".join(scopes),
            }
            return httpx.Request("POST", realm_url, data=form, headers=headers)
        params: list[tuple[str, str | int | float | bool | None]] = (
            [("service", service)] if service else []
        )
        params += [("scope", scope) for scope in scopes]
        if send_credentials:
            headers["Authorization"] = self._credential.basic_header()
        return httpx.Request("GET", realm_url.copy_merge_params(params), headers=headers)

    def _store_token(
        self, challenge: Challenge, wanted: frozenset[tuple[str, str]], response: httpx.Response
    ) -> str:
        if response.status_code != 200:
            # The realm refused the credential itself (an anonymous request scoped to a
            # private repository gets a token without access, not a 401).
            self.refused |= response.status_code == 401
            raise RegistryError(
                status=response.status_code,
                method=response.request.method,
                url=redact_url(response.request.url),
                reference=self._registry,
                diagnostics=(Diagnostic(ErrorCode.UNAUTHORIZED.value, "token request refused"),),
            )
        try:
            payload = json.loads(response.content)
            value = payload.get("token") or payload.get("access_token")
            lifetime = float(payload.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError, RecursionError):
            raise self._auth_error(challenge, "token realm answered with malformed JSON") from None
        if not isinstance(value, str) or not value:
            raise self._auth_error(challenge, "token realm answered without a token")
        refresh = payload.get("refresh_token")
        # Unprintable from now on: a registry may echo it back in an error page.
        register([value, refresh if isinstance(refresh, str) else None])
        self._tokens[wanted] = _Token(value, time.monotonic() + lifetime * EXPIRY_MARGIN)
        return value

    def _auth_error(self, challenge: Challenge, message: str) -> RegistryError:
        return RegistryError(
            status=401,
            method="GET",
            url=challenge.realm.split("?")[0],
            reference=self._registry,
            diagnostics=(Diagnostic(ErrorCode.UNAUTHORIZED.value, message),),
        )


def _is_basic(challenge: Challenge | None) -> bool:
    return challenge is not None and challenge.scheme == "basic"


def _replayable(request: httpx.Request) -> bool:
    """A request whose body was streamed cannot be sent twice."""
    stream = request.stream
    return isinstance(stream, httpx.ByteStream) or request.method in ("GET", "HEAD", "DELETE")


@functools.lru_cache(maxsize=64)
def _netloc(scheme: str, netloc: str) -> bytes | None:
    """``netloc`` as httpx spells it in a ``scheme`` URL (default port dropped); None if invalid."""
    try:
        return httpx.URL(f"{scheme}://{netloc}/").netloc
    except httpx.InvalidURL:
        return None
