"""Thin HTTP fronts for the two listing APIs that cannot run here.

gcr.io's ``tags/list`` extension and the Docker Hub web API are answered from
a *real* registry's content, computed live on every request: its catalog, its
``tags/list``, its manifests (HEAD and GET) and, for upload times, the
modification time of the manifest's revision link in its storage. Nothing in
mirrorbot is patched; the client under test speaks HTTP to these fronts.

- :class:`GcrFront` is a whole upstream registry host: ``GET
  /v2/<path>/tags/list`` answers gcr-style, and every other request (``/v2/``,
  manifests, blobs, uploads; any method) is *proxied* to the real registry:
  status, headers and body passed through, bodies streamed both ways in 64 KiB
  chunks, the ``Host`` header kept so the registry's own absolute URLs
  (upload ``Location``) point back at the front. Proxying, not redirecting,
  keeps the front transparent to anything that counts or compares hosts.
  Request bodies need a ``Content-Length`` (chunked uploads are refused with
  411). It reads the real registry without credentials: front an
  unauthenticated registry.
- :class:`HubFront` answers ``GET /v2/namespaces/{ns}/repositories`` with
  Hub-shaped pages; tags still come from the real registry itself.

Both record what they were asked (``requests``) and can be told to answer the
next request(s) with a fault (``fail_next``), to prove retries.

:class:`Front` is the shared base: the server thread, the record, and the
transparent proxying (``proxy`` = ``forward`` + ``relay``) that other fronts
(``tests/support/faults.py``) build on to bend answers on their way back.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from mirrorbot.demo.registry import LocalRegistry

__all__ = [
    "CHUNK",
    "Fault",
    "Front",
    "FrontHandler",
    "GcrFront",
    "HubFront",
    "LoopbackServer",
    "LoopbackService",
]

ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
CHUNK = 64 * 1024
_TAGS_LIST = re.compile(r"^/v2/(?P<path>.+)/tags/list$")
_HUB_REPOSITORIES = re.compile(r"^/v2/namespaces/(?P<namespace>[^/]+)/repositories/?$")
_HUB_TAGS = re.compile(r"^/v2/namespaces/(?P<namespace>[^/]+)/repositories/(?P<name>[^/]+)/tags/?$")


class Fault:
    """A canned answer for the next request: status, headers, body."""

    def __init__(self, status: int, headers: Mapping[str, str] | None, body: bytes) -> None:
        self.status = status
        self.headers = dict(headers or {})
        self.body = body


class LoopbackServer(ThreadingHTTPServer):
    """127.0.0.1 on a port the kernel picks, a thread per connection, never waited for."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a stalled, cut or endless answer hangs up: expected, not news.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Server(LoopbackServer):
    def __init__(self, front: Front) -> None:
        self.front = front
        super().__init__(FrontHandler)


class FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries a length or closes
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the fronts keep their own record in ``requests``

    def _dispatch(self) -> None:
        front = self.server.front
        front.record(self.command, self.path)
        fault = front.take_fault()
        if fault is not None:
            self.drain_request_body()
            self.reply(fault.status, fault.body, fault.headers)
            return
        front.handle(self)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _dispatch

    def drain_request_body(self) -> None:
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)

    def reply(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response_only(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status: int, document: Any) -> None:
        self.reply(status, json.dumps(document).encode(), {"Content-Type": "application/json"})

    def request_body(self) -> Iterator[bytes]:
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


class LoopbackService:
    """A :class:`LoopbackServer` served from a daemon thread for as long as its owner runs.

    Subclasses say which server (:meth:`_make_server`); ``stopping`` is set on stop, which
    ends any answer a subclass holds back on purpose.
    """

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    def _make_server(self) -> LoopbackServer:
        raise NotImplementedError

    @property
    def port(self) -> int:
        assert self._server is not None, f"{type(self).__name__} not started"
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        """Usable as a registry host in references: ``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._server = self._make_server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Front(LoopbackService):
    """An HTTP server on 127.0.0.1 (random port) in a thread, over one real registry."""

    def __init__(self, registry: LocalRegistry) -> None:
        super().__init__()
        self.registry = registry
        self.requests: list[tuple[str, str]] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=registry.url, timeout=httpx.Timeout(60.0))

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _make_server(self) -> LoopbackServer:
        return _Server(self)

    def stop(self) -> None:
        super().stop()
        self._http.close()

    # -- faults and records --------------------------------------------------

    def fail_next(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        body: bytes | str = b"",
        *,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (e.g. 429 + ``Retry-After: 0``)."""
        data = body.encode() if isinstance(body, str) else body
        with self._lock:
            for _ in range(times):
                self._faults.append(Fault(status, headers, data))

    def take_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def handle(self, handler: FrontHandler) -> None:
        raise NotImplementedError

    # -- proxying to the real registry -------------------------------------

    def proxy(self, handler: FrontHandler) -> None:
        """Pass one request through to the real registry and its answer back, streaming."""
        upstream = self.forward(handler)
        if upstream is None:
            return
        try:
            self.relay(handler, upstream)
        finally:
            upstream.close()

    def forward(self, handler: FrontHandler) -> httpx.Response | None:
        """Send the request on (body streamed, ``Host`` kept); the answer is left unread.

        None when the request cannot be forwarded (a chunked body): it was answered 411.
        """
        if handler.headers.get("Transfer-Encoding"):
            handler.reply(411, b"the front needs a Content-Length\n")
            handler.close_connection = True
            return None
        # A list, not a dict: clients repeat headers (skopeo sends one Accept per media type).
        headers = [
            (name, value)
            for name, value in handler.headers.items()
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length"
        ]
        length = handler.headers.get("Content-Length")
        content: Iterator[bytes] | None = None
        if length is not None:
            headers.append(("Content-Length", length))
            content = handler.request_body()
        request = self._http.build_request(
            handler.command, handler.path, headers=headers, content=content
        )
        return self._http.send(request, stream=True)

    def relay(
        self,
        handler: FrontHandler,
        upstream: httpx.Response,
        *,
        headers: Sequence[tuple[str, str]] | None = None,
        body: Iterator[bytes] | None = None,
        limit: int | None = None,
    ) -> None:
        """Send ``upstream``'s status, headers (or ``headers``) and body (or ``body``).

        ``limit`` stops after that many body bytes and marks the connection for
        closing: with the full ``Content-Length`` already sent, the client sees
        the body cut short.
        """
        handler.send_response_only(upstream.status_code)
        sent_headers = upstream.headers.multi_items() if headers is None else headers
        for name, value in sent_headers:
            if name.lower() not in HOP_BY_HOP:
                handler.send_header(name, value)
        has_body = handler.command != "HEAD" and upstream.status_code not in (204, 304)
        declared = any(name.lower() == "content-length" for name, _ in sent_headers)
        if has_body and not declared:
            handler.send_header("Connection", "close")  # length unknown: end marks the body
            handler.close_connection = True
        handler.end_headers()
        if not has_body:
            return
        remaining = limit
        for chunk in body if body is not None else upstream.iter_raw(CHUNK):
            if remaining is not None:
                chunk = chunk[:remaining]
                remaining -= len(chunk)
            handler.wfile.write(chunk)
            if remaining == 0:
                break
        if limit is not None:
            handler.wfile.flush()
            handler.close_connection = True

    # -- the real registry ---------------------------------------------------

    def _paged(self, path: str, key: str) -> list[str]:
        """A listing of the real registry, following its ``Link`` headers."""
        items: list[str] = []
        url: httpx.URL | None = httpx.URL(path)
        while url is not None:
            response = self._http.get(url)
            if response.status_code == 404:
                return items
            response.raise_for_status()
            items.extend(response.json().get(key) or [])
            following = response.links.get("next", {}).get("url")
            url = response.request.url.join(following) if following else None
        return items

    def catalog(self) -> list[str]:
        return self._paged("/v2/_catalog", "repositories")

    def _revision_dir(self, path: str) -> Path:
        return (
            self.registry.storage
            / "docker/registry/v2/repositories"
            / path
            / "_manifests/revisions/sha256"
        )

    def _revisions(self, path: str) -> list[str]:
        directory = self._revision_dir(path)
        if not directory.is_dir():
            return []
        return sorted(
            f"sha256:{entry.name}" for entry in directory.iterdir() if (entry / "link").is_file()
        )

    def tags(self, repository: str) -> list[str]:
        return self._paged(f"/v2/{repository}/tags/list", "tags")


class GcrFront(Front):
    """A registry host whose ``tags/list`` speaks gcr.io's (or Artifact Registry's) extension.

    ``numbers_as_strings``: gcr.io writes ``"timeUploadedMs": "1700000000000"``,
    Artifact Registry ``1700000000000``. ``inject`` adds raw entries to the answer
    for a path (``{"child": [...], "tags": [...], "manifest": {...}}``), for
    hostile listings; it is the only content not taken from the real registry.
    """

    def __init__(
        self,
        registry: LocalRegistry,
        *,
        numbers_as_strings: bool = True,
        inject: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(registry)
        self.numbers_as_strings = numbers_as_strings
        self.inject = {path: dict(extra) for path, extra in (inject or {}).items()}

    @property
    def listed(self) -> list[str]:
        """The paths whose gcr ``tags/list`` was asked for, in order."""
        found = []
        for method, target in list(self.requests):
            match = _TAGS_LIST.match(urlsplit(target).path)
            if method == "GET" and match:
                found.append(match["path"])
        return found

    def handle(self, handler: FrontHandler) -> None:
        match = _TAGS_LIST.match(urlsplit(handler.path).path)
        if handler.command == "GET" and match:
            self._tags_list(handler, match["path"])
        else:
            self.proxy(handler)

    def _number(self, value: int) -> int | str:
        return str(value) if self.numbers_as_strings else value

    def _tags_list(self, handler: FrontHandler, path: str) -> None:
        repositories = self.catalog()
        prefix = f"{path}/"
        children = sorted(
            {
                name[len(prefix) :].split("/", 1)[0]
                for name in repositories
                if name.startswith(prefix)
            }
        )
        tags = sorted(self.tags(path)) if path in repositories else []
        by_digest: dict[str, list[str]] = {}
        for tag in tags:
            head = self._http.head(f"/v2/{path}/manifests/{tag}", headers={"Accept": ACCEPT})
            head.raise_for_status()
            by_digest.setdefault(head.headers["docker-content-digest"], []).append(tag)
        for digest in self._revisions(path):
            by_digest.setdefault(digest, [])  # untagged: children of indexes
        manifest = {
            digest: self._manifest_entry(path, digest, t) for digest, t in by_digest.items()
        }
        extra = self.inject.get(path, {})
        if not (children or tags or manifest or extra):
            handler.reply_json(
                404,
                {"errors": [{"code": "NAME_UNKNOWN", "message": f"repository {path} not known"}]},
            )
            return
        handler.reply_json(
            200,
            {
                "child": children + list(extra.get("child", [])),
                "manifest": {**manifest, **extra.get("manifest", {})},
                "name": path,
                "tags": tags + list(extra.get("tags", [])),
            },
        )

    def _manifest_entry(self, path: str, digest: str, tags: Sequence[str]) -> dict[str, Any]:
        response = self._http.get(f"/v2/{path}/manifests/{digest}", headers={"Accept": ACCEPT})
        response.raise_for_status()
        document = response.json()
        size = 0
        if "layers" in document:
            size = document["config"]["size"] + sum(layer["size"] for layer in document["layers"])
        link = self._revision_dir(path) / digest.partition(":")[2] / "link"
        uploaded = int(link.stat().st_mtime * 1000)
        return {
            "imageSizeBytes": self._number(size),
            "layerId": "",
            "mediaType": response.headers["content-type"],
            "tag": sorted(tags),
            "timeCreatedMs": self._number(0),
            "timeUploadedMs": self._number(uploaded),
        }


class HubFront(Front):
    """The Docker Hub web API's repository listing (and tag pages), over a real registry's catalog.

    Lists the one-component repositories below a namespace (Hub has no
    nesting), sorted by name, ``page_size`` (default 10, at most 100) per page
    with an absolute ``next`` (``max_page_size`` makes pages smaller than asked,
    to force paging). A namespace without repositories is a 404, as
    on the Hub for one that does not exist. ``extra_names`` are appended to
    every namespace's list (hostile listings).
    """

    def __init__(
        self,
        registry: LocalRegistry,
        *,
        extra_names: Sequence[str] = (),
        max_page_size: int = 100,
    ) -> None:
        super().__init__(registry)
        self.extra_names = list(extra_names)
        self.max_page_size = max_page_size
        self.tag_next: str | None = None  # when set, every tag page's "next" (hostile pages)

    def tag_pushed(self, repository: str, tag: str) -> datetime:
        """When the real registry last pointed ``tag`` somewhere: its tag link's mtime."""
        link = (
            self.registry.storage
            / "docker/registry/v2/repositories"
            / repository
            / "_manifests/tags"
            / tag
            / "current/link"
        )
        return datetime.fromtimestamp(link.stat().st_mtime, UTC)

    def _tag_page(self, handler: FrontHandler, namespace: str, name: str, query: str) -> None:
        """``/v2/namespaces/<ns>/repositories/<name>/tags``: the registry's tags, with
        ``last_updated`` (:meth:`tag_pushed`), paged like the repository listing."""
        params = parse_qs(query)
        page = int(params.get("page", ["1"])[0])
        page_size = min(int(params.get("page_size", ["10"])[0]), self.max_page_size)
        tags = sorted(self.tags(f"{namespace}/{name}"))
        if not tags:
            handler.reply_json(404, {"message": "httperror 404: object not found"})
            return
        start = (page - 1) * page_size
        chunk = tags[start : start + page_size]
        following = urlencode({"page": page + 1, "page_size": page_size})
        stamp = "%Y-%m-%dT%H:%M:%S.%fZ"
        handler.reply_json(
            200,
            {
                "count": len(tags),
                "next": self.tag_next
                or (
                    f"{self.url}/v2/namespaces/{namespace}/repositories/{name}/tags?{following}"
                    if start + page_size < len(tags)
                    else None
                ),
                "previous": None,
                "results": [
                    {
                        "name": tag,
                        "last_updated": self.tag_pushed(f"{namespace}/{name}", tag).strftime(stamp),
                        "tag_status": "active",
                        "content_type": "image",
                    }
                    for tag in chunk
                ],
            },
        )

    def handle(self, handler: FrontHandler) -> None:
        split = urlsplit(handler.path)
        tags = _HUB_TAGS.match(split.path)
        if handler.command == "GET" and tags is not None:
            self._tag_page(handler, tags["namespace"], tags["name"], split.query)
            return
        match = _HUB_REPOSITORIES.match(split.path)
        if handler.command != "GET" or match is None:
            handler.reply_json(404, {"message": "page not found"})
            return
        namespace = match["namespace"]
        query = parse_qs(split.query)
        try:
            page = int(query.get("page", ["1"])[0])
            page_size = int(query.get("page_size", ["10"])[0])
        except ValueError:
            handler.reply_json(400, {"message": "invalid page or page_size"})
            return
        if page < 1 or not 1 <= page_size <= 100:
            handler.reply_json(400, {"message": "invalid page or page_size"})
            return
        page_size = min(page_size, self.max_page_size)  # serve smaller pages than asked
        prefix = f"{namespace}/"
        names = sorted(
            {
                name[len(prefix) :]
                for name in self.catalog()
                if name.startswith(prefix) and "/" not in name[len(prefix) :]
            }
        )
        names += self.extra_names
        start = (page - 1) * page_size
        if not names or (start >= len(names) and page > 1):
            handler.reply_json(404, {"message": "httperror 404: object not found"})
            return
        chunk = names[start : start + page_size]

        def link(number: int) -> str:
            query = urlencode({"page": number, "page_size": page_size})
            return f"{self.url}/v2/namespaces/{namespace}/repositories?{query}"

        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        handler.reply_json(
            200,
            {
                "count": len(names),
                "next": link(page + 1) if start + page_size < len(names) else None,
                "previous": link(page - 1) if page > 1 else None,
                "results": [
                    {
                        "name": name,
                        "namespace": namespace,
                        "repository_type": "image",
                        "status": 1,
                        "status_description": "active",
                        "description": "",
                        "is_private": False,
                        "star_count": 0,
                        "pull_count": 0,
                        "last_updated": now,
                        "date_registered": now,
                        "affiliation": "",
                        "media_types": [],
                        "content_types": ["image"],
                        "categories": [],
                    }
                    for name in chunk
                ],
            },
        )


class ProxyFront(Front):
    """The real registry, unchanged, behind a host that records every request."""

    def handle(self, handler: FrontHandler) -> None:
        self.proxy(handler)
