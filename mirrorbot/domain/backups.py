"""Keep a moved mutable tag's previous image in the mirror under a templated tag.

``backup: "{tag}-{date}-{short}"``: before sync overwrites ``latest`` with a
new digest, the mirror's old manifest is fetched by digest and put again,
byte for byte, under the rendered tag (server-side: no blob moves). ``{date}``
is the ``YYYYMMDD`` of the old record's ``synced`` time — when that image was
mirrored — so that the same move always renders the same tag (a retry or a
re-run makes no second backup). ``{short}`` is the first 12 hex digits of the
old digest. A backup that cannot be made fails the tag's update: the old image
is never overwritten without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mirrorbot.errors import BackupError, BackupTemplateError, InvalidReferenceError, MirrorbotError
from mirrorbot.reference import validate_tag

if TYPE_CHECKING:
    from mirrorbot.engine.registry.client import RegistryClient
    from mirrorbot.state.store import TagRecord

__all__ = [
    "BACKUP_FIELDS",
    "Backup",
    "check_template",
    "make_backup",
    "render",
]

BACKUP_FIELDS = ("tag", "date", "short")
_FIELD_RE = re.compile(r"\{([^{}]*)\}")
_SAMPLE = {"tag": "latest", "date": "20261130", "short": "abcdef123456"}


def _render(template: str, values: dict[str, str]) -> str:
    def field(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise BackupTemplateError(
                f"unknown placeholder {{{name}}} (known: "
                + ", ".join(f"{{{f}}}" for f in BACKUP_FIELDS)
                + ")"
            )
        return values[name]

    rendered = _FIELD_RE.sub(field, template)
    if "{" in _FIELD_RE.sub("", template) or "}" in _FIELD_RE.sub("", template):
        raise BackupTemplateError("unbalanced { or } (placeholders are {tag}, {date}, {short})")
    return rendered


def check_template(template: str) -> str:
    """Known placeholders only, and a valid tag of at most 128 characters for ``latest``."""
    rendered = _render(template, _SAMPLE)
    if "{short}" not in template and "{date}" not in template:
        # Without them the next move's backup would overwrite this one.
        raise BackupTemplateError("needs {short} or {date}, or backups overwrite each other")
    try:
        validate_tag(rendered)
    except InvalidReferenceError:
        raise BackupTemplateError(
            f"renders {rendered[:60]!r} for latest, not a tag "
            "([A-Za-z0-9_.-], at most 128 characters, not starting with . or -)"
        ) from None
    return template


def render(template: str, tag: str, record: TagRecord) -> str:
    """The backup tag for ``tag`` whose mirror record is ``record``; BackupError if invalid."""
    date = record.synced[:10].replace("-", "") if record.synced else ""
    values = {"tag": tag, "date": date, "short": record.digest.partition(":")[2][:12]}
    rendered = _render(template, values)
    try:
        return validate_tag(rendered)
    except InvalidReferenceError as exc:
        raise BackupError(f"backup tag for {tag}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Backup:
    tag: str  # the rendered backup tag
    record: TagRecord  # the old record: what the backup tag holds


async def make_backup(
    client: RegistryClient, repository: str, template: str, tag: str, old: TagRecord
) -> Backup:
    """Tag the mirror's ``old`` image as the rendered template: GET by digest, PUT the bytes."""
    backup_tag = render(template, tag, old)
    where = f"{repository}:{tag}"
    try:
        manifest = await client.manifest_get(repository, old.digest)
        await client.manifest_put(repository, backup_tag, manifest)
    except MirrorbotError as exc:
        raise BackupError(
            f"{where}: not updated: backup of {old.digest[:19]} as {backup_tag} failed: {exc}"
        ) from exc
    return Backup(backup_tag, replace(old, gone=None, backup_of=tag))
