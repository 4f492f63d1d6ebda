"""OCI 1.1 referrers for tests: artifacts with a ``subject``, and a front serving the API.

CNCF Distribution 2.8 (Debian's ``docker-registry``) does not implement
``GET /v2/<name>/referrers/<digest>``. :class:`ReferrersFront` is an upstream
host that does: it answers that route from the *real* registry's content,
computed live (every manifest revision in its storage, read back through the
registry's API, kept when its ``subject`` is the digest asked about), and
proxies every other request to the registry unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mirrorbot.demo.corpus import Blob, Image
from mirrorbot.engine.registry.media import OCI_INDEX, OCI_MANIFEST
from tests.support.fronts import ACCEPT, Front, FrontHandler

__all__ = ["EMPTY_CONFIG", "ReferrersFront", "artifact", "fallback_index"]

EMPTY_CONFIG = Blob("application/vnd.oci.empty.v1+json", b"{}")
_REFERRERS = re.compile(r"^/v2/(?P<path>.+)/referrers/(?P<digest>sha256:[0-9a-f]{64})$")


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2).encode()


def artifact(subject: Image, artifact_type: str, content: bytes) -> Image:
    """An OCI 1.1 artifact manifest about ``subject`` (an SBOM, a signature, …)."""
    layer = Blob(artifact_type, content)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": EMPTY_CONFIG.descriptor(),
        "layers": [layer.descriptor()],
        "subject": subject.descriptor(),
    }
    return Image((EMPTY_CONFIG, layer), ((OCI_MANIFEST, _json(manifest)),))


def descriptor_of(referrer: Image, artifact_type: str) -> dict[str, Any]:
    return referrer.descriptor(artifactType=artifact_type)


def fallback_index(*referrers: tuple[Image, str]) -> Image:
    """The referrers tag schema's index (pushed under ``sha256-<hex>`` of the subject)."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor_of(image, kind) for image, kind in referrers],
    }
    return Image((), ((OCI_INDEX, _json(document)),))


class ReferrersFront(Front):
    """An upstream host that implements the OCI 1.1 referrers API over a real registry.

    ``hostile``, when set, is the body every referrers answer carries instead (a 200).
    ``page_size``, when set, pages the answer: that many entries a page, the next
    page named by ``Link: <…?page=N>; rel="next"`` (relative, as the spec allows).
    """

    hostile: bytes | None = None
    page_size: int | None = None

    def handle(self, handler: FrontHandler) -> None:
        split = urlsplit(handler.path)
        match = _REFERRERS.match(split.path)
        if handler.command != "GET" or match is None:
            self.proxy(handler)
            return
        if self.hostile is not None:
            handler.reply(200, self.hostile, {"Content-Type": OCI_INDEX})
            return
        wanted = parse_qs(split.query).get("artifactType", [])
        entries = []
        for digest in self._revisions(match["path"]):
            response = self._http.get(
                f"/v2/{match['path']}/manifests/{digest}", headers={"Accept": ACCEPT}
            )
            if response.status_code != 200:
                continue
            document = response.json()
            subject = document.get("subject") or {}
            if subject.get("digest") != match["digest"]:
                continue
            kind = document.get("artifactType") or document.get("config", {}).get("mediaType", "")
            if wanted and kind not in wanted:
                continue
            entries.append(
                {
                    "mediaType": document.get("mediaType", OCI_MANIFEST),
                    "digest": digest,
                    "size": len(response.content),
                    "artifactType": kind,
                }
            )
        headers = {"Content-Type": OCI_INDEX}
        if self.page_size is not None:
            page = int(parse_qs(split.query).get("page", ["1"])[0])
            start = (page - 1) * self.page_size
            if start + self.page_size < len(entries):
                headers["Link"] = f'<{split.path}?page={page + 1}>; rel="next"'
            entries = entries[start : start + self.page_size]
        body = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        handler.reply(200, body, headers)
