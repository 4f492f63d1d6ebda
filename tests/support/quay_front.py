"""A Quay stand-in: Quay's repository API over a real registry, everything else proxied.

``GET /api/v1/repository?namespace=<ns>&public=true`` answers as quay.io does:
``{"repositories": [{"namespace", "name", "kind", "is_public", ...}]}`` with
an opaque ``next_page`` token while more remain; the next page is the same
query plus ``&next_page=<token>``. The repositories are the real registry's
catalog entries below ``<ns>/`` (nested ones included, as Quay's extended
names allow), sorted. Every other request (``/v2/`` tags, manifests, blobs) is
proxied to the real registry, so the front is a whole registry host, and its
``/v2/_catalog`` answers ``[]`` like quay.io does for anonymous users.

``page_size`` makes pages small to force paging; ``extra`` entries are
appended to every namespace's list (hostile listings); ``token_loop`` makes
the last page point back at the first.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mirrorbot.demo.registry import LocalRegistry
from tests.support.fronts import Front, FrontHandler

__all__ = ["QuayFront"]


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"gAAAAA-offset-{offset}".encode()).decode()


def _offset(token: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except ValueError:
        return None
    prefix = "gAAAAA-offset-"
    if not text.startswith(prefix) or not text[len(prefix) :].isdigit():
        return None
    return int(text[len(prefix) :])


class QuayFront(Front):
    """quay.io in miniature: the repository API, and a registry behind it."""

    def __init__(
        self,
        registry: LocalRegistry,
        *,
        page_size: int = 100,
        extra: Sequence[object] = (),
        token_loop: bool = False,
    ) -> None:
        super().__init__(registry)
        self.page_size = page_size
        self.extra = list(extra)  # raw entries, not necessarily objects
        self.token_loop = token_loop

    @property
    def api_requests(self) -> list[str]:
        """The query strings of the repository API requests, in order."""
        return [
            urlsplit(target).query
            for method, target in list(self.requests)
            if method == "GET" and urlsplit(target).path == "/api/v1/repository"
        ]

    def handle(self, handler: FrontHandler) -> None:
        split = urlsplit(handler.path)
        if split.path == "/api/v1/repository" and handler.command == "GET":
            self._repositories(handler, parse_qs(split.query))
        elif split.path == "/v2/_catalog":
            handler.reply_json(200, {"repositories": []})  # FEATURE_PUBLIC_CATALOG is off
        elif split.path.startswith("/v2/"):
            self.proxy(handler)
        else:
            handler.reply_json(404, {"error": "not found"})

    def _repositories(self, handler: FrontHandler, query: Mapping[str, list[str]]) -> None:
        namespace = query.get("namespace", [""])[0]
        if query.get("public", [""])[0] != "true" or not namespace:
            # Anonymous callers must ask for public repositories of one namespace.
            handler.reply_json(401, {"error": "Requires authentication"})
            return
        offset = 0
        if "next_page" in query:
            found = _offset(query["next_page"][0])
            if found is None:
                handler.reply_json(400, {"error": "Invalid next page token"})
                return
            offset = found
        prefix = f"{namespace}/"
        names = sorted(name[len(prefix) :] for name in self.catalog() if name.startswith(prefix))
        entries: list[object] = [
            {
                "namespace": namespace,
                "name": name,
                "description": None,
                "is_public": True,
                "kind": "image",
                "state": "NORMAL",
                "is_starred": False,
            }
            for name in names
        ]
        entries += self.extra
        chunk = entries[offset : offset + self.page_size]
        document: dict[str, Any] = {"repositories": chunk}
        if offset + self.page_size < len(entries):
            document["next_page"] = _token(offset + self.page_size)
        elif self.token_loop:
            document["next_page"] = _token(0)
        handler.reply_json(200, document)
