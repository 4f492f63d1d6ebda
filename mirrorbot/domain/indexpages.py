"""The browsable index: pure functions from namespace states to ``{relative path: Markdown}``.

``README.md`` (what GitHub shows when someone opens the state folder) lists
every upstream namespace with its counts and links to its pages;
``index/<registry>/<namespace>.md`` lists every image of the namespace with
every tag (newest first, ``mirrorbot.domain.tagorder``), digest, platforms and the
pull command, signature/attestation/referrers tags apart and skipped tags with
their reason. A namespace too large for one page continues in
``<namespace>~2.md``, ``~3`` …, split by image name so that no file passes
``PAGE_LIMIT`` bytes (GitHub renders Markdown up to about 512 KB); the README
links every page with the image names it spans, so any ``image:tag`` and its
pull command is one click from the README. ``~`` and ``_root`` cannot occur in
a repository name, so page names never collide with a namespace's.

A tag gone upstream stays mirrored and keeps its row, marked "gone upstream" with
the time a sync first missed it; it is never the suggested pull while another is
listed upstream.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mirrorbot.domain.tagorder import artifact_kind, artifact_subject, newest_first, pull_tag
from mirrorbot.domain.templating import code, display_time, short_digest, templates
from mirrorbot.errors import InvalidReferenceError, StateError
from mirrorbot.reference import validate_repository
from mirrorbot.state.store import ImageRecord, NamespaceState, SkipRecord, TagRecord

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "INDEX_DIR",
    "INDEX_NAME",
    "PAGE_BUDGET",
    "PAGE_IMAGES",
    "PAGE_LIMIT",
    "render_pages",
    "stale_pages",
]

INDEX_NAME = "README.md"
INDEX_DIR = "index"
PAGE_LIMIT = 500_000  # bytes: no page is larger
PAGE_BUDGET = 400_000  # bytes of image sections on a page; the rest is room for the navigation
PAGE_IMAGES = 250  # image sections on a page, so a page of small images stays quick to scroll
NAV_BUDGET = 64_000  # a page list longer than this shrinks to previous / next / README
PLATFORMS_SHOWN = 12
ROOT_STEM = "_root"


@dataclass(frozen=True, slots=True)
class _Section:
    """One image (or one part of a huge one) rendered, with the size packing needs."""

    name: str
    label: str  # what page lists show: the name, and for a part the tags it spans
    text: str
    size: int


@dataclass(frozen=True, slots=True)
class _Link:
    """One entry of a namespace page's list of its pages."""

    number: int
    href: str
    span: str
    current: bool


@dataclass(slots=True)
class _Namespace:
    source: str
    mirror: str
    base: str  # page path without ".md"
    images: int = 0
    tags: int = 0
    artifacts: int = 0
    last_sync: str = ""
    sections: list[_Section] = field(default_factory=list)
    pages: list[list[_Section]] = field(default_factory=list)

    def page_path(self, number: int) -> str:
        return f"{self.base}.md" if number == 1 else f"{self.base}~{number}.md"


@lru_cache(maxsize=4096)
def _platforms(platforms: tuple[str, ...]) -> str:
    shown = ", ".join(code(p) for p in platforms[:PLATFORMS_SHOWN])
    extra = len(platforms) - PLATFORMS_SHOWN
    return (shown + (f" +{extra} more" if extra > 0 else "")) or "—"


def _tag_rows(target: str, ordered: list[str], tags: Mapping[str, TagRecord]) -> list[str]:
    rows = []
    for tag in ordered:
        record = tags[tag]
        gone = f" (gone upstream {display_time(record.gone)})" if record.gone else ""
        rows.append(
            f"| {code(tag)}{gone} | {code(short_digest(record.digest))} | {_platforms(record.platforms)}"
            f" | {display_time(record.synced)} | {code(f'docker pull {target}:{tag}')} |"
        )
    return rows


def _artifact_rows(artifacts: list[str], tags: Mapping[str, TagRecord]) -> list[str]:
    """Each artifact with the image tags it is about (matched on the upstream digest)."""
    if not artifacts:
        return []
    by_digest: dict[str, list[str]] = {}
    for tag, record in tags.items():
        if artifact_kind(tag) is None:
            for digest in {record.digest, record.upstream_digest}:
                by_digest.setdefault(digest, []).append(tag)
    rows = []
    for tag in artifacts:
        subject = artifact_subject(tag) or ""
        about = ", ".join(code(t) for t in sorted(by_digest.get(subject, []))[:5]) or code(
            short_digest(subject)
        )
        rows.append(
            f"| {code(tag)} | {artifact_kind(tag)} | {code(short_digest(tags[tag].digest))}"
            f" | {about} |"
        )
    return rows


def _referrer_rows(tags: Mapping[str, TagRecord]) -> list[str]:
    """OCI referrers (pushed by digest, no tag) under the image tags they are about."""
    about: dict[tuple[str, str], list[str]] = {}
    for tag, record in tags.items():
        for digest, artifact_type in record.referrers:
            about.setdefault((digest, artifact_type), []).append(tag)
    return [
        f"| (by digest) | {code(artifact_type or 'referrer')} | {code(short_digest(digest))}"
        f" | {', '.join(code(t) for t in sorted(subjects)[:5])} |"
        for (digest, artifact_type), subjects in sorted(about.items())
    ]


def _skipped_rows(skipped: Mapping[str, SkipRecord]) -> list[str]:
    return [
        f"| {code(tag)} | {code(record.reason)} | {display_time(record.since)} |"
        for tag, record in sorted(skipped.items())
    ]


def _chunks(rows: list[tuple[int, str]], budget: int) -> Iterator[list[tuple[int, str]]]:
    """Consecutive rows in runs of at most ``budget`` characters (a row is far smaller)."""
    chunk: list[tuple[int, str]] = []
    size = 0
    for row in rows:
        if chunk and size + len(row[1]) > budget:
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += len(row[1]) + 1
    if chunk:
        yield chunk


def _image_sections(
    template: jinja2.Template,
    state: NamespaceState,
    name: str,
    entry: ImageRecord | None,
    summary: _Namespace,
) -> list[_Section]:
    """An image's section, cut in parts when its tags alone would pass the page budget."""
    tags = entry.tags if entry else {}
    target = entry.target if entry else ""
    ordered = newest_first(tags)
    images = [t for t in ordered if artifact_kind(t) is None]
    artifacts = [t for t in ordered if artifact_kind(t) is not None]
    pull = pull_tag([t for t in images if not tags[t].gone]) or pull_tag(images)
    gone_count = sum(1 for t in images if tags[t].gone)
    last_sync = max((record.synced for record in tags.values()), default="")
    if tags:
        summary.images += 1
    summary.tags += len(images)
    referrers = len({r for record in tags.values() for r in record.referrers})
    summary.artifacts += len(artifacts) + referrers
    summary.last_sync = max(summary.last_sync, last_sync)
    tag_rows = _tag_rows(target, images, tags)
    artifact_rows = _artifact_rows(artifacts, tags) + _referrer_rows(tags)
    skipped_rows = _skipped_rows(state.skipped.get(name, {}))
    # Every row is bounded (``code`` cuts long text, platforms stop at PLATFORMS_SHOWN), so
    # parts of half a page budget each keep even an image with 100,000 tags renderable.
    labelled = [(0, row) for row in tag_rows] + [(1, row) for row in artifact_rows]
    labelled += [(2, row) for row in skipped_rows]
    parts = [
        tuple([row for kind, row in chunk if kind == wanted] for wanted in (0, 1, 2))
        for chunk in _chunks(labelled, PAGE_BUDGET // 2)
    ] or [([], [], [])]
    sections = []
    for number, (part_tags, part_artifacts, part_skipped) in enumerate(parts, start=1):
        text = template.render(
            name=name,
            upstream=f"{state.source}/{name}",
            target=target,
            pull=f"docker pull {target}:{pull}" if pull else None,
            tag_count=len(images),
            artifact_count=len(artifacts) + referrers,
            skipped_count=len(skipped_rows),
            gone_count=gone_count,
            last_sync=display_time(last_sync) if last_sync else "",
            part=number if len(parts) > 1 else 0,
            parts=len(parts),
            tag_rows=part_tags,
            artifact_rows=part_artifacts,
            skipped_rows=part_skipped,
        )
        label = code(name)
        if len(parts) > 1:
            label += f" ({_tag_span(part_tags) if part_tags else f'part {number}'})"
        sections.append(_Section(name, label, text, len(text.encode("utf-8"))))
    return sections


def _page_base(state: NamespaceState, shared: bool) -> str:
    """``index/<registry>/<namespace>``, checked as the state store checks its own paths."""
    registry, _, namespace = state.source.partition("/")
    bad = not registry or registry in (".", "..") or registry.startswith(".")
    bad = bad or any(ch in registry for ch in "/\\~") or not registry.isprintable()
    try:
        if namespace:
            validate_repository(namespace)
    except InvalidReferenceError:
        bad = True
    stem = namespace or ROOT_STEM
    if shared:
        mirror = state.mirror.replace("/", "+")
        bad = bad or not mirror or mirror.startswith(".") or not mirror.isprintable()
        bad = bad or any(ch in mirror for ch in "\\~ ")
        stem += "@" + mirror
    if bad:
        raise StateError(f"cannot write an index page for namespace source {state.source!r}")
    return f"{INDEX_DIR}/{registry}/{stem}"


def _pack(sections: list[_Section]) -> list[list[_Section]]:
    pages: list[list[_Section]] = [[]]
    size = 0
    for section in sections:
        if pages[-1] and (size + section.size > PAGE_BUDGET or len(pages[-1]) >= PAGE_IMAGES):
            pages.append([])
            size = 0
        pages[-1].append(section)
        size += section.size
    return pages


def _tag_span(rows: list[str]) -> str:
    """``v9`` … ``v1``: the first and last tag of a part, read back from its rows."""
    first, last = (row.split("`", 2)[1] for row in (rows[0], rows[-1]))
    return code(first) if first == last else f"{code(first)} … {code(last)}"


def _span(page: list[_Section]) -> str:
    if not page:
        return "no images"
    first, last = page[0].label, page[-1].label
    return first if first == last else f"{first} … {last}"


def _href(path: str) -> str:
    return quote(path, safe="/~@+")


def _link(source: str, target: str) -> str:
    return _href(posixpath.relpath(target, posixpath.dirname(source) or "."))


def _namespace_pages(namespace: _Namespace) -> dict[str, str]:
    template = templates().get_template("index_namespace.md.j2")
    count = len(namespace.pages)
    pages: dict[str, str] = {}
    for number, page in enumerate(namespace.pages, start=1):
        path = namespace.page_path(number)
        navigation = [
            _Link(
                other,
                _link(path, namespace.page_path(other)),
                _span(namespace.pages[other - 1]),
                other == number,
            )
            for other in range(1, count + 1)
        ]
        if count > 1 and sum(len(n.span) + len(n.href) + 8 for n in navigation) > NAV_BUDGET:
            navigation = [n for n in navigation if abs(n.number - number) <= 1]
        pages[path] = template.render(
            ns=namespace,
            page=number,
            page_count=count,
            navigation=navigation if count > 1 else [],
            readme=_link(path, INDEX_NAME),
            changelog=_link(path, "CHANGELOG.md"),
            last_sync=display_time(namespace.last_sync) if namespace.last_sync else "",
            sections="\n".join(section.text for section in page),
        )
    return pages


def _summaries(states: Iterable[NamespaceState]) -> list[_Namespace]:
    ordered = sorted(states, key=lambda s: (s.source, s.mirror))
    sources: dict[str, int] = {}
    for state in ordered:
        sources[state.source] = sources.get(state.source, 0) + 1
    summaries = []
    template = templates().get_template("index_image.md.j2")
    for state in ordered:
        summary = _Namespace(
            state.source, state.mirror, _page_base(state, sources[state.source] > 1)
        )
        for name in sorted(set(state.images) | set(state.skipped)):
            summary.sections.extend(
                _image_sections(template, state, name, state.images.get(name), summary)
            )
        summary.pages = _pack(summary.sections)
        summaries.append(summary)
    return summaries


def _readme(summaries: list[_Namespace], *, spans: bool) -> str:
    rows: list[dict[str, Any]] = []
    for summary in summaries:
        links = [
            f"[{_span(page) if spans else number}]({_href(summary.page_path(number))})"
            for number, page in enumerate(summary.pages, start=1)
        ]
        rows.append(
            {
                "ns": summary,
                "href": _href(summary.page_path(1)),
                "last_sync": display_time(summary.last_sync) if summary.last_sync else "",
                "pages": " · ".join(links) if len(links) > 1 else "",
            }
        )
    last_sync = max((s.last_sync for s in summaries), default="")
    return (
        templates()
        .get_template("index.md.j2")
        .render(
            namespaces=rows,
            image_count=sum(s.images for s in summaries),
            tag_count=sum(s.tags for s in summaries),
            artifact_count=sum(s.artifacts for s in summaries),
            last_sync=display_time(last_sync) if last_sync else "",
            index_dir=INDEX_DIR,
        )
    )


def render_pages(states: Iterable[NamespaceState]) -> dict[str, str]:
    """Every index page, keyed by its path relative to the state folder (``/``-separated)."""
    summaries = _summaries(states)
    pages = {INDEX_NAME: _readme(summaries, spans=True)}
    if len(pages[INDEX_NAME].encode("utf-8")) > PAGE_LIMIT:
        pages[INDEX_NAME] = _readme(summaries, spans=False)  # page numbers only
    for summary in summaries:
        pages.update(_namespace_pages(summary))
    return pages


def stale_pages(root: Path, pages: Mapping[str, str]) -> list[Path]:
    """Pages under ``root/index`` that ``pages`` no longer has: the renderer's own files only.

    Only ``*.md`` regular files below the index folder are ever returned; symbolic
    links are not followed (a link in their place is returned, to be removed itself).
    """
    folder = root / INDEX_DIR
    if folder.is_symlink() or not folder.is_dir():
        return []
    stale = []
    for directory, _, files in os.walk(folder, followlinks=False):
        for name in files:
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if name.endswith(".md") and relative not in pages:
                stale.append(path)
    return sorted(stale)
