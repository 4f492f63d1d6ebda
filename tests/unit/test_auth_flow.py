"""The registry auth flow against a scripted registry and token realm.

A small fake plays both parts: the registry demands a Bearer token covering
the scope each request needs (or Basic credentials), and the realm issues
tokens for whatever scopes are asked and records every token request. Tests
count round trips: a token is fetched once per scope set and reused.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from urllib.parse import parse_qs

import httpx
import pytest
import stamina

import mirrorbot.engine.registry.auth as auth_module
from mirrorbot.engine.registry.auth import Challenge, RegistryAuth, parse_challenges
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.registry.credentials import ANONYMOUS, Credential
from mirrorbot.engine.registry.media import OCI_MANIFEST, Manifest, sha256_digest
from mirrorbot.engine.registry.retry import RetryPolicy
from mirrorbot.errors import CredentialsRefusedError, RegistryError

REGISTRY = "registry.example"
REALM = "https://auth.example/token"
SERVICE = "registry.example"
USER, PASSWORD = "mirror", "p4ss-w0rd-never-printed"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
CREDENTIAL = Credential(USER, PASSWORD)
DIGEST = sha256_digest(b"layer")

Atom = tuple[str, str]


@pytest.fixture(autouse=True)
def instant_retries() -> Iterator[None]:
    with stamina.set_testing(True, attempts=1000, cap=True):
        yield


def atoms(scopes: list[str]) -> set[Atom]:
    found: set[Atom] = set()
    for scope in scopes:
        for part in scope.split():
            resource, _, actions = part.rpartition(":")
            found |= {(resource, action) for action in actions.split(",")}
    return found


@dataclass
class TokenRequest:
    method: str
    authorization: str | None
    params: dict[str, list[str]]

    @property
    def scopes(self) -> list[str]:
        return sorted(scope for value in self.params.get("scope", []) for scope in value.split())


@dataclass
class FakeRegistry:
    """Registry + token realm. ``scheme`` is "bearer" or "basic"."""

    scheme: str = "bearer"
    realm: str = REALM
    credential: Credential = CREDENTIAL
    expires_in: int | None = 300
    realm_status: int = 200
    token_field: str = "token"
    issued: dict[str, set[Atom]] = field(default_factory=dict)
    token_requests: list[TokenRequest] = field(default_factory=list)
    registry_requests: list[tuple[str, str, str | None, int]] = field(default_factory=list)
    other_requests: list[httpx.Request] = field(default_factory=list)

    # -- the registry ---------------------------------------------------------------

    def needed(self, request: httpx.Request) -> set[Atom]:
        path = request.url.path
        if path == "/v2/":
            return set()
        if path == "/v2/_catalog":
            return {("registry:catalog", "*")}
        match = re.match(r"/v2/(.+?)/(?:manifests|blobs|tags)/", path)
        assert match, path
        action = "pull" if request.method in ("GET", "HEAD") else "push"
        wanted = {(f"repository:{match.group(1)}", action)}
        if "mount" in request.url.params:
            wanted.add((f"repository:{request.url.params['from']}", "pull"))
        return wanted

    def authorised(self, request: httpx.Request) -> bool:
        header: str | None = request.headers.get("Authorization")
        if self.scheme == "basic":
            return header == self.credential.basic_header()
        if header is None or not header.startswith("Bearer "):
            return False
        granted = self.issued.get(header.removeprefix("Bearer "))
        return granted is not None and self.needed(request) <= granted

    def challenge(self, request: httpx.Request) -> str:
        if self.scheme == "basic":
            return 'Basic realm="fake registry"'
        scopes = sorted(self.needed(request))
        scope = " ".join(f"{resource}:{action}" for resource, action in scopes)
        text = f'Bearer realm="{self.realm}",service="{SERVICE}"'
        return f'{text},scope="{scope}"' if scope else text

    def serve(self, request: httpx.Request) -> httpx.Response:
        if not self.authorised(request):
            response = httpx.Response(
                401,
                headers={"WWW-Authenticate": self.challenge(request)},
                json={"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
            )
        elif "mount" in request.url.params or request.method == "PUT":
            response = httpx.Response(201, headers={"Docker-Content-Digest": DIGEST})
        else:
            response = httpx.Response(
                200,
                headers={"Docker-Content-Digest": DIGEST, "Content-Type": OCI_MANIFEST},
                content=b"",
            )
        self.registry_requests.append(
            (
                request.method,
                request.url.path,
                request.headers.get("Authorization"),
                response.status_code,
            )
        )
        return response

    # -- the token realm -------------------------------------------------------------

    def issue(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            params = parse_qs(request.content.decode(), keep_blank_values=True)
        else:
            params = parse_qs(request.url.query.decode(), keep_blank_values=True)
        token_request = TokenRequest(request.method, request.headers.get("Authorization"), params)
        self.token_requests.append(token_request)
        if self.realm_status != 200:
            return httpx.Response(
                self.realm_status,
                json={"details": "incorrect username or password", "echo": PASSWORD[:3]},
            )
        token = f"token-{len(self.token_requests)}"
        self.issued[token] = atoms(token_request.scopes)
        body: dict[str, object] = {self.token_field: token}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return httpx.Response(200, json=body)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == REGISTRY:
            return self.serve(request)
        if str(request.url).startswith(self.realm):
            return self.issue(request)
        self.other_requests.append(request)
        return httpx.Response(200, content=b"")

    # -- helpers ----------------------------------------------------------------------

    def revoke_all(self) -> None:
        self.issued.clear()

    def statuses(self) -> list[int]:
        return [status for *_, status in self.registry_requests]


def client_for(fake: FakeRegistry, credential: Credential = CREDENTIAL) -> RegistryClient:
    return RegistryClient(
        REGISTRY,
        credential=credential,
        transport=httpx.MockTransport(fake),
        retry=RetryPolicy(attempts=3, timeout=None, wait_initial=0, wait_max=0),
    )


def small_manifest() -> Manifest:
    raw = b'{"schemaVersion":2,"mediaType":"%s","config":{"digest":"%s","size":5},"layers":[]}' % (
        OCI_MANIFEST.encode(),
        DIGEST.encode(),
    )
    return Manifest(raw=raw, media_type=OCI_MANIFEST, digest=DIGEST)


# -- Bearer: scopes and the token cache -------------------------------------------------


async def test_bearer_token_fetched_once_then_cached() -> None:
    fake = FakeRegistry()
    async with client_for(fake) as client:
        for _ in range(11):
            assert await client.blob_head("lib/app", DIGEST) is not None
        assert client.auth.token_requests == 1
    [token_request] = fake.token_requests
    assert token_request.method == "GET"
    assert token_request.params["scope"] == ["repository:lib/app:pull"]
    assert token_request.params["service"] == [SERVICE]
    assert token_request.authorization == BASIC  # credentials go to the (HTTPS) realm
    # One challenge, then 11 authorised requests: the 10 after the first need no round trip.
    assert fake.statuses() == [401] + [200] * 11
    assert {auth for _, _, auth, status in fake.registry_requests if status == 200} == {
        "Bearer token-1"
    }


async def test_push_needs_a_new_token_with_pull_and_push() -> None:
    fake = FakeRegistry()
    async with client_for(fake) as client:
        await client.blob_head("lib/app", DIGEST)
        assert len(fake.token_requests) == 1
        await client.manifest_put("lib/app", "v1", small_manifest())
        assert len(fake.token_requests) == 2
        assert fake.token_requests[1].scopes == ["repository:lib/app:pull,push"]
        # The challenge is known by now: the push token is fetched before the PUT, no 401.
        assert fake.registry_requests[-1][0] == "PUT"
        assert fake.statuses()[-1] == 201
        assert fake.statuses().count(401) == 1
        # A pull afterwards is covered by a cached token.
        await client.blob_head("lib/app", DIGEST)
        assert len(fake.token_requests) == 2


async def test_other_repository_needs_its_own_token() -> None:
    fake = FakeRegistry()
    async with client_for(fake) as client:
        await client.blob_head("lib/app", DIGEST)
        await client.blob_head("lib/other", DIGEST)
        await client.blob_head("lib/app", DIGEST)
        await client.blob_head("lib/other", DIGEST)
    assert [t.scopes for t in fake.token_requests] == [
        ["repository:lib/app:pull"],
        ["repository:lib/other:pull"],
    ]


async def test_mount_asks_for_target_push_and_source_pull() -> None:
    fake = FakeRegistry()
    async with client_for(fake) as client:
        await client.ping()
        result = await client.blob_mount("mirror/app", DIGEST, "upstream/app")
    assert result.mounted
    _, mount_token = fake.token_requests  # one for the ping, one for the mount
    assert mount_token.params["scope"] == [
        "repository:mirror/app:pull,push",
        "repository:upstream/app:pull",
    ]
    # Both scopes asked up front: the mount is authorised the first time.
    assert fake.statuses() == [401, 200, 201]


async def test_catalog_asks_for_the_catalog_scope() -> None:
    fake = FakeRegistry()
    original = fake.serve

    def serve(request: httpx.Request) -> httpx.Response:
        response = original(request)
        if response.status_code == 200 and request.url.path == "/v2/_catalog":
            return httpx.Response(200, json={"repositories": ["a", "b"]})
        return response

    fake.serve = serve  # type: ignore[method-assign]  # a catalog page instead of a blob
    async with client_for(fake) as client:
        assert await client.catalog() == ["a", "b"]
    [token_request] = fake.token_requests
    assert token_request.params["scope"] == ["registry:catalog:*"]


async def test_expired_token_is_refreshed(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(auth_module, "time", SimpleNamespace(monotonic=lambda: clock.now))
    fake = FakeRegistry(expires_in=10)
    async with client_for(fake) as client:
        await client.blob_head("lib/app", DIGEST)
        clock.now += 8.0  # still valid (refreshed a little before expiry)
        await client.blob_head("lib/app", DIGEST)
        assert len(fake.token_requests) == 1
        clock.now += 3.0  # 11 s after issue: expired
        await client.blob_head("lib/app", DIGEST)
        assert len(fake.token_requests) == 2
    # Refreshed before sending: no request went out with a dead token.
    assert fake.statuses() == [401, 200, 200, 200]
    assert fake.registry_requests[-1][2] == "Bearer token-2"


async def test_default_lifetime_without_expires_in(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SimpleNamespace(now=50.0)
    monkeypatch.setattr(auth_module, "time", SimpleNamespace(monotonic=lambda: clock.now))
    fake = FakeRegistry(expires_in=None, token_field="access_token")
    async with client_for(fake) as client:
        await client.blob_head("lib/app", DIGEST)
        clock.now += 50.0
        await client.blob_head("lib/app", DIGEST)
        assert len(fake.token_requests) == 1
        clock.now += 11.0  # past the 60 s default
        await client.blob_head("lib/app", DIGEST)
        assert len(fake.token_requests) == 2


async def test_401_with_cached_token_refreshes_once_and_retries() -> None:
    fake = FakeRegistry()
    async with client_for(fake) as client:
        await client.blob_head("lib/app", DIGEST)
        fake.revoke_all()
        before = len(fake.registry_requests)
        assert await client.blob_head("lib/app", DIGEST) is not None
    assert len(fake.token_requests) == 2
    assert [(auth, status) for _, _, auth, status in fake.registry_requests[before:]] == [
        ("Bearer token-1", 401),
        ("Bearer token-2", 200),
    ]


async def test_401_that_persists_is_not_a_loop() -> None:
    fake = FakeRegistry()

    def refuse_everything(request: httpx.Request) -> httpx.Response:
        if request.url.host == REGISTRY:
            fake.revoke_all()  # every token is dead on arrival
        return fake(request)

    client = RegistryClient(
        REGISTRY,
        credential=CREDENTIAL,
        transport=httpx.MockTransport(refuse_everything),
        retry=RetryPolicy(attempts=3, timeout=None, wait_initial=0, wait_max=0),
    )
    async with client:
        with pytest.raises(RegistryError) as caught:
            await client.blob_head("lib/app", DIGEST)
    assert caught.value.status == 401
    assert fake.statuses() == [401, 401]  # the challenge, then one attempt with a token
    assert len(fake.token_requests) == 1


# -- Basic ----------------------------------------------------------------------------


async def test_basic_challenge_with_credentials() -> None:
    fake = FakeRegistry(scheme="basic")
    async with client_for(fake) as client:
        await client.ping()
        await client.blob_head("lib/app", DIGEST)
        await client.blob_head("lib/app", DIGEST)
    assert [(auth, status) for _, _, auth, status in fake.registry_requests] == [
        (None, 401),
        (BASIC, 200),
        (BASIC, 200),  # sent up front once the registry said Basic
        (BASIC, 200),
    ]
    assert fake.token_requests == []


async def test_basic_with_wrong_password_fails_without_leaking_it() -> None:
    fake = FakeRegistry(scheme="basic", credential=Credential(USER, "the-right-one"))
    async with client_for(fake) as client:
        with pytest.raises(CredentialsRefusedError) as caught:
            await client.blob_head("lib/app", DIGEST)
        # Refused credentials are refused for good: the next request is not even sent.
        with pytest.raises(CredentialsRefusedError):
            await client.blob_head("lib/app", DIGEST)
    assert caught.value.status == 401
    assert f"credentials refused for user '{USER}'" in str(caught.value)
    assert fake.statuses() == [401, 401]
    assert PASSWORD not in str(caught.value)
    assert BASIC.split()[1] not in str(caught.value)


async def test_basic_challenge_without_credentials_gives_up() -> None:
    fake = FakeRegistry(scheme="basic")
    async with client_for(fake, credential=ANONYMOUS) as client:
        with pytest.raises(CredentialsRefusedError) as caught:
            await client.blob_head("lib/app", DIGEST)
        with pytest.raises(CredentialsRefusedError):
            await client.blob_head("lib/app", DIGEST)  # Basic covers the registry: not asked
    assert caught.value.status == 401
    assert f"{REGISTRY}: needs credentials" in str(caught.value)
    assert [(auth, status) for _, _, auth, status in fake.registry_requests] == [(None, 401)]


# -- anonymous, refusals, realms ------------------------------------------------------------


async def test_anonymous_bearer_token_request_has_no_authorization() -> None:
    fake = FakeRegistry()
    async with client_for(fake, credential=ANONYMOUS) as client:
        await client.blob_head("library/alpine", DIGEST)
        await client.blob_head("library/alpine", DIGEST)
    [token_request] = fake.token_requests
    assert token_request.authorization is None
    assert token_request.params["scope"] == ["repository:library/alpine:pull"]
    assert fake.statuses() == [401, 200, 200]


async def test_token_realm_refusing_is_a_401_without_the_password() -> None:
    fake = FakeRegistry(realm_status=401)
    async with client_for(fake) as client:
        with pytest.raises(CredentialsRefusedError) as caught:
            await client.blob_head("lib/app", DIGEST)
    error = caught.value
    assert error.status == 401
    assert error.registry == REGISTRY
    assert isinstance(error.__cause__, RegistryError)
    assert error.__cause__.reference == REGISTRY
    assert PASSWORD not in str(error)
    assert BASIC.split()[1] not in str(error)
    assert len(fake.token_requests) == 1  # a refusal is final, not retried


async def test_plain_http_realm_elsewhere_never_gets_credentials() -> None:
    fake = FakeRegistry(realm="http://evil.example/token")
    async with client_for(fake) as client:
        with pytest.raises(RegistryError) as caught:
            await client.blob_head("lib/app", DIGEST)
    assert "plain-HTTP" in str(caught.value)
    assert fake.token_requests == []
    assert fake.other_requests == []
    assert PASSWORD not in str(caught.value)


async def test_plain_http_realm_on_loopback_is_allowed() -> None:
    fake = FakeRegistry(realm="http://127.0.0.1:5001/token")
    async with client_for(fake) as client:
        await client.blob_head("lib/app", DIGEST)
    [token_request] = fake.token_requests
    assert token_request.authorization == BASIC


async def test_plain_http_realm_is_fine_for_anonymous_pulls() -> None:
    fake = FakeRegistry(realm="http://auth.example/token")
    async with client_for(fake, credential=ANONYMOUS) as client:
        await client.blob_head("lib/app", DIGEST)
    [token_request] = fake.token_requests
    assert token_request.authorization is None


async def test_identity_token_uses_the_refresh_token_grant() -> None:
    fake = FakeRegistry(token_field="access_token")
    credential = Credential(identity_token="identity-xyz")
    async with client_for(fake, credential=credential) as client:
        await client.blob_head("lib/app", DIGEST)
        await client.blob_head("lib/app", DIGEST)
    [token_request] = fake.token_requests
    assert token_request.method == "POST"
    assert token_request.authorization is None
    assert token_request.params["grant_type"] == ["refresh_token"]
    assert token_request.params["refresh_token"] == ["identity-xyz"]
    assert token_request.params["service"] == [SERVICE]
    assert token_request.params["scope"] == ["repository:lib/app:pull"]
    assert fake.statuses() == [401, 200, 200]


# -- never to another host ----------------------------------------------------------------


@pytest.mark.parametrize(
    "other", ["https://other.example/v2/", "https://registry.example:8443/v2/"]
)
async def test_requests_to_another_host_never_carry_authorization(other: str) -> None:
    seen: list[httpx.Headers] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.copy())
        if request.url.host == "auth.example":
            return httpx.Response(200, json={"token": "t"})
        if "Authorization" in request.headers:
            return httpx.Response(200)
        challenge = 'Bearer realm="https://auth.example/token",service="x"'
        if request.url.path.startswith("/basic"):
            challenge = 'Basic realm="x"'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})

    auth = RegistryAuth(REGISTRY, CREDENTIAL)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handle), auth=auth) as http:
        # Our registry: the auth flow works (challenge, token, retry).
        assert (await http.get(f"https://{REGISTRY}/v2/")).status_code == 200
        assert len(seen) == 3
        seen.clear()
        # Anywhere else: sent as is, a 401 there is just a 401.
        for url in (other, other.replace("/v2/", "/basic")):
            assert (await http.get(url)).status_code == 401
    assert len(seen) == 2
    assert all("Authorization" not in headers for headers in seen)


# -- challenge parsing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.example/token",service="registry.example",'
            'scope="repository:a/b:pull,push"',
            [
                (
                    "bearer",
                    {
                        "realm": "https://auth.example/token",
                        "service": "registry.example",
                        "scope": "repository:a/b:pull,push",
                    },
                )
            ],
        ),
        (
            'Basic realm="x", Bearer realm="https://a/t",error="insufficient_scope"',
            [
                ("basic", {"realm": "x"}),
                ("bearer", {"realm": "https://a/t", "error": "insufficient_scope"}),
            ],
        ),
        (
            "Bearer realm=https://a/t, service=s",
            [("bearer", {"realm": "https://a/t", "service": "s"})],
        ),
    ],
)
def test_parse_challenges(header: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    assert [(c.scheme, c.params) for c in parse_challenges(header)] == expected


async def test_registry_named_with_its_default_port_still_authenticates() -> None:
    """httpx drops ``:443`` from https URLs; the auth must still know the host for its own."""
    fake = FakeRegistry(scheme="basic")
    client = RegistryClient(
        f"{REGISTRY}:443",
        credential=CREDENTIAL,
        transport=httpx.MockTransport(fake),
        retry=RetryPolicy(attempts=1, timeout=None, wait_initial=0, wait_max=0),
    )
    async with client:
        await client.ping()
    assert [(auth, status) for _, _, auth, status in fake.registry_requests] == [
        (None, 401),
        (BASIC, 200),
    ]


async def test_credentials_never_follow_a_downgrade_to_plain_http() -> None:
    """An https registry whose Location points at http on the same host gets no credentials there."""
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.scheme, request.headers.get("authorization")))
        return httpx.Response(200)

    auth = RegistryAuth("registry.example", CREDENTIAL, scheme="https")
    auth._challenge = Challenge("basic", {})  # the registry asked for Basic before
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as http:
        await http.get("https://registry.example/v2/")
        await http.put("http://registry.example/v2/x/blobs/uploads/1?digest=sha256:0", content=b"")
    assert seen[0][0] == "https"
    assert seen[0][1] is not None
    assert seen[1] == ("http", None)


# -- refusals that stop a client, and 401s that do not ----------------------------------------


@dataclass
class PrivateRepoRegistry(FakeRegistry):
    """Issues tokens for anything, granting nothing on ``lib/private`` (Docker Hub's way)."""

    def issue(self, request: httpx.Request) -> httpx.Response:
        response = super().issue(request)
        for granted in self.issued.values():
            granted -= {atom for atom in granted if atom[0] == "repository:lib/private"}
        return response


@pytest.mark.parametrize("credential", [ANONYMOUS, CREDENTIAL], ids=["anonymous", "user"])
async def test_a_401_on_one_repository_read_stops_nothing_else(credential: Credential) -> None:
    fake = PrivateRepoRegistry()
    async with client_for(fake, credential=credential) as client:
        with pytest.raises(RegistryError) as caught:
            await client.blob_head("lib/private", DIGEST)
        assert not isinstance(caught.value, CredentialsRefusedError)
        assert caught.value.status == 401
        assert await client.blob_head("lib/app", DIGEST) is not None  # still asked, still served


async def test_a_write_answered_401_stops_the_client() -> None:
    fake = PrivateRepoRegistry()
    async with client_for(fake) as client:
        with pytest.raises(CredentialsRefusedError) as caught:
            await client.manifest_put("lib/private", "v1", small_manifest())
        before = len(fake.registry_requests)
        with pytest.raises(CredentialsRefusedError):
            await client.blob_head("lib/app", DIGEST)
    assert len(fake.registry_requests) == before  # not sent
    assert f"credentials refused for user '{USER}' (401 UNAUTHORIZED)" in str(caught.value)
