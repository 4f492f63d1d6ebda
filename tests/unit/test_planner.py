"""The planner is pure: listing + state in, plan out. Every rule of DESIGN.md §2 "plan"."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mirrorbot.domain.planner import (
    is_signature_tag,
    plan_namespace,
    tags_to_recheck,
)
from mirrorbot.engine.sources.base import ListedRepository, ListedTag, Listing
from mirrorbot.state.store import NamespaceState, TagRecord

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
SIG1 = f"sha256-{'1' * 64}.sig"
SIG9 = f"sha256-{'9' * 64}.sig"


@dataclass(frozen=True)
class Rules:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    mutable: tuple[str, ...] = ("latest",)
    signatures: bool = True
    patterns: dict[str, re.Pattern[str]] = field(default_factory=dict)

    def tag_selected(self, tag: str) -> bool:
        if self.include and not any(re.fullmatch(p, tag) for p in self.include):
            return False
        return not any(re.fullmatch(p, tag) for p in self.exclude)

    def is_mutable(self, tag: str) -> bool:
        return any(re.fullmatch(p, tag) for p in self.mutable)


def listing(**repos: list[ListedTag]) -> Listing:
    return Listing(
        "gcr.io/google-containers",
        tuple(
            ListedRepository(path.replace("__", "/"), tuple(tags))
            for path, tags in sorted(repos.items())
        ),
        (),
    )


def record(digest: str, source_digest: str | None = None) -> TagRecord:
    return TagRecord(
        digest,
        "application/vnd.oci.image.index.v1+json",
        (),
        10,
        "2026-11-01T00:00:00Z",
        source_digest,
    )


def state(**images: dict[str, TagRecord]) -> NamespaceState:
    result = NamespaceState("gcr.io/google-containers", "docker.io/gcrxio")
    for name, tags in images.items():
        for tag, rec in tags.items():
            result.record(name.replace("__", "/"), f"docker.io/gcrxio/{name}", tag, rec)
    return result


TARGETS = {"pause": "gcrxio/pause", "etcd": "gcrxio/etcd", "etcd/backup": "gcrxio/etcd_backup"}


def plan(
    rules: Rules,
    up: Listing,
    st: NamespaceState,
    heads: dict[tuple[str, str], str | None] | None = None,
):
    return plan_namespace(
        rules, up, st, mirror="docker.io/gcrxio", targets=TARGETS, head_digests=heads
    )


def test_cold_run_plans_every_selected_tag_with_full_references() -> None:
    up = listing(pause=[ListedTag("3.9"), ListedTag("latest")], etcd__backup=[ListedTag("v1")])
    result = plan(Rules(), up, state())
    assert [(i.kind, str(i.source), str(i.target)) for i in result.items] == [
        ("new", "gcr.io/google-containers/etcd/backup:v1", "docker.io/gcrxio/etcd_backup:v1"),
        ("new", "gcr.io/google-containers/pause:3.9", "docker.io/gcrxio/pause:3.9"),
        ("new", "gcr.io/google-containers/pause:latest", "docker.io/gcrxio/pause:latest"),
    ]
    assert result.unchanged == 0


def test_recorded_immutable_tags_are_neither_rechecked_nor_copied() -> None:
    up = listing(pause=[ListedTag("3.9"), ListedTag("latest")])
    st = state(pause={"3.9": record(D1), "latest": record(D1)})
    assert tags_to_recheck(Rules(), up, st) == [("pause", "latest")]
    result = plan(Rules(), up, st, {("pause", "latest"): D1})
    assert result.items == ()
    assert result.unchanged == 2


def test_retagged_mutable_tag_is_updated_with_previous_digest() -> None:
    up = listing(pause=[ListedTag("3.9"), ListedTag("latest")])
    st = state(pause={"3.9": record(D1), "latest": record(D1)})
    [item] = plan(Rules(), up, st, {("pause", "latest"): D2}).items
    assert (item.kind, item.tag, item.previous, item.upstream_digest) == (
        "updated",
        "latest",
        D1,
        D2,
    )


def test_listed_digests_detect_changes_without_heads() -> None:
    up = listing(pause=[ListedTag("3.9", digest=D2), ListedTag("3.8", digest=D1)])
    st = state(pause={"3.9": record(D1), "3.8": record(D1)})
    assert tags_to_recheck(Rules(), up, st) == []
    [item] = plan(Rules(), up, st).items
    assert (item.kind, item.tag, item.previous) == ("updated", "3.9", D1)


def test_platform_filtered_records_compare_the_upstream_digest() -> None:
    # State holds the filtered index D3 whose upstream was D1: unchanged upstream means no copy.
    up = listing(pause=[ListedTag("3.9", digest=D1)])
    st = state(pause={"3.9": record(D3, source_digest=D1)})
    assert plan(Rules(), up, st).items == ()


def test_include_exclude_filters() -> None:
    up = listing(
        pause=[ListedTag("3.9"), ListedTag("3.9-rc1"), ListedTag("test"), ListedTag("latest")]
    )
    rules = Rules(include=(r"3\..*", "latest"), exclude=(r".*-rc\d+",))
    result = plan(rules, up, state())
    assert sorted(i.tag for i in result.items) == ["3.9", "latest"]
    assert result.filtered_out == 2


def test_tags_gone_upstream_are_reported_not_planned() -> None:
    up = listing(pause=[ListedTag("3.9")])
    st = state(pause={"3.9": record(D1), "3.8": record(D2)}, etcd={"v1": record(D1)})
    result = plan(Rules(), up, st)
    assert result.items == ()
    # etcd is not in this listing at all (deleted, or it failed to list: a listing cannot
    # tell): it is not judged. Gone marks are written to state, so only a repository the
    # listing saw counts.
    assert result.gone == (("pause", "3.8"),)


def test_signatures_follow_their_subject_in_a_second_phase() -> None:
    up = listing(pause=[ListedTag("3.9"), ListedTag(SIG1), ListedTag(SIG9)])
    assert is_signature_tag(SIG1)
    first = plan(Rules(), up, state())
    assert [i.tag for i in first.items] == ["3.9"]  # signatures wait for their image
    after = state(pause={"3.9": record(D1)})
    second = plan_namespace(
        Rules(), up, after, mirror="docker.io/gcrxio", targets=TARGETS, signatures=True
    )
    assert [i.tag for i in second.items] == [SIG1]  # SIG9 signs nothing we mirror
    off = plan_namespace(
        Rules(signatures=False),
        up,
        after,
        mirror="docker.io/gcrxio",
        targets=TARGETS,
        signatures=True,
    )
    assert off.items == ()


def test_recorded_signatures_are_rechecked_because_cosign_rewrites_them() -> None:
    up = listing(pause=[ListedTag("3.9"), ListedTag(SIG1)])
    st = state(pause={"3.9": record(D1), SIG1: record(D2)})
    assert tags_to_recheck(Rules(), up, st, signatures_phase=True) == [("pause", SIG1)]
    [item] = plan_namespace(
        Rules(),
        up,
        st,
        mirror="docker.io/gcrxio",
        targets=TARGETS,
        head_digests={("pause", SIG1): D3},
        signatures=True,
    ).items
    assert (item.kind, item.previous, item.upstream_digest) == ("updated", D2, D3)
