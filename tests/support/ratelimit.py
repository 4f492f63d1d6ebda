"""A Docker-Hub-shaped front for pull-rate limits, over a real registry.

Every answer carries ``ratelimit-limit: N;w=21600`` and ``ratelimit-remaining``;
each manifest GET (what Docker Hub counts as a pull; HEAD is free) spends one,
and once none is left a manifest GET is answered 429 ``TOOMANYREQUESTS``
without ``Retry-After``, as Docker Hub does. Everything else is proxied.
"""

from __future__ import annotations

import json
import re

from mirrorbot.demo.registry import LocalRegistry
from tests.support.fronts import Front, FrontHandler

__all__ = ["RateLimitedFront"]

_MANIFEST = re.compile(r"^/v2/.+/manifests/[^/]+$")
WINDOW = 21600


class RateLimitedFront(Front):
    """Spends one pull per manifest GET out of ``limit``; 429 once spent."""

    def __init__(self, registry: LocalRegistry, *, limit: int, announce: bool = True) -> None:
        super().__init__(registry)
        self.announce = announce  # False: the headers come only with the 429 (no warning)
        self.limit = limit
        self.remaining = limit
        self.pulls = 0  # manifest GETs answered 200
        self.refused = 0  # manifest GETs answered 429

    def _headers(self) -> list[tuple[str, str]]:
        return [
            ("ratelimit-limit", f"{self.limit};w={WINDOW}"),
            ("ratelimit-remaining", f"{self.remaining};w={WINDOW}"),
        ]

    def handle(self, handler: FrontHandler) -> None:
        path = handler.path.split("?", 1)[0]
        if handler.command == "GET" and _MANIFEST.match(path):
            with self._lock:
                spent = self.remaining == 0
                if spent:
                    self.refused += 1
                else:
                    self.remaining -= 1
                    self.pulls += 1
                headers = self._headers()
            if spent:
                message = "You have reached your pull rate limit."
                body = json.dumps({"errors": [{"code": "TOOMANYREQUESTS", "message": message}]})
                handler.reply(429, body.encode(), dict(headers))
                return
        else:
            with self._lock:
                headers = self._headers()
        if not self.announce:
            headers = []
        upstream = self.forward(handler)
        if upstream is None:
            return
        try:
            self.relay(handler, upstream, headers=[*upstream.headers.multi_items(), *headers])
        finally:
            upstream.close()
