"""The run report: a rich table on a terminal, plain text in logs, Markdown for GitHub.

All three render the same figures from one :class:`Summary`, so they cannot
disagree, and all three pass through :func:`mirrorbot.redact.redact`: failure
lines quote registries' error pages, which may echo a credential.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mirrorbot.engine.registry.pulls import registry_label
from mirrorbot.jobs.outcome import SyncReport
from mirrorbot.jobs.progress import format_bytes
from mirrorbot.redact import redact

__all__ = ["Summary", "render_markdown", "render_plain", "summarise"]

MAX_LISTED = 50


@dataclass(frozen=True, slots=True)
class Summary:
    namespaces: int
    images_changed: int
    tags_new: int
    tags_updated: int
    tags_unchanged: int
    tags_gone: int
    tags_failed: int
    already_present: int
    bytes_uploaded: int
    blobs_uploaded: int
    blobs_mounted: int
    blobs_skipped: int
    duration: float
    dry_run: bool
    failures: tuple[tuple[str, str], ...]
    listing_errors: tuple[str, ...]
    warnings: tuple[str, ...]
    planned: tuple[tuple[str, str, str], ...]  # (kind, upstream, target) — for dry runs
    stopped: bool = False
    stop_reason: str = "SIGTERM"
    not_started: int = 0
    abandoned: int = 0
    tags_repaired: int = 0
    tags_skipped: int = 0  # unsupported (schema1): recorded once, not failed
    causes: tuple[str, ...] = ()  # per failure (same order): code and registry, for grouping
    kept_out: tuple[tuple[str, int], ...] = ()  # (namespace, tags keep left out), only when some
    pruning: tuple[str, ...] = ()  # mirror tags a dry run would delete (prune: true)
    deferred: tuple[str, ...] = ()  # per deferred tag: the registry whose pull budget held it
    pulls: tuple[str, ...] = ()  # "Docker Hub pulls used: 37, remaining 163"
    command: str = "sync"  # "rules": image-syncer rules, which have no namespaces

    @property
    def title(self) -> str:
        """A dry run is a plan (``plan``, ``sync --dry-run``): nothing was copied."""
        if self.command != "sync":
            return f"mirrorbot {self.command}" + (" --dry-run" if self.dry_run else "")
        return "mirrorbot plan" if self.dry_run else "mirrorbot sync"

    def rows(self) -> list[tuple[str, str]]:
        if self.dry_run:
            return self._plan_rows()
        return [
            *self._namespaces(),
            ("tags new (copied)", str(self.tags_new)),
            ("tags updated (copied)", str(self.tags_updated)),
            ("tags unchanged", str(self.tags_unchanged)),
            ("tags gone upstream (kept)", str(self.tags_gone)),
            ("tags failed", str(self.tags_failed)),
            *self._only_when_some(),
            ("images touched", str(self.images_changed)),
            ("bytes uploaded", format_bytes(self.bytes_uploaded)),
            (
                "blobs uploaded / mounted / already there",
                f"{self.blobs_uploaded} / {self.blobs_mounted} / {self.blobs_skipped}",
            ),
            ("duration", f"{self.duration:.1f} s"),
        ]

    def _namespaces(self) -> list[tuple[str, str]]:
        """Image-syncer rules have no namespaces: no row saying "0"."""
        return [("namespaces", str(self.namespaces))] if self.command == "sync" else []

    def _plan_rows(self) -> list[tuple[str, str]]:
        """What a plan knows: tags to copy and where they stand; nothing was uploaded."""
        return [
            *self._namespaces(),
            ("tags to copy (new)", str(self.tags_new)),
            ("tags to copy (updated)", str(self.tags_updated)),
            ("tags unchanged", str(self.tags_unchanged)),
            ("tags gone upstream (kept)", str(self.tags_gone)),
            ("images with tags to copy", str(self.images_changed)),
            # Sizes live in manifests; a plan reads none (Docker Hub counts each GET as a pull).
            ("bytes to copy", "not estimated (plan fetches no manifests)"),
            ("duration", f"{self.duration:.1f} s"),
        ]

    def _only_when_some(self) -> list[tuple[str, str]]:
        """Rows most runs would show as 0: repairs and skipped (schema1) tags."""
        counts = (
            ("tags repaired", self.tags_repaired),
            ("tags skipped (unsupported)", self.tags_skipped),
        )
        return [(label, str(count)) for label, count in counts if count]


def summarise(report: SyncReport) -> Summary:
    plans = report.plans
    if report.dry_run:
        new = sum(len(p.new) for p in plans)
        updated = sum(len(p.updated) for p in plans)
        images = {(p.source, i.image) for p in plans for i in p.items}
    else:
        new = sum(1 for c in report.changes if c.kind == "new")
        updated = sum(1 for c in report.changes if c.kind == "updated")
        images = {(c.namespace, c.image) for c in report.changes}
    return Summary(
        namespaces=len(report.runs),
        images_changed=len(images),
        tags_new=new,
        tags_updated=updated,
        tags_unchanged=sum(p.unchanged for p in plans),
        tags_gone=sum(len(p.gone) for p in plans),
        tags_failed=len(report.failures),
        already_present=report.already_present,
        bytes_uploaded=report.stats.bytes_uploaded,
        blobs_uploaded=report.stats.blobs_uploaded,
        blobs_mounted=report.stats.blobs_mounted,
        blobs_skipped=report.stats.blobs_skipped,
        duration=report.duration,
        dry_run=report.dry_run,
        command=report.command,
        failures=tuple((f.upstream, f.error) for f in report.failures),
        listing_errors=tuple(report.listing_errors),
        warnings=tuple(report.warnings),
        planned=tuple((i.kind, str(i.source), str(i.target)) for p in plans for i in p.items),
        stopped=report.stopped,
        stop_reason=report.stop_reason,
        not_started=len(report.not_started),
        abandoned=len(report.abandoned),
        tags_repaired=sum(1 for c in report.changes if c.kind == "repaired"),
        tags_skipped=sum(1 for c in report.changes if c.kind == "skipped"),
        causes=tuple(f.cause for f in report.failures),
        kept_out=tuple((p.source, p.kept_out) for p in plans if p.kept_out),
        pruning=tuple(report.pruning),
        deferred=tuple(registry_label(registry) for _, registry in report.deferred),
        pulls=tuple(usage.describe() for usage in report.pulls),
    )


def render_plain(summary: Summary) -> str:
    width = max(len(label) for label, _ in summary.rows())
    lines = [summary.title]
    lines += [f"  {label.ljust(width)}  {value}" for label, value in summary.rows()]
    lines += _details(summary, bullet="  - ")
    return redact("\n".join(lines) + "\n")


def _details(summary: Summary, *, bullet: str, code: Callable[[str], str] = str) -> list[str]:
    lines: list[str] = []
    if summary.dry_run and summary.planned:
        lines.append("would copy:")
        lines += [
            f"{bullet}{kind}: {code(up)} → {code(down)}"
            for kind, up, down in summary.planned[:MAX_LISTED]
        ]
        if len(summary.planned) > MAX_LISTED:
            lines.append(f"{bullet}… and {len(summary.planned) - MAX_LISTED} more")
    if summary.kept_out:
        lines.append("left out by keep (older tags, not mirrored):")
        lines += [f"{bullet}{code(source)}: {count}" for source, count in summary.kept_out]
    if summary.pruning:
        lines.append("would prune (gone upstream):")
        lines += [f"{bullet}{code(reference)}" for reference in summary.pruning[:MAX_LISTED]]
        if len(summary.pruning) > MAX_LISTED:
            lines.append(f"{bullet}… and {len(summary.pruning) - MAX_LISTED} more")
    if summary.listing_errors:
        lines.append("listing failed:")
        lines += [f"{bullet}{error}" for error in summary.listing_errors]
    if summary.stopped:
        lines.append(f"stopped early ({summary.stop_reason}):")
        lines.append(
            f"{bullet}{summary.not_started} tags not started, {summary.abandoned} abandoned "
            "in flight; everything completed is recorded, the next run does the rest"
        )
    if summary.pulls or summary.deferred:
        lines.append("pulls:")
        lines += [f"{bullet}{line}" for line in summary.pulls]
        for label in dict.fromkeys(summary.deferred):
            count = summary.deferred.count(label)
            lines.append(
                f"{bullet}deferred {count} tags: {label} pull budget (not failed; "
                "the next run copies them)"
            )
    if summary.failures:
        lines.append("failed:")
        lines += _grouped_failures(summary.failures, summary.causes, bullet, code)
    if summary.warnings:
        lines.append("warnings:")
        lines += [f"{bullet}{warning}" for warning in summary.warnings[:MAX_LISTED]]
        if len(summary.warnings) > MAX_LISTED:
            lines.append(f"{bullet}… and {len(summary.warnings) - MAX_LISTED} more")
    return lines


def _grouped_failures(
    failures: tuple[tuple[str, str], ...],
    causes: tuple[str, ...],
    bullet: str,
    code: Callable[[str], str],
) -> list[str]:
    """One line per cause (code and registry), not per message: messages name each tag's URL.

    A cause shared by many tags (a registry down, credentials refused) is said
    once, naming a few tags and quoting the first message; failures without a
    typed cause group only when their messages are the same word for word.
    """
    groups: dict[str, list[tuple[str, str]]] = {}
    for number, (upstream, error) in enumerate(failures):
        cause = causes[number] if number < len(causes) else ""
        groups.setdefault(cause or f"\0{error}", []).append((upstream, error))
    lines: list[str] = []
    for cause, members in groups.items():
        upstream, error = members[0]
        if len(members) == 1:
            lines.append(f"{bullet}{code(upstream)}: {error}")
            continue
        shown = ", ".join(code(u) for u, _ in members[:3])
        more = f" and {len(members) - 3} more" if len(members) > 3 else ""
        if cause.startswith("\0"):
            lines.append(f"{bullet}{len(members)} tags failed ({shown}{more}): {error}")
        else:
            lines.append(
                f"{bullet}{len(members)} tags failed: {cause} ({shown}{more}); first: {error}"
            )
    if len(lines) > MAX_LISTED:
        lines = [*lines[:MAX_LISTED], f"{bullet}… and {len(lines) - MAX_LISTED} more"]
    return lines


def render_markdown(summary: Summary) -> str:
    title = f"## {summary.title}"
    lines = [title, "", "| | |", "|---|---:|"]
    lines += [f"| {label} | {value} |" for label, value in summary.rows()]
    details = _details(summary, bullet="- ", code=lambda text: f"`{text}`")
    if details:
        lines.append("")
        lines += [
            line if line.startswith("- ") else f"\n**{line.rstrip(':')}**\n" for line in details
        ]
    return redact("\n".join(lines) + "\n")


def render_rich(summary: Summary) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=summary.title, show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, value in summary.rows():
        table.add_row(label, value)
    console.print(table)
    for line in _details(summary, bullet="  - "):
        # Redacted before rich wraps it: a secret cut across two lines would not be seen.
        console.print(redact(line), markup=False, highlight=False)
