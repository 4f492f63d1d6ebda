"""Tags gone upstream: kept in the mirror, marked in state, listed in the index and CHANGELOG."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.demo.seed import Seeder
from mirrorbot.domain.changes import Change, pending_changes
from mirrorbot.domain.planner import plan_namespace
from mirrorbot.domain.shards import change_from_fragment
from mirrorbot.engine.sources.base import ListedRepository, ListedTag, Listing
from mirrorbot.errors import InvalidFragmentRecordError
from mirrorbot.state.store import NamespaceState, StateStore, TagRecord
from tests.conftest import CREDS
from tests.support import skopeo
from tests.support.world import World, git

DIGEST = "sha256:" + "a" * 64
RECORD = TagRecord(
    DIGEST, "application/vnd.oci.image.manifest.v1+json", (), 10, "2026-11-30T00:00:00Z"
)


def _record(world: World, image: str, tag: str) -> dict[str, Any]:
    record: dict[str, Any] = world.state()["images"][image]["tags"][tag]  # type: ignore[index]
    return record


def _commits(world: World) -> int:
    return int(git("rev-list", "--count", "main", cwd=world.remote))


def test_a_tag_deleted_upstream_is_marked_listed_and_kept(world: World) -> None:
    f = ImageFactory(world.ns)
    world.seed("app", "v1", f.image("app-1"))
    world.seed("app", "v2", f.image("app-2"))
    assert world.run("sync").returncode == 0
    with Seeder(world.upstream.url) as seeder:
        seeder.delete_tag_target(f"{world.ns}/app", "v2")

    marked = world.run("sync")

    assert marked.returncode == 0, marked.stdout + marked.stderr
    gone = _record(world, "app", "v2").get("goneUpstream")
    assert gone is not None
    assert "goneUpstream" not in _record(world, "app", "v1")
    changelog = world.remote_file("state/CHANGELOG.md")
    [line] = [line for line in changelog.splitlines() if line.startswith("- gone upstream:")]
    assert f"{world.ns}/app:v2`" in line
    assert f"`{world.mirror.host}/{world.mirror_ns}/app:v2`" in line
    page = world.remote_file(f"state/index/{world.upstream.host}/{world.ns}.md")
    assert "| `v2` (gone upstream " in page
    assert "1 gone upstream (still mirrored)" in page
    assert f"`docker pull {world.mirror.host}/{world.mirror_ns}/app:v1` ·" in page
    # Still in the mirror: nothing is deleted.
    mirrored = skopeo.manifest_digest(f"{world.mirror.host}/{world.mirror_ns}/app:v2", CREDS)
    assert mirrored == _record(world, "app", "v2")["digest"]

    # A second run changes nothing: no commit, the mark keeps its first time.
    commits = _commits(world)
    again = world.run("sync")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _commits(world) == commits
    assert _record(world, "app", "v2")["goneUpstream"] == gone

    # Upstream lists it again: the mark goes, one line says so.
    world.seed("app", "v2", f.image("app-2"))
    back = world.run("sync")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "goneUpstream" not in _record(world, "app", "v2")
    assert world.remote_file("state/CHANGELOG.md").count("- back upstream:") == 1


def test_a_targeted_sync_marks_nothing_gone(world: World) -> None:
    """``sync --image`` lists only what it was asked for: other tags are not judged."""
    f = ImageFactory(world.ns)
    world.seed("app", "v1", f.image("app-1"))
    world.seed("app", "v2", f.image("app-2"))
    assert world.run("sync").returncode == 0
    commits = _commits(world)
    targeted = world.run("sync", "--image", f"{world.upstream.host}/{world.ns}/app:v1")
    assert targeted.returncode == 0, targeted.stdout + targeted.stderr
    assert _commits(world) == commits
    assert "goneUpstream" not in _record(world, "app", "v2")


def _listing(*repositories: tuple[str, tuple[str, ...]]) -> Listing:
    return Listing(
        "r.example/ns",
        tuple(
            ListedRepository(path, tuple(ListedTag(t) for t in tags)) for path, tags in repositories
        ),
        (),
    )


class _AllTags:
    signatures = True

    def tag_selected(self, tag: str) -> bool:
        return True

    def is_mutable(self, tag: str) -> bool:
        return False


def test_only_listed_repositories_are_judged() -> None:
    state = NamespaceState("r.example/ns", "m.example/x")
    state.record("app", "m.example/x/app", "v1", RECORD)
    state.record("app", "m.example/x/app", "v2", RECORD)
    state.record("lost", "m.example/x/lost", "v1", RECORD)  # failed to list this time
    plan = plan_namespace(
        _AllTags(),
        _listing(("app", ("v1",))),
        state,
        mirror="m.example/x",
        targets={"app": "x/app"},
    )
    assert plan.gone == (("app", "v2"),)
    assert plan.returned == ()


def _change(kind: str, gone: str | None) -> Change:
    return Change(
        kind=kind,  # type: ignore[arg-type]
        namespace="r.example/ns",
        mirror="m.example/x",
        image="app",
        tag="v2",
        upstream="r.example/ns/app:v2",
        target_repository="m.example/x/app",
        record=TagRecord(RECORD.digest, RECORD.media_type, (), 10, RECORD.synced, None, gone),
    )


def test_marks_are_published_once(tmp_path: Any) -> None:
    store = StateStore(tmp_path / "state")
    state = NamespaceState("r.example/ns", "m.example/x")
    state.record("app", "m.example/x/app", "v2", RECORD)
    store.save(state)
    mark = _change("gone", "2026-12-01T00:00:00Z")
    assert pending_changes(store, [mark]) == [mark]
    state.record("app", "m.example/x/app", "v2", mark.record)
    store.save(state)
    assert pending_changes(store, [mark]) == []  # a re-run publish adds no second line
    assert pending_changes(store, [_change("returned", None)]) != []


@pytest.mark.hostile("shard fragments")
@pytest.mark.parametrize(
    ("kind", "extra", "accepted"),
    [
        ("gone", {"goneUpstream": "2026-12-01T00:00:00Z"}, True),
        ("returned", {}, True),
        ("gone", {"goneUpstream": "yesterday"}, False),
        ("new", {"referrers": {"sha256:" + "b" * 64: "application/spdx+json"}}, True),
        ("new", {"referrers": {"sha256:nothex": "application/spdx+json"}}, False),
        ("new", {"referrers": {"sha256:" + "b" * 64: "<b>bold</b>"}}, False),
        ("repaired", {}, False),
    ],
)
def test_fragments_carry_marks_skips_and_referrers(
    kind: str, extra: dict[str, str], accepted: bool
) -> None:
    document = _change(kind, None).to_json()
    document["record"].update(extra)
    if accepted:
        assert change_from_fragment(document).kind == kind
    else:
        with pytest.raises(InvalidFragmentRecordError):
            change_from_fragment(document)


@pytest.mark.hostile("shard fragments")
@pytest.mark.parametrize(
    ("reason", "accepted"),
    [
        ("unsupported manifest application/vnd.docker.distribution.manifest.v1+prettyjws", True),
        ("[click me](https://example.invalid)", False),
        ("two\nlines", False),
        (None, False),
    ],
)
def test_a_skip_in_a_fragment_needs_a_plain_reason(reason: str | None, accepted: bool) -> None:
    document = _change("skipped", None).to_json()
    document["record"] = {"digest": DIGEST, "synced": RECORD.synced}
    if reason is not None:
        document["reason"] = reason
    if accepted:
        change = change_from_fragment(json.loads(json.dumps(document)))
        assert change.reason == reason
    else:
        with pytest.raises(InvalidFragmentRecordError):
            change_from_fragment(document)
