"""A registry front whose error pages echo the request's credentials back.

:class:`EchoFront` proxies faithfully to a real registry (``Front.proxy``)
except for repositories whose last path segment names an echo style
(``…/echo-html``, ``…/echo-json``, ``…/echo-map``): there, every manifest or
blob request (``HEAD`` aside: it has no body to quote in) that carries
``Authorization`` is answered ``400`` with a body quoting that header, as
careless proxies and debugging registries do. Requests without it are proxied,
so the registry's own challenge still starts the auth flow; ``tags/list`` is
proxied, so listing works and the copy fails.

Styles:

``html``
    an HTML page: ``<pre>Authorization: Basic …</pre>`` plus a JWT that
    mirrorbot never saw (:data:`FOREIGN_JWT`) and ``?token=`` in a link.
``json``
    a registry-style ``{"errors": [...]}`` whose message quotes the header
    and the decoded ``user:password``.
``map``
    Go's ``fmt`` dump of request headers: ``map[Authorization:[Basic …] User-Agent:[…]]``.
"""

from __future__ import annotations

import base64
import json
import re

from mirrorbot.demo.registry import LocalRegistry
from tests.support.fronts import Front, FrontHandler

__all__ = ["ECHO_STYLES", "FOREIGN_JWT", "FOREIGN_TOKEN", "EchoFront"]

ECHO_STYLES = ("html", "json", "map")
# Credential-shaped values the front makes up: only patterns can mask them.
FOREIGN_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJlY2hvLWZyb250In0.c2lnbmF0dXJlLW9mLWVjaG8"
FOREIGN_TOKEN = "Zm9yZWlnbi10b2tlbi12YWx1ZQ"
_ECHO_PATH = re.compile(r"^/v2/.+/echo-(?P<style>html|json|map)/(?:manifests|blobs)/")


class EchoFront(Front):
    """Answers echo repositories' authorised requests with a page quoting the credentials."""

    def __init__(self, registry: LocalRegistry) -> None:
        super().__init__(registry)
        self.echoed: list[str] = []  # the Authorization values quoted back, in order

    def handle(self, handler: FrontHandler) -> None:
        match = _ECHO_PATH.match(handler.path.split("?", 1)[0])
        authorization = handler.headers.get("Authorization")
        if match is None or not authorization or handler.command == "HEAD":
            self.proxy(handler)
            return
        handler.drain_request_body()
        with self._lock:
            self.echoed.append(authorization)
        style = match["style"]
        if style == "html":
            body = (
                "<html><body><h1>400 Bad Request</h1>"
                f"<pre>Authorization: {authorization}</pre>"
                f"<p>upstream said {FOREIGN_JWT}</p>"
                f'<a href="/retry?token={FOREIGN_TOKEN}">retry</a></body></html>'
            )
            handler.reply(400, body.encode(), {"Content-Type": "text/html"})
        elif style == "json":
            scheme, _, value = authorization.partition(" ")
            decoded = ""
            if scheme.lower() == "basic":
                decoded = base64.b64decode(value).decode("utf-8", "replace")
            message = f"bad credentials {authorization!r} ({decoded})"
            document = {"errors": [{"code": "DENIED", "message": message}]}
            handler.reply(400, json.dumps(document).encode(), {"Content-Type": "application/json"})
        else:
            agent = handler.headers.get("User-Agent", "")
            page = f"bad request: map[Authorization:[{authorization}] User-Agent:[{agent}]]\n"
            handler.reply(400, page.encode(), {})
