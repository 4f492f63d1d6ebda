"""The one way mirrorbot reads (and edits) YAML it did not write.

Every YAML file mirrorbot reads is somebody else's text: ``mirrorbot.yaml``,
image-syncer's ``images.yaml``/``auth.yaml``, the config the request flow
edits. They all go through :func:`load_yaml`, which scans the event stream
before building anything:

- **aliases (``*name``) are refused**: a config never needs them, and refusing
  them makes "billion laughs" bombs impossible;
- more than :data:`MAX_NODES` nodes, or nesting deeper than :data:`MAX_DEPTH`
  (the tree builder recurses per level), is refused;
- more than ``max_bytes`` of text is refused before parsing;
- duplicate keys are an error naming the key (never the values: secrets);
- syntax errors give the reason and the 1-based line, never the offending
  line's text (it may hold a secret).

The result is ruamel.yaml's round-trip tree, which keeps line numbers:
:func:`line_of` finds the line of a key path, :func:`to_plain` turns the tree
into plain data (mappings → dicts, sequences → tuples).

:func:`append_to_sequence` is the round-trip edit the request flow needs: one
entry appended to a top-level list, the rest of the file byte for byte as it
was. The indentation is read from the text (ruamel does not record it), and
the result is *checked* to be the old text with lines inserted at one place;
a file that cannot be edited that way is refused, never reformatted.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    ScalarEvent,
)
from ruamel.yaml.scalarbool import ScalarBoolean

from mirrorbot.errors import ConfigError, Location

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_YAML_BYTES",
    "append_to_sequence",
    "guess_indent",
    "line_of",
    "load_yaml",
    "to_plain",
    "yaml_kind",
]

MAX_YAML_BYTES: Final = 1024 * 1024
MAX_NODES: Final = 100_000
MAX_DEPTH: Final = 64


def load_yaml(
    text: str,
    *,
    path: str = "",
    max_nodes: int | None = None,
    max_bytes: int = MAX_YAML_BYTES,
) -> Any:
    """The round-trip tree of one YAML document (``None`` when it is empty).

    ``max_nodes`` defaults to :data:`MAX_NODES`, read at call time. Every
    problem is a :class:`ConfigError` naming ``path`` and, where known, the line.
    """
    return _guarded_load(_reader(), text, path, max_nodes, max_bytes)


def _reader() -> YAML:
    return YAML(typ="rt")


def _guarded_load(yaml: YAML, text: str, path: str, max_nodes: int | None, max_bytes: int) -> Any:
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ConfigError(f"larger than {max_bytes} bytes", path=path)
    limit = MAX_NODES if max_nodes is None else max_nodes
    try:
        _scan(yaml, text, path, limit)
        return yaml.load(text)
    except DuplicateKeyError as exc:
        # Its message quotes both values, which may be secrets: name the key only.
        found = re.search(r'duplicate key "(.*?)" with value', str(exc.problem or ""))
        what = f"duplicate key {found.group(1)!r}" if found else "duplicate key"
        raise ConfigError(what, path=path, line=_mark_line(exc)) from None
    except MarkedYAMLError as exc:
        # problem/context only: str(exc) would quote the offending line (maybe a secret).
        reason = "; ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ConfigError(
            f"not valid YAML: {reason or 'syntax error'}", path=path, line=_mark_line(exc)
        ) from None
    except YAMLError as exc:
        raise ConfigError(f"not valid YAML: {type(exc).__name__}", path=path) from None


def _scan(yaml: YAML, text: str, path: str, max_nodes: int) -> None:
    """Refuse aliases, too many nodes and too deep nesting before any tree is built."""
    nodes = depth = 0
    for event in yaml.parse(text):
        if isinstance(event, AliasEvent):
            raise ConfigError(
                f"YAML aliases (*{event.anchor}) are not supported: write the value out",
                path=path,
                line=event.start_mark.line + 1,
            )
        if isinstance(event, CollectionEndEvent):
            depth -= 1
            continue
        if isinstance(event, ScalarEvent | CollectionStartEvent):
            nodes += 1
            if nodes > max_nodes:
                raise ConfigError(
                    f"more than {max_nodes} YAML nodes: not a plausible config",
                    path=path,
                    line=event.start_mark.line + 1,
                )
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(
                    f"YAML nested more than {MAX_DEPTH} levels deep: not a plausible config",
                    path=path,
                    line=event.start_mark.line + 1,
                )


def _mark_line(exc: MarkedYAMLError) -> int | None:
    mark = exc.problem_mark or exc.context_mark
    return None if mark is None else mark.line + 1


def yaml_kind(value: object) -> str:
    """What a YAML value is, in the words of an error message (``list``, ``string``...)."""
    if isinstance(value, CommentedSeq | list | tuple):
        return "list"
    if isinstance(value, CommentedMap | dict):
        return "mapping"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def line_of(root: object, location: Location) -> int | None:
    """1-based line of the deepest part of ``location`` present in the YAML tree."""
    node = root
    line = root.lc.line + 1 if isinstance(root, CommentedMap | CommentedSeq) else None
    for part in location:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def to_plain(node: object, location: Location = ()) -> Any:
    """The tree as plain Python: dicts, tuples, str, bool, int, float, None (dates stay).

    A key that is not a string, or a value of a custom tag or binary, is a
    :class:`ConfigError` at its location (the caller adds the path).
    """
    if isinstance(node, CommentedMap):
        result: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise ConfigError(
                    f"key {key!r} is not a string (quote it)",
                    location=(*location, str(key)),
                    line=node.lc.key(key)[0] + 1,
                )
            result[str(key)] = to_plain(value, (*location, key))
        return result
    if isinstance(node, CommentedSeq | list):
        return tuple(to_plain(value, (*location, index)) for index, value in enumerate(node))
    if node is None or type(node) in (str, bool, int, float):
        return node
    if isinstance(node, str):  # ruamel's ScalarString subclasses
        return str(node)
    if isinstance(node, ScalarBoolean | bool):  # ScalarBoolean subclasses int: test it first
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, date):
        return node  # strict validation rejects it where text is expected
    raise ConfigError(
        "unsupported YAML value (custom tags and binary data are not allowed)",
        location=location,
    )


# --------------------------------------------------------------------------- round-trip edit


def append_to_sequence(
    text: str,
    key: str,
    entry: Mapping[str, str | Sequence[str]],
    *,
    path: str = "",
) -> str:
    """``text`` with ``entry`` appended to the top-level list ``key``, the rest untouched.

    Values that are sequences become block lists. A file whose dump would
    change anything but the inserted lines (flow-style lists, indentation the
    text does not show consistently) is refused with a :class:`ConfigError`
    saying to add the entry by hand.
    """
    mapping, sequence, offset = guess_indent(text)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 1_000_000  # never re-wrap long lines
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    root = _guarded_load(yaml, text, path, None, MAX_YAML_BYTES)
    if not isinstance(root, CommentedMap):
        raise ConfigError("the top level is not a mapping of keys", path=path, line=1)
    if _dump(yaml, root) != text:
        raise ConfigError(
            f"cannot add to {key} without reformatting this file (flow-style lists or "
            "unusual indentation): add it by hand",
            path=path,
        )
    items = root.get(key)
    if not isinstance(items, CommentedSeq):
        raise ConfigError(f"{key} is not a list", path=path, location=(key,))
    new_entry = CommentedMap()
    for name, value in entry.items():
        new_entry[name] = value if isinstance(value, str) else CommentedSeq(value)
    items.append(new_entry)
    new = _dump(yaml, root)
    if not _only_inserted(text, new):
        raise ConfigError(
            f"adding to {key} would change other lines of this file; add it by hand", path=path
        )
    return new


_COMMENT: Final = re.compile(r"\s+#.*$")


def guess_indent(text: str) -> tuple[int, int, int]:
    """``(mapping, sequence, offset)`` for ruamel's ``YAML.indent``, read from the block layout.

    ``mapping``: how far a nested mapping is indented below its key (2 when
    the file has none); ``offset``: how far a ``-`` is indented below its
    key; ``sequence``: how far the item's content is (``offset`` + 2 unless
    the text shows otherwise). The first example of each counts; the caller
    checks that the guess reproduces the file.
    """
    mapping: int | None = None
    sequence: int | None = None
    offset: int | None = None
    opener: int | None = None  # column of the key whose block value starts on the next line
    for raw in text.splitlines():
        line = _COMMENT.sub("", raw.rstrip()) if "#" in raw else raw.rstrip()
        content = line.lstrip(" ")
        if not content or content.startswith("#"):
            continue
        column = len(line) - len(content)
        dash = content.startswith("- ")
        if opener is not None and column > opener:
            if dash and offset is None:
                body = content[1:]
                offset = column - opener
                sequence = offset + 1 + len(body) - len(body.lstrip(" "))
            elif not dash and mapping is None:
                mapping = column - opener
        key_column = column
        while content.startswith("- "):  # "- key:" opens a block at the key's column
            body = content[1:]
            key_column += 1 + len(body) - len(body.lstrip(" "))
            content = body.lstrip(" ")
        opener = (
            key_column if content.endswith(":") and not content.startswith(("'", '"')) else None
        )
        if mapping is not None and offset is not None:
            break
    offset = 0 if offset is None else offset
    sequence = offset + 2 if sequence is None else sequence
    return (mapping or 2, sequence, offset)


def _dump(yaml: YAML, root: object) -> str:
    stream = io.StringIO()
    yaml.dump(root, stream)
    return stream.getvalue()


def _only_inserted(old: str, new: str) -> bool:
    """``new`` is ``old`` with lines inserted at one place, nothing else changed."""
    before, after = old.splitlines(keepends=True), new.splitlines(keepends=True)
    head = 0
    while head < len(before) and head < len(after) and before[head] == after[head]:
        head += 1
    tail = 0
    while (
        tail < len(before) - head
        and tail < len(after) - head
        and before[len(before) - 1 - tail] == after[len(after) - 1 - tail]
    ):
        tail += 1
    return head + tail == len(before) and len(after) > len(before)
