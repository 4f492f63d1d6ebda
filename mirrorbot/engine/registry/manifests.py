"""Manifest endpoints: GET (verified), HEAD, PUT of the exact bytes, DELETE.

A GET is checked against the digest it was asked by and ``Docker-Content-Digest``;
it is a pull (Docker Hub's rate limit), so it is metered. A HEAD is not.
"""

from __future__ import annotations

import httpx

from mirrorbot.engine.registry.auth import pull_scope, push_scope
from mirrorbot.engine.registry.media import (
    ACCEPT_MANIFESTS,
    MAX_MANIFEST_SIZE,
    Descriptor,
    Manifest,
    parse_manifest,
)
from mirrorbot.engine.registry.pulls import PULL_CLAIM
from mirrorbot.engine.registry.responses import registry_error_from_response
from mirrorbot.engine.registry.session import RegistrySession, content_length
from mirrorbot.errors import DigestMismatchError, ManifestTooLargeError, ResponseTooLargeError

__all__ = ["ManifestEndpoints"]


class ManifestEndpoints(RegistrySession):
    """``/v2/<name>/manifests/<reference>``."""

    async def manifest_get(self, repository: str, identifier: str) -> Manifest:
        """Fetch a manifest by tag or digest, verified against the digest it was asked by."""
        reference = self._ref(repository, identifier)

        async def attempt() -> Manifest:
            request = self._request(
                "GET",
                f"/v2/{repository}/manifests/{identifier}",
                scopes=(pull_scope(repository),),
                headers={"Accept": ACCEPT_MANIFESTS},
                body_limit=MAX_MANIFEST_SIZE,
            )
            claim = self.meter.acquire(reference)  # a pull: not started past the budget
            request.extensions[PULL_CLAIM] = claim
            try:
                return await self._read_manifest(request, reference, identifier)
            finally:
                self.meter.release(claim)

        return await self._small(attempt, reference)

    async def _read_manifest(
        self, request: httpx.Request, reference: str, identifier: str
    ) -> Manifest:
        """One GET's answer, capped and verified (the meter's claim is released by the caller)."""
        async with self._stream(request, reference, 200) as response:
            declared = content_length(response.headers)
            if declared > MAX_MANIFEST_SIZE:
                raise ManifestTooLargeError(reference, declared, MAX_MANIFEST_SIZE)
            body = bytearray()
            try:
                # Decoded bytes, capped while they stream (a gzip bomb stops at the cap).
                async for chunk in response.aiter_bytes():
                    body += chunk
            except ResponseTooLargeError as error:
                raise ManifestTooLargeError(reference, error.received, MAX_MANIFEST_SIZE) from None
            content_type = response.headers.get("content-type")
            header_digest = response.headers.get("docker-content-digest")
        manifest = parse_manifest(bytes(body), content_type, reference)
        if identifier.startswith("sha256:") and manifest.digest != identifier:
            raise DigestMismatchError(reference, identifier, manifest.digest, "manifest")
        if (
            header_digest
            and header_digest.startswith("sha256:")
            and header_digest != manifest.digest
        ):
            raise DigestMismatchError(
                reference, header_digest, manifest.digest, "manifest (Docker-Content-Digest)"
            )
        return manifest

    async def manifest_head(self, repository: str, identifier: str) -> Descriptor | None:
        """Digest, type and size of a manifest, or None if absent. Does not count as a Hub pull."""
        reference = self._ref(repository, identifier)

        async def attempt() -> Descriptor | None:
            request = self._request(
                "HEAD",
                f"/v2/{repository}/manifests/{identifier}",
                scopes=(pull_scope(repository),),
                headers={"Accept": ACCEPT_MANIFESTS},
            )
            response = await self._http.send(request)
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise await registry_error_from_response(response, reference)
            return Descriptor(
                media_type=response.headers.get("content-type", "").split(";")[0].strip(),
                digest=response.headers.get("docker-content-digest", ""),
                size=content_length(response.headers),
            )

        found = await self._small(attempt, reference)
        if found is not None and not found.digest:
            # Registries may omit Docker-Content-Digest on HEAD: hash the manifest instead.
            manifest = await self.manifest_get(repository, identifier)
            return Descriptor(manifest.media_type, manifest.digest, manifest.size)
        return found

    async def manifest_put(self, repository: str, identifier: str, manifest: Manifest) -> str:
        """Push the exact bytes; the registry must acknowledge the same digest.

        A push whose answer was lost may still have landed: before pushing
        again, ask the registry whether it already holds this digest there.
        """
        reference = self._ref(repository, identifier)
        tried = False

        async def attempt() -> str:
            nonlocal tried
            if tried:
                landed = await self._manifest_present(repository, identifier)
                if landed == manifest.digest:
                    return landed
            tried = True
            request = self._request(
                "PUT",
                f"/v2/{repository}/manifests/{identifier}",
                scopes=(push_scope(repository),),
                headers={"Content-Type": manifest.media_type},
                content=manifest.raw,
            )
            response = await self._send(request, reference, 201, 200)
            acknowledged: str = response.headers.get("docker-content-digest", manifest.digest)
            if acknowledged != manifest.digest:
                raise DigestMismatchError(
                    reference, manifest.digest, acknowledged, "pushed manifest"
                )
            return acknowledged

        return await self._small(attempt, reference)

    async def _manifest_present(self, repository: str, identifier: str) -> str | None:
        """One unretried HEAD: the digest under ``identifier``, or None."""
        request = self._request(
            "HEAD",
            f"/v2/{repository}/manifests/{identifier}",
            scopes=(push_scope(repository),),
            headers={"Accept": ACCEPT_MANIFESTS},
        )
        response = await self._http.send(request)
        if response.status_code != 200:
            return None
        digest: str | None = response.headers.get("docker-content-digest")
        return digest

    async def manifest_delete(self, repository: str, digest: str) -> None:
        reference = self._ref(repository, digest)

        async def attempt() -> None:
            request = self._request(
                "DELETE",
                f"/v2/{repository}/manifests/{digest}",
                scopes=(f"repository:{repository}:delete",),
            )
            await self._send(request, reference, 202, 200)

        await self._small(attempt, reference)
