"""Tag regexes (``include``/``exclude``/``mutable``, image-syncer ``:/regex/``): RE2, linear time.

Tag patterns come from people we do not trust (an issue form, a pull
request), and Python's backtracking ``re`` can spend hours on one tag
(``\\w*\\w*\\w*…!``). RE2 (``google-re2``, the engine of Go's ``regexp``)
matches in time linear in the tag and bounded memory whatever the pattern,
and has no fallback to a backtracking engine. It reads Go's syntax, which is
Python's minus the constructs that need backtracking. Those, and the few
Python spellings RE2 would silently read differently, are refused here with
their name, so nobody's pattern changes meaning without them knowing.

Every tag pattern in the package is compiled here; nothing else compiles a
user's regex.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import re2

from mirrorbot.errors import TagRegexError

__all__ = [
    "MAX_PATTERNS",
    "MAX_PATTERN_LENGTH",
    "TagRegex",
    "check_tag_regex",
    "compile_tag_regex",
    "compile_tag_regexes",
]

MAX_PATTERN_LENGTH: Final = 1000
MAX_PATTERNS: Final = 100  # per list (include, exclude, mutable)
_SHOWN: Final = 60  # characters of a pattern quoted in a message


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every rejected pattern on stderr
    return options


_OPTIONS: Final = _options()


@dataclass(frozen=True, slots=True)
class TagRegex:
    """One compiled tag pattern; equal when the pattern text is."""

    pattern: str
    _compiled: Any = field(repr=False, compare=False)

    def fullmatch(self, tag: str) -> bool:
        """Whether the whole tag matches (text RE2 cannot hold, lone surrogates, matches nothing)."""
        try:
            return self._compiled.fullmatch(tag) is not None
        except UnicodeEncodeError:
            return False

    def search(self, tag: str) -> bool:
        """Whether the pattern matches anywhere in the tag (image-syncer's unanchored match)."""
        try:
            return self._compiled.search(tag) is not None
        except UnicodeEncodeError:
            return False


def _shown(pattern: str) -> str:
    return repr(pattern if len(pattern) <= _SHOWN else pattern[:_SHOWN] + "…")


def compile_tag_regex(pattern: str) -> TagRegex:
    """``pattern`` compiled with RE2, or :class:`TagRegexError` naming what is wrong."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise TagRegexError(
            f"regex is {len(pattern)} characters long; the limit is {MAX_PATTERN_LENGTH}"
        )
    unsupported = _unsupported(pattern)
    if unsupported is not None:
        raise TagRegexError(f"regex {_shown(pattern)}: {unsupported}")
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except UnicodeEncodeError:
        raise TagRegexError(f"regex {_shown(pattern)} is not valid Unicode text") from None
    except re2.error as exc:
        raise TagRegexError(f"invalid regex {_shown(pattern)}: {_reason(exc)}") from None
    return TagRegex(pattern, compiled)


def check_tag_regex(pattern: str) -> str:
    """``pattern`` unchanged when it compiles (a validator for config values)."""
    compile_tag_regex(pattern)
    return pattern


def compile_tag_regexes(patterns: Iterable[str]) -> tuple[TagRegex, ...]:
    """Each pattern compiled; at most :data:`MAX_PATTERNS` of them."""
    listed = tuple(patterns)
    if len(listed) > MAX_PATTERNS:
        raise TagRegexError(f"{len(listed)} regexes; a list may hold at most {MAX_PATTERNS}")
    return tuple(compile_tag_regex(pattern) for pattern in listed)


def _reason(exc: Exception) -> str:
    message = exc.args[0] if exc.args else ""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    if text.startswith("pattern too large"):
        return "it is too large for RE2 (its compiled form exceeds RE2's memory cap); simplify it"
    if text.startswith("invalid repetition size"):
        return f"{text} (RE2 repeats at most 1000 times)"
    return text


# --------------------------------------------------------------------------- naming what RE2 lacks

_NOT_SUPPORTED: Final = "is not supported: tag regexes use RE2 syntax"

#: ``(?…`` openings RE2 does not have (longest first where prefixes overlap).
_GROUPS: Final = (
    ("(?<=", "look-behind `(?<=…)`"),
    ("(?<!", "negative look-behind `(?<!…)`"),
    ("(?=", "look-ahead `(?=…)`"),
    ("(?!", "negative look-ahead `(?!…)`"),
    ("(?>", "atomic group `(?>…)`"),
    ("(?P=", "named backreference `(?P=name)`"),
    ("(?P>", "recursion `(?P>name)`"),
    ("(?&", "recursion `(?&name)`"),
    ("(?R", "recursion `(?R)`"),
    ("(?(", "conditional `(?(…)…|…)`"),
    ("(?#", "comment `(?#…)`"),
    ("(?|", "branch reset `(?|…)`"),
)
#: Escapes RE2 lacks (or reads otherwise) → what they are, and what to write instead.
_ESCAPES: Final = {
    "g": ("backreference `\\g<…>`", ""),
    "k": ("named backreference `\\k<…>`", ""),
    "Z": ("`\\Z`", "write `\\z`, or nothing: a tag regex always matches the whole tag"),
    "u": ("the escape `\\u`", "write `\\x{…}`"),
    "U": ("the escape `\\U`", "write `\\x{…}`"),
    "N": ("the escape `\\N{…}`", "write `\\x{…}`"),
    "C": ("`\\C` (one byte)", "write `.`"),
}
#: Inline flags RE2 has: i (case), m (multi-line), s (dot matches newline), U (ungreedy).
_RE2_FLAGS: Final = frozenset("imsU")
_FLAG_NAMES: Final = {
    "x": "verbose mode",
    "a": "ASCII mode",
    "u": "Unicode mode",
    "L": "locale mode",
}
_QUANTIFIERS: Final = frozenset("*+?")


def _unsupported(pattern: str) -> str | None:
    """The first construct outside character classes that RE2 lacks or reads differently."""
    quantifier: str | None = None  # the piece before, when it was a quantifier
    for position, piece in _top_level(pattern):
        if piece == "+" and quantifier is not None:
            return f"possessive quantifier `{quantifier}+` {_NOT_SUPPORTED}"
        quantifier = None
        if piece == "(" and pattern.startswith("(?", position):
            found = _group(pattern[position:])
            if found is not None:
                return found
        elif len(piece) == 2 and piece.startswith("\\"):
            letter = piece[1]
            if letter in "123456789":
                number = _digits(pattern, position + 1)
                return f"backreference `\\{number}` {_NOT_SUPPORTED}"
            if letter in _ESCAPES:
                name, hint = _ESCAPES[letter]
                return f"{name} {_NOT_SUPPORTED}; {hint}" if hint else f"{name} {_NOT_SUPPORTED}"
        elif piece.startswith("{,"):
            return (
                f"the repetition `{piece}` {_NOT_SUPPORTED}, which reads it as "
                f"literal text; write `{{0{piece[1:]}`"
            )
        elif piece in _QUANTIFIERS or piece.startswith("{"):
            quantifier = piece
    return None


def _digits(text: str, start: int) -> str:
    end = start
    while end < len(text) and text[end].isdigit():
        end += 1
    return text[start:end]


def _group(rest: str) -> str | None:
    """What the ``(?…`` at the start of ``rest`` is, when RE2 lacks it."""
    for opening, name in _GROUPS:
        if rest.startswith(opening):
            return f"{name} {_NOT_SUPPORTED}"
    if rest[2:3].isdigit() or (rest[2:3] in ("+", "-") and rest[3:4].isdigit()):
        return f"recursion `(?N)` {_NOT_SUPPORTED}"
    end = 2
    while end < len(rest) and (rest[end].isalpha() or rest[end] == "-"):
        end += 1
    if rest[end : end + 1] not in (":", ")"):  # (?P<name>…), (?<name>…) or not a flag group
        return None
    for letter in rest[2:end]:
        if letter != "-" and letter not in _RE2_FLAGS:
            name = _FLAG_NAMES.get(letter, "the inline flag")
            return f"{name} `(?{letter})` {_NOT_SUPPORTED}, whose flags are i, m, s and U"
    return None


def _repetition(rest: str) -> str | None:
    """``{m}``, ``{m,}``, ``{m,n}`` or ``{,n}`` at the start of ``rest``, else None."""
    end = rest.find("}")
    if end < 0:
        return None
    low, comma, high = rest[1:end].partition(",")
    if (low.isdigit() or (comma and not low)) and (not high or high.isdigit()):
        return rest[: end + 1]
    return None


def _top_level(pattern: str) -> Iterator[tuple[int, str]]:
    """(position, token) outside character classes and ``\\Q…\\E``.

    Tokens are one character, an escape (``\\d``, ``\\x{41}``, ``\\p{Greek}``),
    a counted repetition (``{2,5}``), or the ``[`` that opens a class.
    """
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("\\Q", index):
            end = pattern.find("\\E", index + 2)
            index = len(pattern) if end < 0 else end + 2
            continue
        if char == "\\":
            end = index + 2
            if pattern[index + 1 : index + 2] in ("x", "p", "P") and pattern.startswith("{", end):
                closing = pattern.find("}", end)
                end = len(pattern) if closing < 0 else closing + 1
        elif char == "[":
            yield index, "["
            index = _class_end(pattern, index)
            continue
        elif char == "{" and (repetition := _repetition(pattern[index:])) is not None:
            end = index + len(repetition)
        else:
            end = index + 1
        yield index, pattern[index:end]
        index = end


def _class_end(pattern: str, index: int) -> int:
    """Index just past the character class opening at ``index``."""
    index += 1
    if pattern.startswith("^", index):
        index += 1
    if pattern.startswith("]", index):  # a leading "]" is literal
        index += 1
    while index < len(pattern):
        if pattern[index] == "\\":
            index += 2
        elif pattern.startswith("[:", index) and (end := pattern.find(":]", index + 2)) >= 0:
            index = end + 2
        elif pattern[index] == "]":
            return index + 1
        else:
            index += 1
    return index
