"""Push sample images with a deliberately minimal, separate HTTP client.

Seeding must not depend on the engine it seeds for: if both shared one
client, a bug there could hide itself. This module speaks just enough of the
distribution API (monolithic uploads, manifest PUTs, Basic or Bearer auth) to
put a corpus into a registry.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping

import httpx

from mirrorbot.demo.corpus import Image
from mirrorbot.engine.registry.media import ACCEPT_MANIFESTS, sha256_digest

__all__ = ["Seeder"]


class _ChallengeAuth(httpx.Auth):
    """Basic, or Bearer fetched from the challenge's realm with the same credentials."""

    def __init__(self, username: str, password: str) -> None:
        self._basic = httpx.BasicAuth(username, password)
        self._token: dict[str, str] = {}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        if response.status_code != 401:
            return
        challenge = response.headers.get("www-authenticate", "")
        if challenge.lower().startswith("basic"):
            yield from self._basic.auth_flow(request)
            return
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        token_request = httpx.Request(
            "GET",
            httpx.URL(params["realm"]).copy_merge_params(
                {"service": params.get("service", ""), "scope": params.get("scope", "")}
            ),
        )
        token_response = yield next(self._basic.auth_flow(token_request))
        token_response.read()
        body = token_response.json()
        request.headers["Authorization"] = "Bearer " + (body.get("token") or body["access_token"])
        yield request

    requires_response_body = True


class Seeder:
    """Pushes :class:`Image` values into one registry."""

    def __init__(self, base_url: str, credentials: tuple[str, str] | None = None) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            auth=_ChallengeAuth(*credentials) if credentials else None,
            timeout=httpx.Timeout(60.0),
            headers={"User-Agent": "mirrorbot-seeder/1"},
        )

    def __enter__(self) -> Seeder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.close()

    def push(self, repository: str, tag: str, image: Image) -> str:
        """Push blobs, child manifests by digest, then the top manifest by tag."""
        pushed: set[str] = set()
        for blob in image.blobs:
            if blob.digest in pushed:
                continue
            pushed.add(blob.digest)
            if self._http.head(f"/v2/{repository}/blobs/{blob.digest}").status_code == 200:
                continue
            start = self._http.post(f"/v2/{repository}/blobs/uploads/")
            start.raise_for_status()
            location = httpx.URL(str(start.url)).join(start.headers["location"])
            done = self._http.put(
                location.copy_merge_params({"digest": blob.digest}),
                content=blob.data,
                headers={"Content-Type": "application/octet-stream"},
            )
            done.raise_for_status()
        for media_type, raw in image.manifests[:-1]:
            self._put_manifest(repository, sha256_digest(raw), media_type, raw)
        self._put_manifest(repository, tag, image.media_type, image.raw)
        return image.digest

    def push_all(self, images: Mapping[str, Mapping[str, Image]]) -> None:
        for repository, tags in images.items():
            for tag, image in tags.items():
                self.push(repository, tag, image)

    def _put_manifest(self, repository: str, reference: str, media_type: str, raw: bytes) -> None:
        response = self._http.put(
            f"/v2/{repository}/manifests/{reference}",
            content=raw,
            headers={"Content-Type": media_type},
        )
        response.raise_for_status()

    def delete_tag_target(self, repository: str, tag: str) -> None:
        """Delete the manifest a tag points to (to simulate drift behind our back)."""
        head = self._http.head(
            f"/v2/{repository}/manifests/{tag}",
            headers={"Accept": ACCEPT_MANIFESTS},
        )
        head.raise_for_status()
        digest = head.headers["docker-content-digest"]
        self._http.delete(f"/v2/{repository}/manifests/{digest}").raise_for_status()

    def delete_blob(self, repository: str, digest: str) -> None:
        """Unlink one blob from a repository (damage a deep verify finds, a HEAD does not)."""
        self._http.delete(f"/v2/{repository}/blobs/{digest}").raise_for_status()
