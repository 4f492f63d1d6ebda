"""The fields of a mirror-request issue form, read from untrusted text and normalised.

The issue body is read as bytes (at most :data:`MAX_BODY_BYTES`, UTF-8, no
NUL), cut into the sections GitHub renders for an issue form (``### <Label>``
followed by the value, ``_No response_`` for an empty optional field), and the
namespace and images are checked against the reference grammar before anything
else looks at them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from mirrorbot.config import split_source
from mirrorbot.errors import InvalidReferenceError, RequestRejectedError
from mirrorbot.reference import looks_like_host, upstream_name, validate_repository

__all__ = [
    "FORM_LABELS",
    "MAX_BODY_BYTES",
    "MAX_IMAGES",
    "MAX_INCLUDE",
    "MAX_NAMESPACE_CHARS",
    "RequestForm",
    "check_images",
    "normalise_namespace",
    "parse_form",
    "read_issue_body",
]

MAX_BODY_BYTES: Final = 64 * 1024
MAX_NAMESPACE_CHARS: Final = 255
MAX_IMAGES: Final = 100
MAX_INCLUDE: Final = 20
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


@dataclass(frozen=True, slots=True)
class RequestForm:
    """The fields of one issue-form body, as the requester typed them (stripped)."""

    namespace: str
    images: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    note: str = ""


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
    if looks_like_host(first.lower()):  # ``LocalHost/x`` too: the host part is case-insensitive
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


def check_images(images: Sequence[str], registry: str, path: str) -> tuple[str, ...]:
    """Repository paths below the namespace; a full ``registry/path/repo`` is shortened."""
    if len(images) > MAX_IMAGES:
        raise RequestRejectedError(f"more than {MAX_IMAGES} images; ask for the whole namespace")
    prefix = upstream_name(registry, path) + "/"
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
