"""A gcr.io-style registry front serving a huge *generated* namespace, with no registry behind it.

Run as its own process so that its CPU never counts as mirrorbot's::

    python bench/gcrfront.py --namespace big --repositories 2000 --tags 50

It prints ``PORT <n>`` once listening, then serves on 127.0.0.1:

- ``GET /v2/`` → 200 ``{}``;
- ``GET /v2/<ns>/tags/list`` → ``{"child": [every repository], "manifest": {}, "tags": []}``;
- ``GET /v2/<ns>/<repo>/tags/list`` → gcr-style ``manifest`` map (one digest per tag,
  ``timeUploadedMs`` as a string, as gcr.io writes it) and ``tags``;
- ``HEAD|GET /v2/<ns>/<repo>/manifests/<tag>`` → 200 with ``Docker-Content-Digest``
  (the generated digest; GET bodies are a stub — nothing here is meant to be copied);
- ``GET /_bench/stats`` → requests served, by kind, and the most requests ever in flight
  at once (how concurrent the client's listing was);
- anything else → 404 ``NAME_UNKNOWN``.

Every answer is rendered once at start-up, so serving is a dictionary lookup.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
UPLOADED_MS = 1_700_000_000_000


def digest_of(repository: str, tag: str) -> str:
    return "sha256:" + hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()


def render(namespace: str, repositories: int, tags: int) -> dict[str, bytes]:
    """Every tags/list answer, by path."""
    names = [f"repo-{index:05d}" for index in range(repositories)]
    pages = {
        f"/v2/{namespace}/tags/list": json.dumps(
            {"child": names, "manifest": {}, "name": namespace, "tags": []}
        ).encode()
    }
    for name in names:
        path = f"{namespace}/{name}"
        tag_names = [f"v{number}.0.0" for number in range(tags - 1)] + ["latest"]
        manifest: dict[str, Any] = {}
        for number, tag in enumerate(tag_names):
            manifest[digest_of(path, tag)] = {
                "imageSizeBytes": str(1_000_000 + number),
                "layerId": "",
                "mediaType": OCI_MANIFEST,
                "tag": [tag],
                "timeCreatedMs": str(UPLOADED_MS + number),
                "timeUploadedMs": str(UPLOADED_MS + number),
            }
        pages[f"/v2/{path}/tags/list"] = json.dumps(
            {"child": [], "manifest": manifest, "name": path, "tags": tag_names}
        ).encode()
    return pages


class FrontServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, pages: dict[str, bytes], namespace: str) -> None:
        self.pages = pages
        self.namespace = namespace
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.kinds: Counter[str] = Counter()
        self.connections = 0
        self.open_connections = 0
        self.max_open_connections = 0
        super().__init__(("127.0.0.1", 0), Handler)

    def connected(self, delta: int) -> None:
        with self.lock:
            if delta > 0:
                self.connections += 1
            self.open_connections += delta
            self.max_open_connections = max(self.max_open_connections, self.open_connections)

    def enter(self, kind: str) -> None:
        with self.lock:
            self.kinds[kind] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK would add ~40 ms to every answer and the bench would time the front.
    disable_nagle_algorithm = True
    server: FrontServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.connected(+1)

    def finish(self) -> None:
        self.server.connected(-1)
        super().finish()

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _unknown(self) -> None:
        self._answer(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}')

    def _serve(self) -> None:
        path = urlsplit(self.path).path
        if path == "/_bench/stats":
            with self.server.lock:
                stats = {
                    "requests": dict(self.server.kinds),
                    "max_in_flight": self.server.max_in_flight,
                    "connections": self.server.connections,
                    "max_open_connections": self.server.max_open_connections,
                }
            self._answer(200, json.dumps(stats).encode())
            return
        kind = f"{self.command} " + (
            "tags/list"
            if path.endswith("/tags/list")
            else "manifest"
            if "/manifests/" in path
            else "ping"
            if path in ("/v2/", "/v2")
            else "other"
        )
        self.server.enter(kind)
        try:
            if path in ("/v2/", "/v2"):
                self._answer(200, b"{}")
            elif self.command == "GET" and path in self.server.pages:
                self._answer(200, self.server.pages[path])
            elif self.command in ("GET", "HEAD") and "/manifests/" in path:
                repository, _, tag = path[len("/v2/") :].partition("/manifests/")
                if f"/v2/{repository}/tags/list" not in self.server.pages:
                    self._unknown()
                    return
                digest = digest_of(repository, tag)
                self._answer(
                    200,
                    b"{}",
                    {"Docker-Content-Digest": digest, "Content-Type": OCI_MANIFEST},
                )
            else:
                self._unknown()
        finally:
            self.server.leave()

    do_GET = do_HEAD = _serve

    def _refuse(self) -> None:
        self._answer(405, b'{"errors":[{"code":"UNSUPPORTED","message":"read-only front"}]}')
        self.close_connection = True

    do_PUT = do_POST = do_PATCH = do_DELETE = _refuse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", default="big")
    parser.add_argument("--repositories", type=int, default=2000)
    parser.add_argument("--tags", type=int, default=50)
    args = parser.parse_args()
    pages = render(args.namespace, args.repositories, args.tags)
    server = FrontServer(pages, args.namespace)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
