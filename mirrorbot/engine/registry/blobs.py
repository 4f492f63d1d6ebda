"""Blob endpoints: HEAD, verified streaming downloads, cross-repository mounts, uploads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from mirrorbot.engine.registry.auth import pull_scope, push_scope
from mirrorbot.engine.registry.bounded import paced
from mirrorbot.engine.registry.integrity import verified_stream
from mirrorbot.engine.registry.media import Descriptor
from mirrorbot.engine.registry.responses import registry_error_from_response
from mirrorbot.engine.registry.retry import protocol_failure
from mirrorbot.engine.registry.session import CHUNK_SIZE, RegistrySession, coalesce, content_length
from mirrorbot.errors import DigestMismatchError, ProtocolViolationError, StreamInterruptedError

__all__ = ["BlobEndpoints", "MountResult"]


def _with_digest(upload_url: str, digest: str) -> str | httpx.URL:
    """The upload URL with ``digest=`` appended as text: one parse of the long URL, not three."""
    if "digest=" in upload_url or "#" in upload_url:
        return httpx.URL(upload_url).copy_merge_params({"digest": digest})
    return f"{upload_url}{'&' if '?' in upload_url else '?'}digest={quote(digest, safe='')}"


@dataclass(frozen=True, slots=True)
class MountResult:
    """``mounted`` when the registry linked the blob; else an upload session to use."""

    mounted: bool
    upload_url: str | None = None


class BlobEndpoints(RegistrySession):
    """``/v2/<name>/blobs/…``."""

    async def blob_head(self, repository: str, digest: str) -> int | None:
        """Size of a blob in ``repository``, or None if it is not there."""
        reference = self._ref(repository, digest)

        async def attempt() -> int | None:
            request = self._request(
                "HEAD", f"/v2/{repository}/blobs/{digest}", scopes=(pull_scope(repository),)
            )
            response = await self._http.send(request)
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise await registry_error_from_response(response, reference)
            return content_length(response.headers)

        return await self._small(attempt, reference)

    @asynccontextmanager
    async def blob_open(
        self, repository: str, descriptor: Descriptor
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Open a blob download; iterating yields verified chunks.

        The iterator raises :class:`DigestMismatchError` or :class:`BlobIntegrityError`
        at the end of a stream that does not match ``descriptor``, so nothing
        consuming it can complete with bad bytes.
        """
        reference = self._ref(repository, descriptor.digest)

        async def attempt() -> httpx.Response:
            request = self._request(
                "GET",
                f"/v2/{repository}/blobs/{descriptor.digest}",
                scopes=(pull_scope(repository),),
                body_limit=None,  # verified against the descriptor instead
            )
            response = await self._http.send(request, stream=True)
            if response.status_code != 200:
                raise await registry_error_from_response(response, reference)
            return response

        response = await self._small(attempt, reference)  # the deadline covers the headers
        pieces = paced(
            response.aiter_raw(),
            rate=self.limits.min_transfer_rate,
            window=self.limits.request_deadline,
            registry=self.registry,
            reference=reference,
        )
        try:
            yield verified_stream(
                self._interruptible(coalesce(pieces, CHUNK_SIZE), reference),
                descriptor,
                reference,
                self.counter.downloaded,
            )
        finally:
            await response.aclose()

    async def _interruptible(
        self, chunks: AsyncIterator[bytes], reference: str
    ) -> AsyncIterator[bytes]:
        """Network failures mid-body become a typed, retryable error naming this registry."""
        try:
            async for chunk in chunks:
                yield chunk
        except httpx.TransportError as exc:
            raise StreamInterruptedError(self.registry, reference, exc) from exc
        except Exception as exc:
            error = protocol_failure(exc, self.registry, reference)
            if error is None:
                raise
            raise error from exc

    async def blob_mount(self, repository: str, digest: str, from_repository: str) -> MountResult:
        """Cross-repository mount. 201: linked. 202: not linked, here is an upload session."""
        reference = self._ref(repository, digest)

        async def attempt() -> MountResult:
            request = self._request(
                "POST",
                f"/v2/{repository}/blobs/uploads/",
                params={"mount": digest, "from": from_repository},
                scopes=(push_scope(repository), pull_scope(from_repository)),
            )
            response = await self._http.send(request)
            if response.status_code == 201:
                return MountResult(mounted=True)
            if response.status_code == 202:
                return MountResult(mounted=False, upload_url=self._location(response))
            if response.status_code in (401, 403, 404):
                # A registry may refuse the source repository: that only means "upload normally".
                await response.aclose()
                return MountResult(mounted=False)
            raise await registry_error_from_response(response, reference)

        return await self._small(attempt, reference)

    async def blob_upload_start(self, repository: str) -> str:
        reference = f"{self.registry}/{repository}"

        async def attempt() -> str:
            request = self._request(
                "POST", f"/v2/{repository}/blobs/uploads/", scopes=(push_scope(repository),)
            )
            return self._location(await self._send(request, reference, 202))

        return await self._small(attempt, reference)

    async def blob_upload(
        self, repository: str, upload_url: str, digest: str, size: int, chunks: AsyncIterator[bytes]
    ) -> None:
        """Finish an upload session in one PUT with a known length (never chunked encoding).

        Not retried here: the body is a stream. The copier restarts the whole
        blob on failure.
        """
        reference = self._ref(repository, digest)
        url = _with_digest(upload_url, digest)
        counted = self._count_uploaded(chunks)
        request = self._request(
            "PUT",
            url,
            scopes=(push_scope(repository),),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            content=counted,
        )
        response = await self._send(request, reference, 201)
        acknowledged = response.headers.get("docker-content-digest", digest)
        if acknowledged != digest:
            raise DigestMismatchError(reference, digest, acknowledged, "uploaded blob")

    async def blob_upload_cancel(self, upload_url: str) -> None:
        """Best effort: tell the registry to drop an abandoned upload session."""
        try:
            request = self._request("DELETE", upload_url, scopes=())
            async with asyncio.timeout(self.limits.request_deadline):
                response = await self._http.send(request)
            await response.aclose()
        except (httpx.HTTPError, httpx.InvalidURL, ProtocolViolationError, TimeoutError):
            pass  # the registry purges stale sessions on its own

    async def _count_uploaded(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.counter.bytes_uploaded += len(chunk)
            yield chunk
