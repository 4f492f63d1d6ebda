"""Adding a requested namespace to ``mirrorbot.yaml`` without touching anything else in it.

The new entry is appended to ``namespaces:`` by
:func:`mirrorbot.config.yamlio.append_to_sequence` (round-trip mode, the rest
of the file byte for byte as it was: checked, not hoped for), and the new
file is loaded with :func:`mirrorbot.config.load_config` before it replaces
the old one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mirrorbot.config import Config, load_config, parse_config
from mirrorbot.config.yamlio import append_to_sequence
from mirrorbot.errors import ConfigError, RequestRejectedError

__all__ = ["edited_config", "replace_config"]


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
        entry: dict[str, str | Sequence[str]] = {"source": source}
        if images:
            entry["images"] = images
        if include:
            entry["include"] = include
        new_text = append_to_sequence(text, "namespaces", entry, path=config_path.name)
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
