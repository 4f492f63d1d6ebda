"""Repair and skip: a damaged mirror brought back to what state says; schema1 tags left alone.

Real registries, real git, the real command line: a tag is deleted from the
mirror behind mirrorbot's back (its manifest, as a registry's garbage
collection or a careless admin would), and skopeo is the referee of what the
mirror serves afterwards.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.demo.seed import Seeder
from mirrorbot.domain.changes import Change
from mirrorbot.domain.planner import plan_namespace, tags_to_recheck
from mirrorbot.engine.sources.base import ListedRepository, ListedTag, Listing
from mirrorbot.errors import StateError
from mirrorbot.state.store import NamespaceState, SkipRecord, TagRecord
from tests.conftest import CREDS
from tests.support import skopeo
from tests.support.schema1 import Schema1Front
from tests.support.world import World, git, write_config

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def recorded(world: World, image: str, tag: str) -> str:
    images = world.state()["images"]
    assert isinstance(images, dict)
    digest: str = images[image]["tags"][tag]["digest"]
    return digest


def changelog_lines(world: World, prefix: str) -> list[str]:
    text = world.remote_file("state/CHANGELOG.md")
    return [line for line in text.splitlines() if line.startswith(prefix)]


def commits(world: World) -> int:
    return int(git("rev-list", "--count", "main", cwd=world.remote).strip())


def seeded_and_synced(world: World) -> None:
    f = ImageFactory(world.ns)
    world.seed("app", "v1", f.image("app-1"))
    world.seed("app", "v2", f.image("app-2"))
    first = world.run("sync")
    assert first.returncode == 0, first.stdout + first.stderr


def delete_in_mirror(world: World, tag: str) -> None:
    with Seeder(world.mirror.url, CREDS) as seeder:
        seeder.delete_tag_target(f"{world.mirror_ns}/app", tag)


def mirror_digest(world: World, tag: str) -> str:
    return skopeo.manifest_digest(f"{world.mirror.host}/{world.mirror_ns}/app:{tag}", CREDS)


def test_verify_repair_copies_a_deleted_tag_back(world: World) -> None:
    seeded_and_synced(world)
    digest = recorded(world, "app", "v2")
    delete_in_mirror(world, "v2")

    repaired = world.run("verify", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert f"{world.mirror_ns}/app:v2: missing from the mirror" in repaired.stdout
    assert "repaired 1 tags, 0 not repaired" in repaired.stdout
    assert mirror_digest(world, "v2") == digest
    assert recorded(world, "app", "v2") == digest
    [line] = changelog_lines(world, "- repaired:")
    assert f"/{world.ns}/app:v2` → `{world.mirror.host}/{world.mirror_ns}/app:v2`" in line
    clean = world.run("verify")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "verified 2 tags: 0 drifted" in clean.stdout


@pytest.mark.slow(seconds=9)
def test_sync_repair_fixes_the_hole_in_one_run(world: World) -> None:
    seeded_and_synced(world)
    digest = recorded(world, "app", "v1")
    delete_in_mirror(world, "v1")
    plain = world.run("sync")
    assert plain.returncode == 0
    assert world.run("verify").returncode == 1  # a plain sync leaves the hole

    fixed = world.run("sync", "--repair")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "repaired:" in fixed.stdout
    assert re.search(r"tags repaired +1\n", fixed.stdout), fixed.stdout
    assert mirror_digest(world, "v1") == digest
    assert len(changelog_lines(world, "- repaired:")) == 1
    assert world.run("verify").returncode == 0
    before = commits(world)
    again = world.run("sync", "--repair")
    assert again.returncode == 0, again.stdout + again.stderr
    assert commits(world) == before  # nothing to repair: no commit


def test_repair_takes_what_upstream_has_now_and_says_so(world: World) -> None:
    seeded_and_synced(world)
    old = recorded(world, "app", "v1")
    moved = ImageFactory(world.ns).image("app-1-rebuilt")
    world.seed("app", "v1", moved)  # v1 is immutable: a plain sync does not look again
    delete_in_mirror(world, "v1")

    repaired = world.run("verify", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "upstream moved on" in repaired.stdout
    assert mirror_digest(world, "v1") == moved.digest
    assert recorded(world, "app", "v1") == moved.digest
    [line] = changelog_lines(world, "- updated:")
    assert f"was sha256:{old.removeprefix('sha256:')[:8]}" in line
    assert changelog_lines(world, "- repaired:") == []
    assert world.run("verify").returncode == 0


def test_deep_repair_puts_back_a_blob_deleted_from_the_mirror(world: World) -> None:
    f = ImageFactory(world.ns)
    image = f.image("app-1")
    world.seed("app", "v1", image)
    assert world.run("sync").returncode == 0
    layer = image.blobs[-1].digest
    with Seeder(world.mirror.url, CREDS) as seeder:
        seeder.delete_blob(f"{world.mirror_ns}/app", layer)
    assert world.run("verify").returncode == 0  # the manifest is there: a HEAD cannot tell
    damaged = world.run("verify", "--deep")
    assert damaged.returncode == 1
    assert "content damaged" in damaged.stdout

    repaired = world.run("verify", "--deep", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert len(changelog_lines(world, "- repaired:")) == 1
    assert world.run("verify", "--deep").returncode == 0


def test_what_cannot_be_repaired_fails_with_one_line_each(world: World) -> None:
    seeded_and_synced(world)
    delete_in_mirror(world, "v1")
    delete_in_mirror(world, "v2")
    with Seeder(world.upstream.url) as seeder:
        seeder.delete_tag_target(f"{world.ns}/app", "v2")  # gone upstream too

    result = world.run("verify", "--repair")
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("not repaired:")]
    assert len(failed) == 1, result.stdout
    assert f"{world.mirror_ns}/app:v2" in failed[0]
    assert "repaired 1 tags, 1 not repaired" in result.stdout
    assert len(changelog_lines(world, "- repaired:")) == 1  # v1 still came back
    assert world.run("verify").returncode == 1


# -- schema1: skipped once, with the reason ------------------------------------------


@pytest.fixture
def schema1_front(world: World) -> Iterator[Schema1Front]:
    with Schema1Front(world.upstream, f"{world.ns}/app", "old") as front:
        yield front


@pytest.mark.hostile("registry answers (manifests, bodies, headers)")
def test_a_schema1_tag_is_skipped_once_and_not_asked_for_again(
    world: World, schema1_front: Schema1Front
) -> None:
    f = ImageFactory(world.ns)
    world.seed("app", "v1", f.image("app-1"))
    world.seed("app", "old", f.image("app-old"))  # listed; the front serves it as schema1
    write_config(world, source=f"{schema1_front.host}/{world.ns}")

    first = world.run("sync")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "skipped (unsupported)" in first.stdout
    assert "failed:" not in first.stdout
    state = json.loads(world.remote_file(f"state/{schema1_front.host}/{world.ns}.json"))
    record = state["skipped"]["app"]["old"]
    assert record["digest"] == schema1_front.digest
    assert "schema1" in record["reason"]
    [line] = changelog_lines(world, "- skipped (unsupported):")
    assert f"/{world.ns}/app:old`" in line
    assert set(state["images"]["app"]["tags"]) == {"v1"}

    before, mark = commits(world), len(schema1_front.requests)
    second = world.run("sync")
    assert second.returncode == 0, second.stdout + second.stderr
    assert schema1_front.asked_for_it(mark) == []
    assert commits(world) == before

    mark = len(schema1_front.requests)
    retried = world.run("sync", "--retry-skipped")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert schema1_front.asked_for_it(mark) != []
    assert "skipped (unsupported)" in retried.stdout
    assert commits(world) == before  # same digest, same reason: nothing new to record


# -- state and planner: the additive field ----------------------------------------------

RECORD = TagRecord(
    DIGEST_A, "application/vnd.oci.image.manifest.v1+json", (), 1, "2026-11-30T00:00:00Z"
)


def test_state_without_skipped_loads_and_writes_the_same_bytes() -> None:
    state = NamespaceState("r.example/ns", "m.example/x")
    state.record("app", "m.example/x/app", "v1", RECORD)
    text = state.to_json()
    assert "skipped" not in text
    assert NamespaceState.from_json(text, "old.json").to_json() == text


def test_skipped_round_trips_sorted_and_a_copy_clears_it() -> None:
    state = NamespaceState("r.example/ns", "m.example/x")
    state.skip("app", "old", SkipRecord("schema1", DIGEST_B, "2026-11-30T00:00:00Z"))
    text = state.to_json()
    assert '"skipped": {\n    "app": {\n      "old": {\n        "digest"' in text
    loaded = NamespaceState.from_json(text, "s.json")
    assert loaded.skipped_record("app", "old") == SkipRecord(
        "schema1", DIGEST_B, "2026-11-30T00:00:00Z"
    )
    loaded.record("app", "m.example/x/app", "old", RECORD)  # copied after all (--retry-skipped)
    assert loaded.skipped == {}
    assert "skipped" not in loaded.to_json()


@pytest.mark.parametrize(
    "document",
    [
        '{"version": 1, "source": "r.example/ns", "mirror": "m", "skipped": []}',
        '{"version": 1, "source": "r.example/ns", "mirror": "m", "skipped": {"app": {"v": 1}}}',
        '{"version": 1, "source": "r.example/ns", "mirror": "m", "skipped": {"../x": {}}}',
    ],
)
def test_a_malformed_skipped_field_is_named(document: str) -> None:
    with pytest.raises(StateError):
        NamespaceState.from_json(document, "s.json")


class _All:
    signatures = False

    def tag_selected(self, tag: str) -> bool:
        return True

    def is_mutable(self, tag: str) -> bool:
        return False


def _plan(state: NamespaceState, digest: str | None, *, retry: bool = False) -> list[str]:
    listing = Listing("r.example/ns", (ListedRepository("app", (ListedTag("old", digest),)),), ())
    plan = plan_namespace(
        _All(), listing, state, mirror="m.example/x", targets={"app": "x/app"}, retry_skipped=retry
    )
    return [item.tag for item in plan.items]


def test_planner_leaves_a_skipped_tag_alone_until_its_digest_changes() -> None:
    state = NamespaceState("r.example/ns", "m.example/x")
    state.skip("app", "old", SkipRecord("schema1", DIGEST_A, "2026-11-30T00:00:00Z"))
    assert _plan(state, None) == []
    assert _plan(state, DIGEST_A) == []
    assert _plan(state, DIGEST_B) == ["old"]
    assert _plan(state, None, retry=True) == ["old"]


@pytest.mark.parametrize(
    "args",
    [
        ("sync", "--repair", "--dry-run"),
        ("sync", "--repair", "--shard", "1/2"),
        ("sync", "--repair", "--images", "rules.yaml"),
        ("sync", "--retry-skipped", "--images", "rules.yaml"),
        ("verify", "--no-push"),
    ],
)
def test_repair_flags_that_do_not_apply_are_usage_errors(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mirrorbot", *args, "--config", str(tmp_path / "none.yaml")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: --"), line


class _Mutable(_All):
    def is_mutable(self, tag: str) -> bool:
        return True


def test_a_skipped_mutable_tag_is_re_checked_with_a_head() -> None:
    state = NamespaceState("r.example/ns", "m.example/x")
    state.skip("app", "latest", SkipRecord("schema1", DIGEST_A, "2026-11-30T00:00:00Z"))
    listing = Listing("r.example/ns", (ListedRepository("app", (ListedTag("latest"),)),), ())
    assert tags_to_recheck(_Mutable(), listing, state) == [("app", "latest")]
    assert tags_to_recheck(_All(), listing, state) == []  # immutable: no request at all


def test_a_skipped_change_survives_a_shard_fragment() -> None:
    change = Change(
        kind="skipped",
        namespace="r.example/ns",
        mirror="m.example/x",
        image="app",
        tag="old",
        upstream="r.example/ns/app:old",
        target_repository="m.example/x/app",
        record=TagRecord(DIGEST_A, "", (), 0, "2026-11-30T00:00:00Z"),
        reason="schema1",
    )
    again = Change.from_json(change.to_json())
    assert again == change
    assert again.skip_record() == SkipRecord("schema1", DIGEST_A, "2026-11-30T00:00:00Z")
