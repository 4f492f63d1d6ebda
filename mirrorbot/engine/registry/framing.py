"""HTTP/1.1 answers, parsed strictly and within bounds: heads and the framing of bodies.

An upstream is anyone's server. A head is at most :data:`MAX_HEAD` bytes and
:data:`MAX_HEADERS` fields, a line at most :data:`MAX_LINE`, a chunk-size line
:data:`MAX_CHUNK_LINE`, trailers :data:`MAX_TRAILERS`; folded header lines,
bare CRs, conflicting ``Content-Length`` values and transfer codings other
than ``chunked`` are refused (:class:`httpx.RemoteProtocolError`), as h11
refuses them. Request heads are checked the other way: no value may carry a
line break into what we send.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import httpx

__all__ = [
    "DIGITS",
    "MAX_CHUNK_LINE",
    "MAX_HEAD",
    "MAX_HEADERS",
    "MAX_INTERIM",
    "MAX_LINE",
    "MAX_TRAILERS",
    "Chunked",
    "Decoder",
    "Head",
    "Length",
    "UntilClose",
    "head_end",
    "parse_head",
    "request_head",
    "violation",
]

MAX_HEAD = 256 * 1024
MAX_LINE = 64 * 1024  # Link headers of long listings are long
MAX_HEADERS = 256
MAX_CHUNK_LINE = 4 * 1024
MAX_TRAILERS = 64 * 1024
MAX_INTERIM = 16  # 1xx answers before the final one

_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_FIELD_VALUE = rb"[\t\x20-\x7e\x80-\xff]*"
_STATUS_LINE = rb"HTTP/1\.([01]) ([1-9][0-9]{2})(?: (" + _FIELD_VALUE + rb"))?"
_STATUS = re.compile(_STATUS_LINE)
_TOKEN = re.compile(_TCHAR + rb"+")
_FIELD = re.compile(rb"(" + _TCHAR + rb"+):[\t ]*(" + _FIELD_VALUE + rb"?)[\t ]*")
# A whole head in one match: the status line, then each field on its own line (CRLF or
# bare LF). Folded lines, bare CRs and control characters fail it.
_HEAD = re.compile(_STATUS_LINE + rb"\r?((?:\n" + _TCHAR + rb"+:" + _FIELD_VALUE + rb"\r?)*)")
_FRAMING_FIELD = re.compile(
    rb"\n(connection|content-length|transfer-encoding|content-encoding):([^\r\n]*)",
    re.IGNORECASE,
)
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
DIGITS = re.compile(rb"[0-9]{1,19}")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_VALUE = re.compile(_FIELD_VALUE)


class Head(NamedTuple):
    """An answer's status line and header fields, as they came (names' case kept)."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]


def request_head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """A request's head, refusing what would let a value smuggle in a header or a request."""
    if not _TOKEN.fullmatch(method) or not _TARGET.fullmatch(target):
        raise httpx.LocalProtocolError(f"refusing to send request line {method!r} {target!r}")
    lines = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or not _VALUE.fullmatch(value):
            raise httpx.LocalProtocolError(f"refusing to send header field {name!r}")
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def violation(message: str) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(message)


def parse_head(
    block: bytes,
) -> tuple[int, bytes, list[tuple[bytes, bytes]], dict[bytes, list[bytes]], bool]:
    """Status, reason, fields, the framing fields' tokens and whether the peer speaks HTTP/1.1.

    One regular-expression match checks the whole head (13 -> 5 us for a registry's
    answer); a head it refuses is taken apart line by line only to say why.
    """
    matched = _HEAD.fullmatch(block)
    if matched is None:
        _refuse(block)
        raise violation("a malformed answer head")  # _refuse always raises; for the reader
    fields = matched[4]
    lines = fields.split(b"\n")
    del lines[0]  # before the first field's line break: nothing
    if len(lines) > MAX_HEADERS or (lines and max(map(len, lines)) > MAX_LINE):
        _refuse(block)  # which limit, exactly (a line's length does not count its CR)
    headers = [
        (name, value.strip(b" \t\r")) for name, _, value in (line.partition(b":") for line in lines)
    ]
    framing: dict[bytes, list[bytes]] = {}
    for name, value in _FRAMING_FIELD.findall(fields):
        tokens = framing.setdefault(name.lower(), [])
        tokens += (token.strip().lower() for token in value.split(b",") if token.strip())
    return int(matched[2]), matched[3] or b"", headers, framing, matched[1] == b"1"


def _refuse(block: bytes) -> None:
    """Raise what is wrong with a head :data:`_HEAD` did not match, line by line."""
    lines = block.split(b"\n")
    status_line = lines[0].removesuffix(b"\r")
    if _STATUS.fullmatch(status_line) is None:
        raise violation(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    if len(lines) - 1 > MAX_HEADERS:
        raise violation(f"more than {MAX_HEADERS} header fields")
    for raw in lines[1:]:
        line = raw.removesuffix(b"\r")
        if len(line) > MAX_LINE:
            raise violation(f"a header line longer than {MAX_LINE} bytes")
        if _FIELD.fullmatch(line) is None:
            # Also folded lines (RFC 9112 §5.2 lets a client refuse them) and bare CRs.
            raise violation(f"malformed header line: {line[:80]!r}")


def head_end(data: bytes | bytearray, start: int) -> tuple[int, int] | None:
    """Where the head in ``data`` ends and what follows begins; None while it is incomplete.

    A CRLF blank line is found by ``find`` (0.3 us); a head ended by bare line feeds
    (RFC 9112 §2.2 lets a recipient accept them) by :data:`_HEAD_END` (5 us).
    """
    crlf = data.find(b"\r\n\r\n", start)
    limit = crlf if crlf >= 0 else len(data)
    if data.find(b"\n\n", start, limit) < 0 and data.find(b"\n\r\n", start, limit + 2) < 0:
        return None if crlf < 0 else (crlf, crlf + 4)
    found = _HEAD_END.search(data, start)
    return None if found is None else (found.start(), found.end())


class Length:
    """A body of a declared length."""

    __slots__ = ("left",)

    def __init__(self, length: int) -> None:
        self.left = length

    def feed(self, data: bytes) -> tuple[list[bytes], bytes, bool]:
        if len(data) <= self.left:
            self.left -= len(data)
            return [data], b"", self.left == 0
        body, rest = data[: self.left], data[self.left :]
        self.left = 0
        return [body], rest, True


class UntilClose:
    """A body that ends when the peer closes the connection."""

    __slots__ = ()

    def feed(self, data: bytes) -> tuple[list[bytes], bytes, bool]:
        return [data], b"", False


class Chunked:
    """A chunked body (RFC 9112 §7.1): sizes, data, trailers, each bounded."""

    __slots__ = ("_left", "_line", "_state", "_trailers")

    def __init__(self) -> None:
        self._state = "size"  # size | data | crlf | trailers | done
        self._line = bytearray()
        self._left = 0
        self._trailers = 0

    def feed(self, data: bytes) -> tuple[list[bytes], bytes, bool]:
        pieces: list[bytes] = []
        view = memoryview(data)
        at = 0
        while at < len(data):
            if self._state == "data":
                take = min(self._left, len(data) - at)
                pieces.append(data if take == len(data) else bytes(view[at : at + take]))
                at += take
                self._left -= take
                if self._left == 0:
                    self._state = "crlf"
                continue
            end = data.find(b"\n", at)
            if end < 0:
                self._line += view[at:]
                at = len(data)
                limit = (
                    MAX_CHUNK_LINE if self._state != "trailers" else MAX_TRAILERS - self._trailers
                )
                if len(self._line) > limit:
                    raise violation("a chunk-size or trailer line without end")
                break
            self._line += view[at:end]
            at = end + 1
            line = bytes(self._line).removesuffix(b"\r")
            self._line.clear()
            if self._state == "crlf":
                if line:
                    raise violation("chunk data longer than its size")
                self._state = "size"
            elif self._state == "size":
                # RFC 9112 §7.1.1: whitespace may precede the extensions, not the size.
                size = _HEX.fullmatch(line.split(b";", 1)[0].rstrip(b" \t"))
                if size is None or len(line) > MAX_CHUNK_LINE:
                    raise violation(f"malformed chunk size: {line[:40]!r}")
                self._left = int(size[0], 16)
                self._state = "data" if self._left else "trailers"
            else:  # trailers: read and dropped, bounded
                self._trailers += len(line)
                if self._trailers > MAX_TRAILERS:
                    raise violation("trailers longer than allowed")
                if not line:
                    self._state = "done"
                    return pieces, data[at:], True
        return pieces, b"", False


Decoder = Length | UntilClose | Chunked
