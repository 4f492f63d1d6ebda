"""httpx's client for registries: no cookie store, and relative URLs parsed once, not twice.

Both are per-request costs inside httpx that a registry client gains nothing
from (measured in a profiled cold sync, see bench/README.md's optimisation log):

* cookies — for every answer, ``httpx.AsyncClient`` hands it to its cookie jar
  through a ``urllib.request.Request`` built from the request URL (a urllib
  parse and an ``email.message`` of the headers) even when no ``Set-Cookie``
  came. Registries authenticate with headers, never cookies, so this client
  keeps none: nothing a registry sets is stored or sent back (which also means
  no upstream can plant a cookie that rides along on later requests);
* URLs — httpx parses and validates every URL string (15-30 µs for a registry
  path, 60 µs for ``URL.join``), and ``build_request("GET", "/v2/...")`` parses
  twice. A path or same-origin URL made only of characters httpx keeps as they
  are (:data:`_VERBATIM`: no space, no ``#``, no dot segment, nothing outside
  ASCII) is spliced onto the client's already-parsed origin instead:
  the URL httpx would have built, without the parse (tests/unit/test_registry_http.py
  compares the two over generated paths). Anything else takes httpx's parser.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

import httpx

__all__ = ["RegistryHttpClient"]

# What httpx (0.28) leaves untouched in a path or a query: unreserved characters,
# sub-delims, ":@/", "?" and "%" (escapes are kept as they are, valid or not); one
# character class, which is several times cheaper on a long URL than an alternation.
_VERBATIM = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*")


# build_request's arguments a registry request uses; anything else goes through httpx's.
_DIRECT = frozenset({"headers", "content", "params", "extensions"})
_FIELDS = ("scheme", "userinfo", "host", "port", "path", "query", "fragment")


def _spliceable(origin: httpx.URL) -> bool:
    """httpx keeps a parsed URL as a 7-field named tuple (0.28); splice only onto that."""
    parsed: Any = getattr(origin, "_uri_reference", None)
    return (
        getattr(parsed, "_fields", None) == _FIELDS
        and parsed.path in ("", "/")
        and parsed.query is None
        and parsed.fragment is None
    )


def _verbatim(target: str) -> bool:
    """An absolute path (and query) httpx would keep exactly as written: no dot segment."""
    path = target.partition("?")[0]
    return (
        path[:1] == "/"
        and path[1:2] != "/"
        and "/." not in path
        and _VERBATIM.fullmatch(target) is not None
    )


def _splice(origin: httpx.URL, target: str) -> httpx.URL:
    """``origin`` with the path and query of a :func:`_verbatim` ``target`` ("/v2/…?…")."""
    path, mark, query = target.partition("?")
    url = httpx.URL.__new__(httpx.URL)
    parsed = origin._uri_reference
    # The fields in _FIELDS' order (checked by _spliceable): half the cost of _replace().
    url._uri_reference = tuple.__new__(
        type(parsed), (*parsed[:4], path, query if mark else None, parsed[6])
    )
    return url


class _NoCookies(httpx.Cookies):
    """An always-empty cookie store: answers' cookies are dropped without being read."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        raise TypeError("a registry client keeps no cookies")


class RegistryHttpClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` with :class:`_NoCookies` and a one-parse join of relative paths."""

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("cookies"):
            raise TypeError("a registry client keeps no cookies")
        super().__init__(**kwargs)
        self._no_cookies = _NoCookies()
        # httpx keeps base_url with a trailing "/"; paths are joined after it, like _merge_url.
        base = str(self.base_url) if self.base_url.is_absolute_url else ""
        self._base = base if not base or base.endswith("/") else base + "/"
        self._origin = self.base_url if base and _spliceable(self.base_url) else None

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: object) -> NoReturn:
        raise TypeError("a registry client keeps no cookies")

    def url(self, target: str) -> httpx.URL | str:
        """``target`` (an absolute path, or a URL on this client's origin) as a URL, parsed at most once."""
        if self._origin is not None:
            path = self._path_of(target)
            if _verbatim(path):
                return _splice(self._origin, path)
        return target

    def resolve(self, base: httpx.URL, location: str) -> str:
        """``location`` (a ``Location`` header) resolved against ``base``, as ``URL.join`` would."""
        if self._origin is not None and str(base).startswith(self._base):
            path = self._path_of(location)
            # join drops an empty query and empty ";" parameters (urllib's rules): parse those.
            if ";" not in path and path[-1:] != "?" and _verbatim(path):
                return self._base[:-1] + path
        return str(base.join(location))

    def _path_of(self, target: str) -> str:
        """A URL on this client's origin as its path (and query); anything else as it is."""
        return target[len(self._base) - 1 :] if target.startswith(self._base) else target

    def build_request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Request:
        if isinstance(url, str) and self._origin is not None:
            url = self.url(url)
        # An absolute-path reference ("/v2/..."), not a network-path one ("//host/..."):
        # httpx would append it to base_url's path after stripping its leading "/" (and
        # drop a fragment, which that path leaves to httpx).
        if (
            self._base
            and isinstance(url, str)
            and url[:1] == "/"
            and url[1:2] != "/"
            and "#" not in url
        ):
            url = httpx.URL(self._base + url[1:])
        if (
            isinstance(url, httpx.URL)
            and url.is_absolute_url
            and kwargs.keys() <= _DIRECT
            and kwargs.get("params") is None
            and isinstance(kwargs.get("headers") or {}, dict)
        ):
            return self._direct(method, url, **kwargs)
        return super().build_request(method, url, **kwargs)

    def _direct(
        self,
        method: str,
        url: httpx.URL,
        *,
        headers: dict[str, str] | None = None,
        content: Any = None,
        params: None = None,
        extensions: dict[str, Any] | None = None,
    ) -> httpx.Request:
        """``build_request`` for what a registry client sends: the client's headers with the
        request's on top (a name given replaces the client's), its timeout unless one is given."""
        merged = self.headers.raw
        if headers:
            # As httpx encodes a str header (ASCII unless told otherwise).
            given = [(k.encode("ascii"), v.encode("ascii")) for k, v in headers.items()]
            names = {name.lower() for name, _ in given}
            merged = [(k, v) for k, v in merged if k.lower() not in names] + given
        wanted = dict(extensions or {})
        if "timeout" not in wanted:
            wanted["timeout"] = self.timeout.as_dict()
        return httpx.Request(method, url, headers=merged, content=content, extensions=wanted)
