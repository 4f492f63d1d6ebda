"""The JSON Schema of ``mirrorbot.yaml`` and ``python -m mirrorbot.config`` (schema or check a file).

The checked-in ``mirrorbot.schema.json`` is this output
(``python -m mirrorbot.config --schema > mirrorbot.schema.json``); a test
keeps them byte for byte equal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from mirrorbot.config import loader
from mirrorbot.config.document import Config
from mirrorbot.config.loader import load_config
from mirrorbot.errors import ConfigError

__all__ = ["SCHEMA_URI", "config_json_schema", "main"]

SCHEMA_URI: Final = "https://json-schema.org/draft/2020-12/schema"


def config_json_schema() -> dict[str, object]:
    """JSON Schema of ``mirrorbot.yaml`` (for editors and the checked-in schema file)."""
    schema: dict[str, object] = {"$schema": SCHEMA_URI}
    schema.update(Config.model_json_schema())
    schema["title"] = "mirrorbot.yaml"
    schema["description"] = (
        "Configuration of mirrorbot: upstream namespaces mirrored into one target namespace. "
        "Tag filters are RE2 regexes (Go's syntax) matched against the whole tag."
    )
    return schema


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mirrorbot.config --schema`` prints the JSON Schema; ``FILE`` validates one."""
    import argparse  # here: every command loads this package, only this one parses with it

    parser = argparse.ArgumentParser(prog="python -m mirrorbot.config", description=loader.__doc__)
    parser.add_argument("--schema", action="store_true", help="print the JSON Schema")
    parser.add_argument("file", nargs="?", type=Path, help="config file to validate")
    args = parser.parse_args(argv)
    if args.schema:
        sys.stdout.write(json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n")
        return 0
    if args.file is None:
        parser.error("give --schema or a config file")
    try:
        load_config(args.file)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    sys.stdout.write(f"{args.file}: ok\n")
    return 0
