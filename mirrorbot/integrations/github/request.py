"""``mirrorbot request``: a namespace request from a GitHub issue form, checked, then added.

The issue body is untrusted text. It is read as bytes (at most
:data:`MAX_BODY_BYTES`, UTF-8, no NUL), cut into the sections GitHub renders
for an issue form (``### <Label>`` followed by the value, ``_No response_``
for an empty optional field), and the namespace is normalised and validated
with the reference grammar before anything else looks at it. A request is
rejected when it is malformed, names a registry outside the allowlist
(``requests.allowed_registries``), is already mirrored, would land on mirror
names that other upstream repositories already use, or cannot be listed
upstream (nothing there, or the listing fails).

An accepted namespace is appended to ``namespaces:`` of ``mirrorbot.yaml``
with ruamel.yaml's round-trip mode: the rest of the file stays byte for byte
as it was (this is checked, not hoped for), and the new file is loaded with
:func:`mirrorbot.config.load_config` before it replaces the old one.

The Markdown reply never shows raw input except inside code spans or fenced
blocks that it cannot break out of (backticks are neutralised, control
characters replaced, length bounded), so an expression such as
``${{ github.token }}`` or a ``@mention`` in the issue is shown inert.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx
import jinja2
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from mirrorbot.config import Config, ResolvedNamespace, load_config, parse_config, split_source
from mirrorbot.config.credentials import Need, resolve_credentials
from mirrorbot.domain.naming import find_collisions
from mirrorbot.engine.registry.credentials import CredentialStore
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.engine.sources import Listing, make_source
from mirrorbot.errors import (
    ConfigError,
    EmptyListingError,
    InvalidReferenceError,
    MirrorbotError,
    RequestRejectedError,
)
from mirrorbot.logs import redact
from mirrorbot.reference import normalize_registry, validate_repository
from mirrorbot.state.gitrepo import TOKEN_VARIABLES, looks_like_url
from mirrorbot.state.store import StateStore

__all__ = [
    "FORM_LABELS",
    "MAX_BODY_BYTES",
    "RequestForm",
    "RequestOutcome",
    "code_block",
    "code_span",
    "github_output_lines",
    "handle_request",
    "normalise_namespace",
    "parse_form",
    "read_issue_body",
]

MAX_BODY_BYTES: Final = 64 * 1024
MAX_NAMESPACE_CHARS: Final = 255
MAX_IMAGES: Final = 100
MAX_INCLUDE: Final = 20
QUOTE_LIMIT: Final = 100
DETAIL_LIMIT: Final = 1000
NO_RESPONSE: Final = "_No response_"

#: Field → the label of the issue form (``.github/ISSUE_TEMPLATE/mirror-request.yml``).
#: Labels are matched case-insensitively, with runs of spaces folded.
FORM_LABELS: Final = {
    "namespace": "Upstream namespace",
    "images": "Images",
    "include": "Include tag regexes",
    "note": "Note",
}
_BY_LABEL: Final = {label.casefold(): key for key, label in FORM_LABELS.items()}
_HEADING = re.compile(r"###[ \t]+(?P<label>.*?)[ \t#]*")
_LISTING_ATTEMPTS: Final = 3


@dataclass(frozen=True, slots=True)
class RequestForm:
    """The fields of one issue-form body, as the requester typed them (stripped)."""

    namespace: str
    images: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """What happened: the reply to post and what the workflow needs to know."""

    accepted: bool
    reply: str
    namespace: str = ""  # normalised; only set once it passed the grammar
    open_pull_request: bool = False
    dry_run: bool = False


@dataclass(slots=True)
class _Found:
    """What the upstream listing showed, for the reply."""

    repositories: list[str] = field(default_factory=list)
    tags: int = 0
    selected: int = 0


# --------------------------------------------------------------------------- quoting


def _printable(text: str) -> str:
    """Control and format characters (newlines, NUL, bidi overrides) become U+FFFD."""
    return "".join(
        "\N{REPLACEMENT CHARACTER}" if unicodedata.category(ch) in ("Cc", "Cf") else ch
        for ch in text
    )


def code_span(text: str, limit: int = QUOTE_LIMIT) -> str:
    """Untrusted text as one inert Markdown code span: bounded, one line, no backticks.

    Backticks become U+02CB so the span cannot be closed early; inside a code
    span GitHub renders no HTML, links, mentions or emphasis.
    """
    shown = _printable(text).replace("`", "\N{MODIFIER LETTER GRAVE ACCENT}")
    if len(shown) > limit:
        shown = shown[:limit] + "…"
    if not shown.strip():
        return "(empty)"
    return f"`{shown}`"


def code_block(text: str, limit: int = DETAIL_LIMIT) -> str:
    """Untrusted multi-line text as a fenced block that the text cannot close."""
    lines = [_printable(line) for line in text.splitlines()] or [""]
    shown = "\n".join(lines)
    if len(shown) > limit:
        shown = shown[:limit] + "…"
    longest = max((len(run) for run in re.findall(r"`+", shown)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{shown}\n{fence}"


# --------------------------------------------------------------------------- the form


def read_issue_body(path: Path) -> str:
    """The issue body as text; oversized, non-UTF-8 or NUL-bearing bodies are rejected.

    ``OSError`` (a missing file) is left to the caller: that is a usage error.
    """
    with path.open("rb") as handle:
        raw = handle.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise RequestRejectedError(
            f"the issue body is larger than {MAX_BODY_BYTES // 1024} KiB; "
            "a request needs only the fields of the form"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestRejectedError(f"the issue body is not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise RequestRejectedError("the issue body contains NUL characters")
    return text


def _value(lines: Sequence[str]) -> str:
    value = "\n".join(lines).strip()
    return "" if value == NO_RESPONSE else value


def _items(value: str, *, commas: bool) -> tuple[str, ...]:
    """One item per line (and per comma when ``commas``); list bullets dropped."""
    parts = re.split(r"[\n,]" if commas else r"\n", value)
    found: list[str] = []
    for part in parts:
        item = part.strip()
        if item[:2] in ("- ", "* "):
            item = item[2:].strip()
        if item and item not in found:
            found.append(item)
    return tuple(found)


def parse_form(body: str) -> RequestForm:
    """The form's fields from a body as GitHub renders an issue form.

    Sections are ``### <Label>`` lines; text before the first one and sections
    with labels the form does not have are ignored. A label given twice is
    rejected (a note could otherwise smuggle in a second namespace).
    """
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.split("\n"):
        heading = _HEADING.fullmatch(line)
        if heading is not None:
            label = " ".join(heading.group("label").split()).casefold()
            key = _BY_LABEL.get(label)
            if key is None:
                current = None
                continue
            if key in sections:
                raise RequestRejectedError(
                    f"the form has the section '{FORM_LABELS[key]}' twice; "
                    "keep one (headings inside the note count too)"
                )
            current = sections[key] = []
        elif current is not None:
            current.append(line)
    namespace = _value(sections.get("namespace", []))
    if not namespace:
        raise RequestRejectedError(
            f"the '{FORM_LABELS['namespace']}' field is missing or empty; "
            "open the request from the mirror request issue form"
        )
    return RequestForm(
        namespace=namespace,
        images=_items(_value(sections.get("images", [])), commas=True),
        include=_items(_value(sections.get("include", [])), commas=False),
        note=_value(sections.get("note", [])),
    )


def _looks_like_host(component: str) -> bool:
    return "." in component or ":" in component or component.lower() == "localhost"


def normalise_namespace(raw: str) -> tuple[str, str]:
    """``https://Quay.IO/coreos/`` → ``("quay.io", "coreos")``; anything odd is rejected.

    Leading ``http(s)://`` and trailing ``/`` are dropped and the host is
    lowercased; the rest must match the reference grammar as it is (so
    ``..``, spaces, ``$(…)``, ``${{ … }}`` and friends fail here).
    """
    value = raw.strip()
    if len(value) > MAX_NAMESPACE_CHARS:
        raise RequestRejectedError(
            f"the namespace is longer than {MAX_NAMESPACE_CHARS} characters", quoted=raw
        )
    if any(ch.isspace() for ch in value):
        raise RequestRejectedError(
            "the namespace contains spaces or line breaks; give one registry/path such as "
            "`quay.io/coreos`",
            quoted=raw,
        )
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise RequestRejectedError(
            "the namespace contains control characters (a namespace is one line of plain text)",
            quoted=raw,
        )
    for scheme in ("https://", "http://"):
        if value.lower().startswith(scheme):
            value = value[len(scheme) :]
            break
    value = value.rstrip("/")
    first, sep, rest = value.partition("/")
    if _looks_like_host(first):
        value = first.lower() + sep + rest
    try:
        return split_source(value)
    except ValueError as exc:
        raise RequestRejectedError(
            "the namespace is not a valid `registry/path` (path components are lowercase "
            "letters and digits separated by `.`, `_`, `__` or `-`)",
            detail=str(exc),
            quoted=raw,
        ) from None


def _check_images(images: Sequence[str], registry: str, path: str) -> tuple[str, ...]:
    """Repository paths below the namespace; a full ``registry/path/repo`` is shortened."""
    if len(images) > MAX_IMAGES:
        raise RequestRejectedError(f"more than {MAX_IMAGES} images; ask for the whole namespace")
    prefix = "/".join(part for part in (registry, path) if part) + "/"
    checked: list[str] = []
    for image in images:
        name = image.removeprefix(prefix)
        try:
            validate_repository(name)
        except InvalidReferenceError as exc:
            raise RequestRejectedError(
                f"an image is not a valid repository name ({exc.reason})", quoted=image
            ) from None
        if name not in checked:
            checked.append(name)
    return tuple(checked)


# --------------------------------------------------------------------------- the config


def _load(config_path: Path) -> Config:
    return load_config(config_path)


def _credentials(config: Config, environ: Mapping[str, str], host: str) -> CredentialStore:
    """The listed registry's configured credentials when its variables are set, else none.

    The request workflow gets no registry secrets and only reads upstream: an
    unset variable means anonymous listing (one warning), never an unusable config.
    """
    resolved = resolve_credentials(config, environ, hosts=[host], need=Need.OPTIONAL)
    resolved.log_warnings()
    return CredentialStore(resolved.credentials)


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


def _edited(
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


def _replace_config(config_path: Path, text: str) -> Config:
    """Write ``text`` beside the config, prove it loads, then move it into place."""
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{config_path.name}.", suffix=".tmp", dir=config_path.parent
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        shutil.copymode(config_path, temporary)
        config = _load(Path(temporary))
        os.replace(temporary, config_path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return config


# --------------------------------------------------------------------------- checks


def _check_new(config: Config, registry: str, path: str, allowed: Sequence[str]) -> None:
    source = "/".join(part for part in (registry, path) if part)
    if registry not in allowed:
        raise RequestRejectedError(
            f"the registry `{registry}` is not on this mirror's allowlist "
            f"({', '.join(f'`{host}`' for host in allowed) or 'empty'}); "
            "a maintainer can add it under requests.allowed_registries"
        )
    for existing in config.namespace_plans():
        if existing.source == source:
            raise RequestRejectedError(f"`{source}` is already mirrored")
        covers = existing.strategy != "images" and (
            not existing.path or path.startswith(existing.path + "/")
        )
        if existing.registry == registry and covers:
            raise RequestRejectedError(
                f"`{source}` is already mirrored as part of `{existing.source}`"
            )


def _existing_claims(config: Config, config_path: Path) -> list[tuple[str, str]]:
    """(upstream, mirror) pairs the mirror already has: static image lists and state files."""
    claims: list[tuple[str, str]] = []
    for ns in config.namespace_plans():
        for repo in ns.images:
            claims.append((ns.upstream(repo), f"{ns.mirror_registry}/{ns.mirror_repository(repo)}"))
    if not looks_like_url(config.state.repo):
        repository = config_path.resolve().parent / config.state.repo
        for state in StateStore(repository / config.state.path, boundary=repository).all():
            for image, entry in state.images.items():
                claims.append((f"{state.source}/{image}", entry.target))
    return claims


def _pool(config: Config, credentials: CredentialStore) -> RegistryPool:
    return RegistryPool.from_settings(
        credentials,
        config.network,
        insecure=[host for host, settings in config.registries.items() if settings.insecure],
        attempts=min(config.network.retries, _LISTING_ATTEMPTS),
    )


async def _list(
    config: Config, namespace: ResolvedNamespace, credentials: CredentialStore
) -> Listing:
    async with _pool(config, credentials) as pool:
        source = make_source(
            namespace.strategy,
            registry=namespace.registry,
            path=namespace.path,
            client=pool.reader(namespace.registry),
            images=namespace.images,
            hub_api=namespace.hub_api,
            quay_api=namespace.quay_api,
        )
        return await source.list()


def _check_listing(namespace: ResolvedNamespace, listing: Listing) -> _Found:
    skipped = "\n".join(listing.skipped)
    found = _Found()
    listed = {repo.path for repo in listing.repositories if repo.tags}
    missing = [image for image in namespace.images if image not in listed]
    if missing:
        raise RequestRejectedError(
            f"{len(missing)} of the requested images have no tags upstream: "
            + ", ".join(f"`{image}`" for image in missing[:10]),
            detail=skipped,
        )
    for repo in listing.repositories:
        if not repo.tags:
            continue
        found.repositories.append(repo.path)
        found.tags += len(repo.tags)
        found.selected += sum(1 for tag in repo.tags if namespace.tag_selected(tag.name))
    if not found.selected:
        raise RequestRejectedError(
            f"none of the {found.tags} tags upstream matches the include regexes"
        )
    return found


def _check_names(
    namespace: ResolvedNamespace, repositories: Sequence[str], existing: list[tuple[str, str]]
) -> list[str]:
    """The mirror repository of each listed repository; names already taken are rejected."""
    new: list[tuple[str, str]] = []
    for repo in repositories:
        try:
            target = f"{namespace.mirror_registry}/{namespace.mirror_repository(repo)}"
        except ConfigError as exc:
            raise RequestRejectedError(
                "an upstream repository cannot be given a valid mirror name",
                detail=exc.message,
            ) from None
        new.append((namespace.upstream(repo), target))
    fresh = {upstream for upstream, _ in new}
    clashes = [c for c in find_collisions([*existing, *new]) if c[1] in fresh and c[0] not in fresh]
    if clashes:
        raise RequestRejectedError(
            (
                f"{len(clashes)} repositories would land on mirror names that are already taken: "
                if len(clashes) > 1
                else "a repository would land on a mirror name that is already taken: "
            )
            + "; ".join(
                f"`{new_}` → `{mirror}` (taken by `{old}`)" for old, new_, mirror in clashes[:5]
            )
            + "; a maintainer can give this namespace its own name template"
        )
    return [target for _, target in new]


# --------------------------------------------------------------------------- the reply


_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("mirrorbot", "templates"),
    autoescape=False,  # noqa: S701 - Markdown, not HTML; untrusted text only through |code and |block
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)
_ENVIRONMENT.filters["code"] = code_span
_ENVIRONMENT.filters["block"] = code_block


def _secrets(environ: Mapping[str, str]) -> list[str]:
    # Registry credentials are registered for redaction when they are expanded.
    return [environ[name] for name in TOKEN_VARIABLES if environ.get(name)]


def _render(secrets: Iterable[str], **values: object) -> str:
    return redact(_ENVIRONMENT.get_template("request_reply.md.j2").render(**values), secrets)


# --------------------------------------------------------------------------- the whole


def handle_request(
    issue_file: Path,
    config_path: Path,
    *,
    allow: Sequence[str] = (),
    dry_run: bool = False,
    environ: Mapping[str, str] | None = None,
) -> RequestOutcome:
    """Check one request and, when it passes, add it to the config (unless ``dry_run``).

    Raises :class:`ConfigError` when the config itself is unusable and
    ``OSError`` when the issue file cannot be read: those are the
    maintainer's to fix (exit 2), not the requester's.
    """
    env = dict(os.environ if environ is None else environ)
    config = _load(config_path)
    settings = config.requests
    allowed = list(dict.fromkeys([*settings.allowed_registries, *_hosts(allow)]))
    secrets = _secrets(env)
    common = {"dry_run": dry_run, "open_pull_request": settings.open_pull_request}
    source = ""
    try:
        form = parse_form(read_issue_body(issue_file))
        registry, path = normalise_namespace(form.namespace)
        source = "/".join(part for part in (registry, path) if part)
        images = _check_images(form.images, registry, path)
        if not path and not images:
            raise RequestRejectedError(
                f"`{registry}` is a whole registry: name a namespace below it "
                f"(e.g. `{registry}/project`) or list the images to mirror"
            )
        if len(form.include) > MAX_INCLUDE:
            raise RequestRejectedError(f"more than {MAX_INCLUDE} include regexes")
        _check_new(config, registry, path, allowed)
        new_text, new_config = _edited(config, config_path, source, images, form.include)
        namespace = new_config.namespace_plans()[-1]
        credentials = _credentials(new_config, env, namespace.registry)
        try:
            listing = asyncio.run(_list(new_config, namespace, credentials))
        except EmptyListingError as exc:
            if not namespace.images:
                raise RequestRejectedError(
                    redact(str(exc), secrets), detail=redact("\n".join(exc.skipped), secrets)
                ) from None
            listing = Listing(exc.source, (), exc.skipped)  # says which images are missing
        except (MirrorbotError, httpx.HTTPError, ValueError) as exc:
            raise RequestRejectedError(
                f"`{source}` could not be listed upstream", detail=redact(str(exc), secrets)
            ) from None
        found = _check_listing(namespace, listing)
        mirrors = _check_names(namespace, found.repositories, _existing_claims(config, config_path))
        if not dry_run:
            _replace_config(config_path, new_text)
    except RequestRejectedError as exc:
        reply = _render(
            secrets,
            accepted=False,
            reason=exc.reason,
            detail=exc.detail,
            quoted=exc.quoted,
            namespace=source,
            **common,
        )
        return RequestOutcome(False, reply, source, settings.open_pull_request, dry_run)
    reply = _render(
        secrets,
        accepted=True,
        namespace=source,
        strategy=namespace.strategy,
        images=list(images),
        include=list(form.include),
        repositories=found.repositories,
        tags=found.tags,
        selected=found.selected,
        pairs=list(zip(found.repositories, mirrors, strict=True)),
        config_name=config_path.name,
        **common,
    )
    return RequestOutcome(True, reply, source, settings.open_pull_request, dry_run)


def _hosts(values: Iterable[str]) -> list[str]:
    return [normalize_registry(value.strip().lower()) for value in values if value.strip()]


_SAFE_OUTPUT = re.compile(r"[^A-Za-z0-9._:/-]")


def github_output_lines(outcome: RequestOutcome) -> str:
    """``key=value`` lines for ``$GITHUB_OUTPUT``; values cannot carry newlines or oddities."""
    values = {
        "accepted": "true" if outcome.accepted else "false",
        "namespace": _SAFE_OUTPUT.sub("", outcome.namespace)[:MAX_NAMESPACE_CHARS],
        "open_pull_request": "true" if outcome.open_pull_request else "false",
        "dry_run": "true" if outcome.dry_run else "false",
    }
    return "".join(f"{key}={value}\n" for key, value in values.items())
