"""The fast paths of the answer parse agree with the plain, line-by-line reading they replace.

``parse_head`` checks a whole head with one regular expression and ``head_end``
finds a CRLF blank line with ``find``; both are compared here, over generated
heads (valid and broken: folded lines, bare CRs and LFs, control characters,
odd status lines, framing fields in any case), with the obvious reading.
"""

from __future__ import annotations

import random
import re

import httpx
import pytest

from mirrorbot.engine.registry.framing import (
    MAX_HEADERS,
    MAX_LINE,
    MAX_TRAILERS,
    Chunked,
    head_end,
    parse_head,
)

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_STATUS = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9]{2})(?: ([\t\x20-\x7e\x80-\xff]*))?")
_FRAMING = (b"connection", b"content-length", b"transfer-encoding", b"content-encoding")


def _reference(
    block: bytes,
) -> tuple[int, bytes, list[tuple[bytes, bytes]], dict[bytes, list[bytes]], bool]:
    """RFC 9112's head, read the slow and obvious way."""
    lines = [line.removesuffix(b"\r") for line in block.split(b"\n")]
    status = _STATUS.fullmatch(lines[0])
    if status is None or len(lines) - 1 > MAX_HEADERS:
        raise ValueError(lines[0])
    headers: list[tuple[bytes, bytes]] = []
    framing: dict[bytes, list[bytes]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        value = value.strip(b" \t")
        if not colon or not _TOKEN.fullmatch(name) or not _VALUE.fullmatch(value):
            raise ValueError(line)
        if len(line) > MAX_LINE:
            raise ValueError("long")
        headers.append((name, value))
        if name.lower() in _FRAMING:
            framing.setdefault(name.lower(), []).extend(
                token.strip().lower() for token in value.split(b",") if token.strip()
            )
    return int(status[2]), status[3] or b"", headers, framing, status[1] == b"1"


def _generated_head(rng: random.Random) -> bytes:
    lines = [
        rng.choice([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/2", b"ICY", b"http/1.1"])
        + b" "
        + rng.choice([b"200", b"201", b"404", b"304"] * 3 + [b"099", b"1000", b"20", b"100"])
        + rng.choice([b" OK", b"", b" ", b" Not\tFound", b" bad\x01", b"  two", b" \xff"])
    ]
    names = [
        b"Content-Length", b"CONTENT-length", b"Transfer-Encoding", b"Connection",
        b"Content-Encoding", b"Location", b"X-A", b"Link", b"Bad Name", b"", b"N\x01", b"Content-Lengthy",
    ]  # fmt: skip
    values = [
        b"0", b"5", b"5, 5", b"5,6", b"", b" 12 ", b"chunked", b"gzip, chunked", b"close", b"a\tb",
        b"\xff\xfe", b"x\ry", b"v\x00", b'<http://x/?a=b>; rel="next"', b"  padded\t", b"a:b",
    ]  # fmt: skip
    for _ in range(rng.randint(0, 8)):
        separator = rng.choice([b": ", b":", b" : ", b":\t"])
        lines.append(rng.choice(names) + separator + rng.choice(values) + rng.choice([b"", b" "]))
    if rng.random() < 0.1:
        lines.insert(rng.randint(1, len(lines)), rng.choice([b" folded", b"\tfolded"]))
    if rng.random() < 0.02:
        lines.append(b"X-Long: " + b"v" * (MAX_LINE - 8 + rng.randint(-1, 1)))
    endings = [rng.choice([b"\r\n", b"\n", b"\r\n", b"\r\n", b"\r\r\n"]) for _ in lines]
    return b"".join(line + end for line, end in zip(lines, endings, strict=True))


def _outcome(parse: object, block: bytes) -> object:
    try:
        return parse(block)  # type: ignore[operator]
    except (ValueError, httpx.RemoteProtocolError):
        return "refused"


def test_parse_head_agrees_with_the_line_by_line_reading() -> None:
    rng = random.Random(16)  # noqa: S311 - a fixed, repeatable sample, not a secret
    accepted = 0
    for _ in range(20_000):
        block = _generated_head(rng).rstrip(b"\r\n")
        expected = _outcome(_reference, block)
        assert _outcome(parse_head, block) == expected, block[:200]
        accepted += expected != "refused"
    assert 1_000 < accepted < 19_000  # both kinds were generated


def test_a_head_over_the_field_count_is_refused_and_one_at_it_is_not() -> None:
    fields = b"".join(b"\r\nX-%d: v" % n for n in range(MAX_HEADERS))
    assert len(parse_head(b"HTTP/1.1 200 OK" + fields)[2]) == MAX_HEADERS
    with pytest.raises(httpx.RemoteProtocolError, match="more than"):
        parse_head(b"HTTP/1.1 200 OK" + fields + b"\r\nX-last: v")


def test_head_end_finds_what_the_blank_line_pattern_finds() -> None:
    pattern = re.compile(rb"\r?\n\r?\n")
    rng = random.Random(7)  # noqa: S311 - a fixed, repeatable sample, not a secret
    pieces = [b"\r", b"\n", b"\r\n", b"a", b"HTTP/1.1 200 OK", b": ", b"\n\r", b"x" * 5]
    for _ in range(50_000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        start = rng.randint(0, len(data))
        found = pattern.search(data, start)
        assert head_end(data, start) == (found and (found.start(), found.end())), (data, start)
        assert head_end(bytearray(data), start) == head_end(data, start)


def test_a_chunk_size_may_have_whitespace_before_its_extensions_not_before_itself() -> None:
    assert Chunked().feed(b"5 ;ext=1\r\nhello\r\n0\r\n\r\n") == ([b"hello"], b"", True)
    with pytest.raises(httpx.RemoteProtocolError, match="malformed chunk size"):
        Chunked().feed(b" 5\r\nhello\r\n0\r\n\r\n")


def test_an_unfinished_trailer_line_counts_against_the_trailers_total() -> None:
    """Finished trailer lines and the one still arriving share one MAX_TRAILERS."""
    body = Chunked()
    body.feed(b"0\r\n" + b"X-T: " + b"v" * (MAX_TRAILERS // 2) + b"\r\n")
    with pytest.raises(httpx.RemoteProtocolError, match="without end"):
        body.feed(b"X-U: " + b"w" * (MAX_TRAILERS // 2 + 16))
