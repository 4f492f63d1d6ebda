"""Tag regexes are RE2: linear time, and every construct RE2 lacks is refused by name."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mirrorbot.config.regex import (
    MAX_PATTERN_LENGTH,
    MAX_PATTERNS,
    TagRegex,
    compile_tag_regex,
    compile_tag_regexes,
)
from mirrorbot.errors import TagRegexError

REDOS = "\\w*\\w*\\w*\\w*\\w*\\w*\\w*\\w*\\w*\\w*!"


@pytest.mark.parametrize(
    ("pattern", "named"),
    [
        ("(?=v)\\w+", "look-ahead `(?=…)` is not supported: tag regexes use RE2 syntax"),
        ("(?!rc)\\w+", "negative look-ahead `(?!…)` is not supported"),
        ("\\w+(?<=\\d)", "look-behind `(?<=…)` is not supported"),
        ("\\w+(?<!rc)", "negative look-behind `(?<!…)` is not supported"),
        ("(?<=", "look-behind `(?<=…)` is not supported"),
        ("(v)\\1", "backreference `\\1` is not supported"),
        ("(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)\\10", "backreference `\\10` is not supported"),
        ("(?P<v>a)(?P=v)", "named backreference `(?P=name)` is not supported"),
        ("(?<v>a)\\k<v>", "named backreference `\\k<…>` is not supported"),
        ("(a)\\g<1>", "backreference `\\g<…>` is not supported"),
        ("a++", "possessive quantifier `++` is not supported"),
        ("a*+", "possessive quantifier `*+` is not supported"),
        ("a?+", "possessive quantifier `?+` is not supported"),
        ("a{2}+", "possessive quantifier `{2}+` is not supported"),
        ("(?>a|ab)c", "atomic group `(?>…)` is not supported"),
        ("(a)?(?(1)b|c)", "conditional `(?(…)…|…)` is not supported"),
        ("(?R)?", "recursion `(?R)` is not supported"),
        ("(a)(?1)", "recursion `(?N)` is not supported"),
        ("(?#note)v1", "comment `(?#…)` is not supported"),
        ("(?x) v 1", "verbose mode `(?x)` is not supported"),
        ("(?a)\\w", "ASCII mode `(?a)` is not supported"),
        ("(?i-x:v)", "verbose mode `(?x)` is not supported"),
        ("v1\\Z", "`\\Z` is not supported: tag regexes use RE2 syntax; write `\\z`"),
        ("\\u0076", "the escape `\\u` is not supported"),
        ("\\N{DIGIT ONE}", "the escape `\\N{…}` is not supported"),
        ("\\C", "`\\C` (one byte) is not supported"),
        # Python reads {,3} as {0,3}; RE2 as the literal text "{,3}": refused, not misread.
        ("v{,3}", "the repetition `{,3}` is not supported"),
        ("v{,}", "the repetition `{,}` is not supported"),
    ],
)
def test_constructs_re2_lacks_are_refused_by_name(pattern: str, named: str) -> None:
    with pytest.raises(TagRegexError) as caught:
        compile_tag_regex(pattern)
    assert named in str(caught.value)
    assert repr(pattern) in str(caught.value)


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("(", "invalid regex '(': missing )"),
        ("[a-", "invalid regex '[a-': missing ]"),
        ("*a", "no argument for repetition operator"),
        ("[\\C]", "invalid escape sequence"),
        ("a{1001}", "RE2 repeats at most 1000 times"),
        ("\\pL{1000}", "too large for RE2"),
        ("\ud800", "not valid Unicode"),
        ("x" * (MAX_PATTERN_LENGTH + 1), f"the limit is {MAX_PATTERN_LENGTH}"),
    ],
)
def test_invalid_patterns_say_why(pattern: str, fragment: str) -> None:
    with pytest.raises(TagRegexError) as caught:
        compile_tag_regex(pattern)
    assert fragment in str(caught.value)
    assert len(str(caught.value)) < 300  # a long pattern is quoted shortened


@pytest.mark.parametrize(
    ("pattern", "tag", "matches"),
    [
        # Lookalikes of refused constructs, inside classes, escapes or \Q…\E, are fine.
        ("[(?=]+v", "(?=v", True),
        ("\\(?=v", "=v", True),
        ("\\Q(?=\\E", "(?=", True),
        ("[{,3}]+", "{,3}", True),
        ("\\{,3}", "{,3}", True),
        ("\\++", "++", True),
        ("\\\\1", "\\1", True),  # an escaped backslash, then 1
        ("\\x{41}+", "AA", True),
        ("\\p{Greek}+", "αβ", True),
        ("[[:alpha:]]+\\d", "v1", True),
        ("[]a]+", "]a", True),
        ("(?i)V(?-i:x)", "vx", True),
        ("(?i)V(?-i:x)", "vX", False),
        ("(?P<major>\\d+)\\.(?<minor>\\d+)", "1.2", True),
        ("v{2}", "vv", True),
        ("v{2,}", "vvv", True),
        ("v{1,2}?", "vv", True),
        ("\\d+\\z", "12", True),
        # Full match, as every tag filter has always been.
        ("v1", "v1.2", False),
        ("v1.*", "v1.2", True),
        # RE2's \d, \w, \s and \b are ASCII.
        ("\\w+", "é", False),
        ("\\d", "٣", False),
        ("\\w+", "a_1", True),
    ],
)
def test_valid_patterns_match_the_whole_tag(pattern: str, tag: str, matches: bool) -> None:
    assert compile_tag_regex(pattern).fullmatch(tag) is matches


def test_text_re2_cannot_hold_matches_nothing() -> None:
    assert compile_tag_regex(".*").fullmatch("\ud800") is False


def test_compiled_patterns_compare_by_text() -> None:
    first, second = compile_tag_regexes(["v\\d+", "v\\d+"])
    assert first == second == TagRegex("v\\d+", None)
    assert hash(first) == hash(second)
    assert "v\\\\d+" in repr(first)


def test_pattern_count_is_capped() -> None:
    assert len(compile_tag_regexes(["v1"] * MAX_PATTERNS)) == MAX_PATTERNS
    with pytest.raises(TagRegexError, match=f"at most {MAX_PATTERNS}"):
        compile_tag_regexes(["v1"] * (MAX_PATTERNS + 1))


def test_rejected_patterns_print_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    # RE2 logs every parse error on stderr unless told not to; ours is the one message.
    for pattern in ("(", "\\e", "a**"):
        with pytest.raises(TagRegexError):
            compile_tag_regex(pattern)
    assert capfd.readouterr() == ("", "")


_TIMED = """
import json, sys, time
from mirrorbot.config.regex import compile_tag_regex
results = []
for pattern in json.loads(sys.argv[1]):
    compiled = compile_tag_regex(pattern)
    for length in (128, 100_000):
        start = time.perf_counter()
        matched = compiled.fullmatch("a" * length)
        results.append((pattern, length, matched, time.perf_counter() - start))
print(json.dumps(results))
"""


@pytest.mark.hostile("tag regexes")
def test_backtracking_shapes_match_in_linear_time() -> None:
    # Each of these takes a backtracking engine exponential time on a near-miss
    # ("aaa…" without the final character); RE2 answers at once.
    patterns = [REDOS, "(a+)+b", "(a*)*b", "(a|aa)+b", "(a|a)*b", "(\\w+\\s?)*!", "(.*a){20}!"]
    # In a subprocess with a timeout: a backtracking engine must fail this test, never hang it.
    result = subprocess.run(
        [sys.executable, "-c", _TIMED, json.dumps(patterns)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    results = json.loads(result.stdout)
    assert len(results) == 2 * len(patterns)
    assert [matched for _, _, matched, _ in results] == [False] * len(results)
    slow = [(pattern, length, seconds) for pattern, length, _, seconds in results if seconds >= 1]
    assert slow == []
