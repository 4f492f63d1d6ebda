"""Adding a requested namespace to ``mirrorbot.yaml`` without touching anything else in it.

The new entry is appended to ``namespaces:`` with ruamel.yaml's round-trip
mode: the rest of the file stays byte for byte as it was (this is checked,
not hoped for), and the new file is loaded with
:func:`mirrorbot.config.load_config` before it replaces the old one.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from mirrorbot.config import Config, load_config, parse_config
from mirrorbot.errors import ConfigError, RequestRejectedError

__all__ = ["edited_config", "replace_config"]


def _round_trip_yaml(text: str) -> tuple[YAML, CommentedMap]:
    """A round-trip loader whose dump gives ``text`` back byte for byte.

    ruamel.yaml does not record indentation, so the usual ones are tried; a
    file none of them reproduces (flow style, odd spacing) is not edited.
    """
    candidates = [
        (mapping, sequence, offset)
        for mapping in (2, 4, 3)
        for offset in (2, 0, 4, 1, 3)
        for sequence in (offset + 2, offset + 4, mapping)
        if sequence >= offset + 2
    ]
    seen: set[tuple[int, int, int]] = set()
    for candidate in candidates:
        if candidate in seen:
            continue
        seen.add(candidate)
        yaml = YAML(typ="rt")
        yaml.preserve_quotes = True
        yaml.width = 1_000_000  # never re-wrap long lines
        mapping, sequence, offset = candidate
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        root = yaml.load(text)
        if _dump(yaml, root) == text:
            assert isinstance(root, CommentedMap)  # load_config accepted the file
            return yaml, root
    raise ConfigError(
        "cannot add a namespace without reformatting this file (flow-style lists or unusual "
        "indentation): add it by hand"
    )


def _dump(yaml: YAML, root: object) -> str:
    stream = io.StringIO()
    yaml.dump(root, stream)
    return stream.getvalue()


def _only_inserted(old: str, new: str) -> bool:
    """``new`` is ``old`` with lines inserted at one place, nothing else changed."""
    before, after = old.splitlines(keepends=True), new.splitlines(keepends=True)
    head = 0
    while head < len(before) and before[head] == after[head]:
        head += 1
    tail = 0
    while (
        tail < len(before) - head
        and tail < len(after) - head
        and before[len(before) - 1 - tail] == after[len(after) - 1 - tail]
    ):
        tail += 1
    return head + tail == len(before) and len(after) > len(before)


def _with_namespace(text: str, source: str, images: Sequence[str], include: Sequence[str]) -> str:
    """``text`` with one more entry at the end of ``namespaces:``, the rest untouched."""
    try:
        yaml, root = _round_trip_yaml(text)
    except YAMLError as exc:  # load_config read it, so this is not expected
        raise ConfigError(f"cannot edit the file: {type(exc).__name__}") from None
    namespaces = root.get("namespaces")
    if not isinstance(namespaces, CommentedSeq):
        raise ConfigError("namespaces is not a list", location=("namespaces",))
    entry = CommentedMap()
    entry["source"] = source
    if images:
        entry["images"] = CommentedSeq(images)
    if include:
        entry["include"] = CommentedSeq(include)
    namespaces.append(entry)
    new = _dump(yaml, root)
    if not _only_inserted(text, new):
        raise ConfigError(
            "adding the namespace would change other lines of this file; add it by hand"
        )
    return new


def edited_config(
    config: Config,
    config_path: Path,
    source: str,
    images: Sequence[str],
    include: Sequence[str],
) -> tuple[str, Config]:
    """The config text with the new namespace, and what it validates to.

    A problem with the new entry (a bad regex, names that do not render) is
    the requester's; anything else about the file is the maintainers'.
    """
    text = config_path.read_text(encoding="utf-8")
    try:
        new_text = _with_namespace(text, source, images, include)
        new_config = parse_config(new_text, filename=config_path.name)
    except ConfigError as exc:
        if exc.location[:2] == ("namespaces", len(config.namespaces)):
            raise RequestRejectedError(
                "the request does not make a valid namespace entry", detail=exc.message
            ) from None
        raise
    return new_text, new_config


def replace_config(config_path: Path, text: str) -> Config:
    """Write ``text`` beside the config, prove it loads, then move it into place."""
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{config_path.name}.", suffix=".tmp", dir=config_path.parent
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        shutil.copymode(config_path, temporary)
        config = load_config(Path(temporary))
        os.replace(temporary, config_path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return config
