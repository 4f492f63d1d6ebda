"""``mirrorbot.yaml``: loaded once, validated completely, frozen; this package's public face.

Every problem is a :class:`~mirrorbot.errors.ConfigError` that names the file,
the 1-based line and the key path (``namespaces[1].include[0]``). Callers
import from here; each module has one job:

- :mod:`.yamlio`: the one guarded YAML loader (aliases, node count, depth,
  size, duplicate keys, located errors) and the round-trip append;
- :mod:`.fields`: what a single value may be (hosts, sources, platforms, ...);
- :mod:`.sections`: the pydantic model of each section (``mirror``, ``defaults``, ...);
- :mod:`.document`: :class:`Config`, the whole file, and the rules spanning keys;
- :mod:`.resolve`: :class:`ResolvedNamespace`, a namespace with the defaults merged in;
- :mod:`.loader`: file → text → tree → :class:`Config` (the steps are described there);
- :mod:`.diagnostics`: pydantic errors → one located :class:`ConfigError`;
- :mod:`.schema`: the JSON Schema and ``python -m mirrorbot.config``;
- :mod:`.regex` (RE2 tag patterns), :mod:`.credentials` (``${VAR}`` expansion),
  :mod:`.imagesyncer` (image-syncer rule files).
"""

from __future__ import annotations

from mirrorbot.config.document import Config
from mirrorbot.config.fields import MAX_REGEX_LENGTH, split_source
from mirrorbot.config.loader import (
    MAX_CONFIG_BYTES,
    credentials_from_config,
    load_config,
    parse_config,
)
from mirrorbot.config.resolve import ResolvedNamespace, guess_strategy
from mirrorbot.config.schema import config_json_schema
from mirrorbot.config.schema import main as main  # python -m mirrorbot.config
from mirrorbot.config.sections import (
    DEFAULT_HUB_API,
    DEFAULT_REQUEST_REGISTRIES,
    STRATEGIES,
    Filters,
    KeepSettings,
    MirrorSettings,
    NamespaceSettings,
    NetworkSettings,
    ReferrersSettings,
    RegistrySettings,
    RequestSettings,
    StateSettings,
)
from mirrorbot.config.yamlio import MAX_NODES

__all__ = [
    "DEFAULT_HUB_API",
    "DEFAULT_REQUEST_REGISTRIES",
    "MAX_CONFIG_BYTES",
    "MAX_NODES",
    "MAX_REGEX_LENGTH",
    "STRATEGIES",
    "Config",
    "Filters",
    "KeepSettings",
    "MirrorSettings",
    "NamespaceSettings",
    "NetworkSettings",
    "ReferrersSettings",
    "RegistrySettings",
    "RequestSettings",
    "ResolvedNamespace",
    "StateSettings",
    "config_json_schema",
    "credentials_from_config",
    "guess_strategy",
    "load_config",
    "parse_config",
    "split_source",
]
