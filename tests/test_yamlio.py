"""mirrorbot.config.yamlio: one guarded loader for every YAML file, and the round-trip append."""

from __future__ import annotations

import time

import pytest

from mirrorbot.config import yamlio
from mirrorbot.config.yamlio import (
    MAX_DEPTH,
    append_to_sequence,
    guess_indent,
    line_of,
    load_yaml,
    to_plain,
)
from mirrorbot.errors import ConfigError

SECRET = "hunter2-Very-Secret-Token"


def test_a_document_loads_with_its_line_numbers() -> None:
    root = load_yaml("a: 1\nb:\n  - x\n  - c: [1, 2]\n", path="f.yaml")
    assert to_plain(root) == {"a": 1, "b": ("x", {"c": (1, 2)})}
    assert line_of(root, ("b", 1, "c")) == 4
    assert line_of(root, ("b", 0)) == 3
    assert line_of(root, ("b", 7, "nope")) == 2  # the deepest part present
    assert load_yaml("# only a comment\n") is None


def test_billion_laughs_is_one_line_naming_the_alias() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_yaml("\n".join(lines) + "\n", path="bomb.yaml")
    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        "bomb.yaml:2: YAML aliases (*a0) are not supported: write the value out"
    )


def test_node_count_is_bounded_and_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "items: [" + ", ".join(str(i) for i in range(40)) + "]\n"
    with pytest.raises(ConfigError, match="more than 10 YAML nodes") as caught:
        load_yaml(text, path="f.yaml", max_nodes=10)
    assert caught.value.line == 1
    monkeypatch.setattr(yamlio, "MAX_NODES", 16)
    with pytest.raises(ConfigError, match="more than 16 YAML nodes"):
        load_yaml(text)


def test_deep_nesting_is_a_config_error_not_a_recursion_error() -> None:
    text = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(ConfigError, match=f"nested more than {MAX_DEPTH} levels") as caught:
        load_yaml(text, path="deep.yaml")
    assert caught.value.line == 1
    inner = MAX_DEPTH - 1  # the top-level mapping is one level
    assert load_yaml("a: " + "[" * inner + "]" * inner + "\n") is not None


def test_size_is_capped_before_parsing() -> None:
    with pytest.raises(ConfigError, match="larger than 100 bytes"):
        load_yaml("[" * 101, path="f.yaml", max_bytes=100)


def test_duplicate_keys_name_the_key_never_the_values() -> None:
    text = f"registries:\n  x.io:\n    password: {SECRET}\n    password: {SECRET}2\n"
    with pytest.raises(ConfigError, match="duplicate key 'password'") as caught:
        load_yaml(text, path="f.yaml")
    assert SECRET not in str(caught.value)
    assert caught.value.line == 4


def test_syntax_errors_do_not_quote_the_line() -> None:
    with pytest.raises(ConfigError, match="not valid YAML") as caught:
        load_yaml(f"password: [{SECRET}\nother: x\n", path="f.yaml")
    assert SECRET not in str(caught.value)
    assert caught.value.path == "f.yaml"


def test_to_plain_refuses_keys_that_are_not_strings_and_custom_tags() -> None:
    with pytest.raises(ConfigError, match="key 1 is not a string") as caught:
        to_plain(load_yaml("a:\n  1: x\n"))
    assert caught.value.line == 2
    assert caught.value.location == ("a", "1")
    with pytest.raises(ConfigError, match="custom tags"):
        to_plain(load_yaml("a: !!binary aGVsbG8=\n"))


CONFIG = """\
# comment at the top
mirror:
  namespace: mirrored   # trailing comment
  name: "{repo}"

namespaces:
  # the first one
  - source: quay.io/a
    images: [pause]     # flow style inside an item stays

requests:
  allowed_registries:
    - gcr.io
"""


def test_append_keeps_every_other_byte() -> None:
    new = append_to_sequence(
        CONFIG, "namespaces", {"source": "gcr.io/b", "images": ["x", "y/z"]}, path="m.yaml"
    )
    # ruamel keeps the blank line with the item before it: the entry goes after it.
    assert new == CONFIG.replace(
        "\nrequests:",
        "\n  - source: gcr.io/b\n    images:\n      - x\n      - y/z\nrequests:",
    )


@pytest.mark.parametrize(
    ("mapping", "offset", "gap"), [(2, 2, 1), (2, 0, 1), (4, 0, 1), (4, 4, 1), (3, 2, 2), (4, 2, 3)]
)
def test_append_reads_the_indentation_from_the_text(mapping: int, offset: int, gap: int) -> None:
    m, o, g = " " * mapping, " " * offset, " " * gap
    text = f"mirror:\n{m}namespace: x\nnamespaces:\n{o}-{g}source: a/b\n{o} {g}images:\n"
    text += f"{o} {g}{o}-{g}p\n"
    assert guess_indent(text) == (mapping, offset + 1 + gap, offset)
    new = append_to_sequence(text, "namespaces", {"source": "c/d", "images": ["q"]})
    assert new == text + f"{o}-{g}source: c/d\n{o} {g}images:\n{o} {g}{o}-{g}q\n"


def test_append_refuses_to_reformat() -> None:
    flow = "mirror: {namespace: m}\nnamespaces: [{source: quay.io/a}]\n"
    with pytest.raises(ConfigError, match="by hand") as caught:
        append_to_sequence(flow, "namespaces", {"source": "gcr.io/b"}, path="m.yaml")
    assert caught.value.path == "m.yaml"
    with pytest.raises(ConfigError, match="namespaces is not a list"):
        append_to_sequence("namespaces: 3\n", "namespaces", {"source": "gcr.io/b"})


def test_append_is_guarded_like_loading() -> None:
    text = "mirror: &m {namespace: m}\nother: *m\nnamespaces:\n  - source: quay.io/a\n"
    with pytest.raises(ConfigError, match="aliases"):
        append_to_sequence(text, "namespaces", {"source": "gcr.io/b"})
