"""``mirrorbot.yaml``: loaded once, validated completely, frozen.

Every problem is a :class:`ConfigError` that names the file, the 1-based line
and the key path (``namespaces[1].include[0]``), because the person fixing it
is looking at the YAML, not at a Python traceback.

How a file becomes a :class:`Config`:

1. Files over 1 MiB are refused before parsing.
2. The YAML event stream is scanned first (:mod:`mirrorbot.config.yamlio`):
   **aliases (``*name``) are refused** (a config never needs them, and refusing
   them makes "billion laughs" bombs impossible), and so are documents of more
   than :data:`~mirrorbot.config.yamlio.MAX_NODES` nodes or nested too deeply.
3. ruamel.yaml's round-trip loader builds the tree, keeping line numbers.
4. The tree becomes plain data (sequences → tuples).
5. Pydantic models in strict mode validate it (strict, so ``"yes"`` or ``1`` is
   not silently a boolean); each pydantic error location is mapped back to the
   line through the ruamel tree (:mod:`mirrorbot.config.diagnostics`). Cross-field
   rules (strategies, duplicates, name rendering and collisions) run in the
   :class:`Config` validator (:mod:`mirrorbot.config.document`).
6. String values under ``registries:`` (only there: that is where secrets live)
   may name environment variables: ``${VAR}`` / ``$VAR``, ``$$`` is a literal
   ``$`` and any other ``$`` is an error, checked here. They are **not
   expanded here**: the config keeps the raw text, and
   :func:`mirrorbot.config.credentials.resolve_credentials` expands them when a command
   builds its registry pool, for the registries it talks to, as that command
   needs them (a writer requires them, a reader does without). So structure
   errors always come first, and ``plan``/``find``/``verify`` run without the
   push secrets. No error quotes a value: an unset ``${VAR}`` is named, an
   unset bare ``$VAR`` is not (``pa$sword`` may be a literal password).

Tag filters (``include``, ``exclude``, ``mutable``) are RE2 regexes (Go's
syntax, linear-time matching: :mod:`mirrorbot.config.regex`) with *full-match*
semantics: ``latest`` matches only ``latest``, ``v1.*`` is needed for a prefix.
Patterns longer than 1000 characters, more than 100 per list, and constructs
RE2 lacks (look-arounds, backreferences) are refused. A namespace's ``include``/``exclude``/``platforms``/
``mutable``/``signatures``/``keep`` *replace* the ``defaults`` value, they do not extend it.
``keep: {newest: N, by: semver|uploaded}`` is applied after the filters (:mod:`mirrorbot.domain.keep`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from mirrorbot.config.credentials import Need, resolve_credentials
from mirrorbot.config.diagnostics import located_error
from mirrorbot.config.document import Config
from mirrorbot.config.fields import check_host
from mirrorbot.config.yamlio import line_of, load_yaml, to_plain, yaml_kind
from mirrorbot.engine.registry.credentials import Credential, expand_env
from mirrorbot.errors import ConfigError, CredentialError, Location

__all__ = ["MAX_CONFIG_BYTES", "credentials_from_config", "load_config", "parse_config"]

MAX_CONFIG_BYTES: Final = 1024 * 1024


def credentials_from_config(
    config: Config,
    environ: Mapping[str, str] | None = None,
    *,
    hosts: Iterable[str] | None = None,
) -> dict[str, Credential]:
    """Registry host → credential, for hosts that have any (others fall back to docker config).

    ``${VAR}`` expand from ``environ`` (default ``os.environ``), for ``hosts``
    only (default: every entry); an unset one is a :class:`ConfigError` naming
    it. Readers that can do without use :func:`resolve_credentials` directly.
    """
    return resolve_credentials(config, environ, hosts=hosts, need=Need.REQUIRED).credentials


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; ``${VAR}`` under ``registries:`` stay unexpanded.

    With ``environ``, every variable those entries name must also be set in it
    (the check a writer such as ``sync`` makes for the registries it uses);
    without it, only the structure is checked.
    """
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"file is {size} bytes; a config may be at most {MAX_CONFIG_BYTES} (1 MiB)",
                path=name,
            )
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the config: {exc.strerror or exc}", path=name) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"file is larger than {MAX_CONFIG_BYTES} bytes (1 MiB)", path=name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", path=name) from None
    config = parse_config(text, filename=name, environ=environ)
    config._source_path = path
    return config


def parse_config(
    text: str, *, filename: str = "mirrorbot.yaml", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate config text; errors name ``filename``, the line and the key.

    ``environ``: as for :func:`load_config`.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config is larger than {MAX_CONFIG_BYTES} bytes (1 MiB)", path=filename)
    root = _load_root(text, filename)
    try:
        data = to_plain(root)
        config = Config.model_validate(data)
        config._filename = filename
        config._registry_keys = _registry_keys(data, root)
        _check_variables(config)
        if environ is not None:
            credentials_from_config(config, environ)
        return config
    except ValidationError as exc:
        raise located_error(exc, root, filename) from None
    except ConfigError as exc:
        if not exc.path:
            exc.path = filename
        if exc.line is None:
            exc.line = line_of(root, exc.location)
        raise


def _load_root(text: str, filename: str) -> Any:
    """The guarded YAML tree (:mod:`mirrorbot.config.yamlio`), which must be a mapping."""
    root = load_yaml(text, path=filename, max_bytes=MAX_CONFIG_BYTES)
    if root is None:
        raise ConfigError(
            "the config is empty: expected a mapping with mirror and namespaces",
            path=filename,
            line=1,
        )
    if not isinstance(root, Mapping):
        raise ConfigError(
            f"the top level must be a mapping of keys, not a {yaml_kind(root)}",
            path=filename,
            line=1,
        )
    return root


class _EveryName(Mapping[str, str]):
    """An environment where every variable is set (empty): only ``$`` syntax can fail."""

    def __getitem__(self, key: str) -> str:
        return ""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _registry_keys(data: Any, root: object) -> dict[tuple[str, str], tuple[Location, int | None]]:
    """Where each string under ``registries:`` was written: key path as written, line."""
    found: dict[tuple[str, str], tuple[Location, int | None]] = {}
    registries = data.get("registries") if isinstance(data, dict) else None
    if not isinstance(registries, dict):
        return found
    for written, entry in registries.items():
        if not isinstance(entry, dict):
            continue
        host = check_host(written)  # validated already
        for field, value in entry.items():
            if isinstance(value, str):
                location: Location = ("registries", written, field)
                found[(host, field)] = (location, line_of(root, location))
    return found


def _check_variables(config: Config) -> None:
    """A ``$`` under ``registries:`` must start ``${NAME}``, ``$NAME`` or ``$$``.

    The syntax is structure, checked now; whether the variables are set is
    asked only when a command needs the credentials (:mod:`mirrorbot.config.credentials`).
    """
    every = _EveryName()
    for host, settings in config.registries.items():
        for field in _SECRET_FIELDS:
            value = getattr(settings, field)
            if isinstance(value, str):
                try:
                    expand_env(value, every)
                except CredentialError as exc:
                    raise config.registry_error(host, field, str(exc)) from None


_SECRET_FIELDS: Final = ("username", "password", "identity_token")
