"""httpx's client for registries: no cookie store, and relative URLs parsed once, not twice.

Both are per-request costs inside httpx that a registry client gains nothing
from (measured in a profiled cold sync, see bench/README.md's optimisation log):

* cookies — for every answer, ``httpx.AsyncClient`` hands it to its cookie jar
  through a ``urllib.request.Request`` built from the request URL (a urllib
  parse and an ``email.message`` of the headers) even when no ``Set-Cookie``
  came. Registries authenticate with headers, never cookies, so this client
  keeps none: nothing a registry sets is stored or sent back (which also means
  no upstream can plant a cookie that rides along on later requests);
* URLs — ``build_request("GET", "/v2/...")`` parses the path, then re-parses
  the base URL with the joined path. Here a path is joined to the base as a
  string and parsed once: the same URL (httpx normalises both alike).
"""

from __future__ import annotations

from typing import Any, NoReturn

import httpx

__all__ = ["RegistryHttpClient"]


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

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: object) -> NoReturn:
        raise TypeError("a registry client keeps no cookies")

    def build_request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Request:
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
        return super().build_request(method, url, **kwargs)
