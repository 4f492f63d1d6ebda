"""An upstream that still serves one tag as Docker schema1, as old Hub images do.

Distribution 2.8 (what the tests run) refuses schema1 pushes, so a real
registry cannot hold one: this front answers ``GET``/``HEAD`` of one
``repository:tag`` manifest with a signed schema1 document and proxies every
other request to the real registry behind it (where the tag exists, so that
catalog and ``tags/list`` list it as any registry would).
"""

from __future__ import annotations

import hashlib
import json

from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.engine.registry.media import DOCKER_SCHEMA1_SIGNED
from tests.support.fronts import Front, FrontHandler

__all__ = ["Schema1Front"]


class Schema1Front(Front):
    """A faithful proxy, except that ``repository:tag`` is a schema1 manifest."""

    def __init__(self, registry: LocalRegistry, repository: str, tag: str) -> None:
        super().__init__(registry)
        self.repository = repository
        self.tag = tag
        self.body = json.dumps(
            {
                "schemaVersion": 1,
                "name": repository,
                "tag": tag,
                "architecture": "amd64",
                "fsLayers": [],
                "history": [],
                "signatures": [],
            }
        ).encode()
        self.digest = "sha256:" + hashlib.sha256(self.body).hexdigest()

    @property
    def manifest_path(self) -> str:
        return f"/v2/{self.repository}/manifests/{self.tag}"

    def asked_for_it(self, since: int = 0) -> list[tuple[str, str]]:
        """The requests for the schema1 manifest (by tag or digest) after the first ``since``."""
        paths = {self.manifest_path, f"/v2/{self.repository}/manifests/{self.digest}"}
        with self._lock:
            return [(m, p) for m, p in self.requests[since:] if p.split("?", 1)[0] in paths]

    def handle(self, handler: FrontHandler) -> None:
        path = handler.path.split("?", 1)[0]
        if handler.command in ("GET", "HEAD") and path in (
            self.manifest_path,
            f"/v2/{self.repository}/manifests/{self.digest}",
        ):
            handler.reply(
                200,
                self.body,
                {"Content-Type": DOCKER_SCHEMA1_SIGNED, "Docker-Content-Digest": self.digest},
            )
            return
        self.proxy(handler)
