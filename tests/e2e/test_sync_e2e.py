"""`mirrorbot sync` end to end: real registries, real git, the real command line.

Upstream is the small-page registry; the mirror uses token auth with
credentials from ``${VAR}`` in the config; state goes to a bare git remote that
another clone pushes to behind our back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from mirrorbot.demo.corpus import Image, ImageFactory, signature_tag
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from tests.conftest import CREDS
from tests.support import skopeo
from tests.support.fronts import GcrFront, HubFront
from tests.support.world import World, git, write_config


def corpus(ns: str) -> dict[str, dict[str, Image]]:
    f = ImageFactory(ns)
    base = f.layer("base", 8192)
    pause = f.index("pause-3.9", layers=[base], attestations=True)
    etcd = f.image("etcd-3.5", layers=[base], oci=True)
    return {
        "pause": {
            "3.9": pause,
            "latest": pause,
            signature_tag(pause.digest): f.signature(pause, "pause"),
        },
        "etcd": {"3.5.9": etcd},
        "etcd/backup": {"v1": f.image("backup-1", layers=[base])},
    }


def seed_all(world: World, images: dict[str, dict[str, Image]]) -> None:
    for repository, tags in images.items():
        for tag, image in tags.items():
            world.seed(repository, tag, image)


@pytest.mark.slow(seconds=17)
def test_cold_noop_and_incremental_runs(world: World) -> None:
    images = corpus(world.ns)
    seed_all(world, images)

    cold = world.run("sync")
    assert cold.returncode == 0, cold.stdout + cold.stderr
    state = world.state()
    assert state["source"] == f"{world.upstream.host}/{world.ns}"
    recorded = {
        (name, tag): record["digest"]
        for name, entry in state["images"].items()  # type: ignore[attr-defined]
        for tag, record in entry["tags"].items()
    }
    assert recorded == {(r, t): i.digest for r, tags in images.items() for t, i in tags.items()}
    assert (
        state["images"]["etcd/backup"]["target"]
        == f"{world.mirror.host}/{world.mirror_ns}/etcd_backup"
    )  # type: ignore[index]
    for (repository, tag), digest in recorded.items():
        target = f"{world.mirror.host}/{world.mirror_ns}/{repository.replace('/', '_')}:{tag}"
        assert skopeo.manifest_digest(target, CREDS) == digest, target
    assert CREDS[1] not in cold.stdout + cold.stderr
    changelog = world.remote_file("state/CHANGELOG.md")
    assert changelog.count("- new: ") == 5
    page = f"index/{world.upstream.host}/{world.ns}.md"
    assert f"({page.replace(':', '%3A')})" in world.remote_file("state/README.md")
    namespace_page = world.remote_file(f"state/{page}")
    assert "### `etcd/backup`" in namespace_page
    assert f"`docker pull {world.mirror.host}/{world.mirror_ns}/etcd_backup:v1`" in namespace_page
    commits = git("rev-list", "--count", "main", cwd=world.remote)

    # A no-op run: not one request to the mirror, no commit.
    mark = world.mirror.log_mark()
    noop = world.run("sync")
    assert noop.returncode == 0, noop.stderr
    assert world.mirror.requests(mark) == []
    assert git("rev-list", "--count", "main", cwd=world.remote) == commits

    # Someone edits the metadata repository in between (the push must rebase).
    other = world.tmp / "other-clone"
    git("clone", str(world.remote), str(other), cwd=world.tmp)
    (other / "NOTES.md").write_text("edited by a human\n")
    git("add", "NOTES.md", cwd=other)
    git("commit", "-m", "notes", cwd=other)
    git("push", "origin", "HEAD:main", cwd=other)

    # Upstream retags latest, adds a tag and a repository.
    f = ImageFactory(world.ns + "-2")
    new_latest = f.index("pause-3.10")
    world.seed("pause", "latest", new_latest)
    world.seed("pause", "3.10", new_latest)
    world.seed("coredns", "v1.11", f.image("coredns"))
    mark = world.mirror.log_mark()
    incremental = world.run("sync")
    assert incremental.returncode == 0, incremental.stdout + incremental.stderr
    section = world.remote_file("state/CHANGELOG.md").rsplit("\n## ", 1)[1]
    lines = sorted(line for line in section.splitlines() if line.startswith("- "))
    assert len(lines) == 3, section
    assert lines[0].startswith(f"- new: `{world.upstream.host}/{world.ns}/coredns:v1.11` → ")
    assert lines[1].startswith(f"- new: `{world.upstream.host}/{world.ns}/pause:3.10` → ")
    assert lines[2].startswith(f"- updated: `{world.upstream.host}/{world.ns}/pause:latest` → ")
    assert f"was {images['pause']['latest'].digest[:15]}" in lines[2]
    state = world.state()
    assert state["images"]["pause"]["tags"]["latest"]["digest"] == new_latest.digest  # type: ignore[index]
    assert state["images"]["pause"]["tags"]["3.9"]["digest"] == images["pause"]["3.9"].digest  # type: ignore[index]
    assert "edited by a human" in world.remote_file("NOTES.md")
    # Only the new images' blobs were uploaded: none of the old repositories got a PUT.
    puts = [
        r.uri
        for r in world.mirror.requests(mark)
        if r.method == "PUT" and "/blobs/uploads/" in r.uri
    ]
    assert puts
    assert all("/etcd" not in uri for uri in puts)


def test_a_failing_image_does_not_stop_the_others(world: World) -> None:
    f = ImageFactory(world.ns)
    broken = f.image("broken", layer_size=4096)
    world.seed("good", "v1", f.image("good"))
    world.seed("broken", "v1", broken)
    # Remove one of its blobs from the upstream registry's storage: a permanent failure.
    own_layer = broken.blobs[-1].digest.partition(":")[2]
    blob = (
        world.upstream.storage
        / "docker/registry/v2/blobs/sha256"
        / own_layer[:2]
        / own_layer
        / "data"
    )
    blob.unlink()
    result = world.run("sync")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{world.ns}/broken:v1" in result.stdout
    images = world.state()["images"]
    assert "good" in images  # type: ignore[operator]
    assert "broken" not in images  # type: ignore[operator]


def test_config_errors_exit_2_with_file_and_line(world: World) -> None:
    text = world.config.read_text().replace(
        "    list: catalog\n", "    list: catalog\n    inclde: ['v.*']\n"
    )
    world.config.write_text(text)
    result = world.run("sync")
    assert result.returncode == 2
    assert "mirrorbot.yaml:10: namespaces[0].inclde" in result.stderr
    assert "inclde" in result.stderr
    assert "include" in result.stderr  # the suggestion


def test_name_collision_found_in_listings_fails_those_images(world: World) -> None:
    """Listings (not the config) make the collision: it fails the two images, named
    both, exit 1, and is never a config error that stops every namespace (issue 11).
    Collisions the config alone makes stay config errors (tests/unit/test_config.py)."""
    f = ImageFactory(world.ns)
    world.seed("a/pause", "v1", f.image("a"))
    world.seed("b/pause", "v1", f.image("b"))
    extra = f"  - source: {world.upstream.host}/{world.ns}/b\n    list: catalog\n"
    write_config(world, source=f"{world.upstream.host}/{world.ns}/a", extra_namespace=extra)
    result = world.run("sync")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{world.ns}/a/pause" in result.stderr
    assert f"{world.ns}/b/pause" in result.stderr


@pytest.mark.slow(seconds=9)
def test_verify_catches_a_tag_deleted_behind_our_back(world: World) -> None:
    f = ImageFactory(world.ns)
    world.seed("app", "v1", f.image("app-1"))
    world.seed("app", "v2", f.image("app-2"))
    assert world.run("sync").returncode == 0
    clean = world.run("verify")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "verified 2 tags: 0 drifted" in clean.stdout
    with Seeder(world.mirror.url, CREDS) as seeder:
        seeder.delete_tag_target(f"{world.mirror_ns}/app", "v2")
    drifted = world.run("verify")
    assert drifted.returncode == 1
    assert f"{world.mirror_ns}/app:v2: missing from the mirror" in drifted.stdout


def test_plan_and_dry_run_write_nothing(world: World) -> None:
    world.seed("app", "v1", ImageFactory(world.ns).image("app"))
    mark = world.mirror.log_mark()
    planned = world.run("plan", "--json")
    assert planned.returncode == 0, planned.stderr
    document = json.loads(planned.stdout)
    [namespace] = document["namespaces"]
    assert [(i["kind"], i["tag"]) for i in namespace["items"]] == [("new", "v1")]
    dry = world.run("sync", "--dry-run")
    assert dry.returncode == 0
    assert "would copy" in dry.stdout
    assert world.mirror.requests(mark) == []
    assert git("rev-list", "--count", "main", cwd=world.remote).strip() == "1"


def test_find_after_sync(world: World) -> None:
    world.seed("tools/kubectl", "v1.29", ImageFactory(world.ns).image("kubectl"))
    assert world.run("sync").returncode == 0
    # find reads the state of the configured repository: point it at a fresh clone.
    found = world.run("find", "kubectl")
    assert found.returncode == 0, found.stderr
    assert f"docker pull {world.mirror.host}/{world.mirror_ns}/tools_kubectl:v1.29" in found.stdout
    assert world.run("find", "no-such-image").returncode == 1


@pytest.fixture
def gcr_front(source_registry: LocalRegistry) -> Iterator[GcrFront]:
    with GcrFront(source_registry) as front:
        yield front


@pytest.mark.slow(seconds=11)
def test_sync_through_the_gcr_listing(world: World, gcr_front: GcrFront) -> None:
    images = corpus(world.ns)
    seed_all(world, images)
    write_config(world, source=f"{gcr_front.host}/{world.ns}", listing="gcr")
    first = world.run("sync")
    assert first.returncode == 0, first.stdout + first.stderr
    # The listing's digests are used: no tag is resolved again upstream, every manifest
    # is read by digest.
    by_tag = [
        (method, path)
        for method, path in gcr_front.requests
        if "/manifests/" in path and "/manifests/sha256:" not in path
    ]
    assert by_tag == []
    state = json.loads(world.remote_file(f"state/{gcr_front.host}/{world.ns}.json"))
    assert (
        state["images"]["etcd/backup"]["tags"]["v1"]["digest"] == images["etcd/backup"]["v1"].digest
    )
    # The gcr listing carries digests: a no-op run needs no manifest HEAD upstream either.
    gcr_front.requests.clear()
    again = world.run("sync")
    assert again.returncode == 0
    assert not [path for _, path in gcr_front.requests if "/manifests/" in path]


def test_sync_through_the_docker_hub_listing(world: World, source_registry: LocalRegistry) -> None:
    world.seed("alpine", "3.19", ImageFactory(world.ns).image("alpine"))
    world.seed("busybox", "1.36", ImageFactory(world.ns).image("busybox"))
    with HubFront(source_registry, max_page_size=1) as hub:
        write_config(world, listing="dockerhub")
        text = world.config.read_text().replace(
            "    list: dockerhub\n", f"    list: dockerhub\n    hub_api: {hub.url}\n"
        )
        world.config.write_text(text)
        result = world.run("sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(world.state()["images"]) == {"alpine", "busybox"}  # type: ignore[arg-type]


@pytest.mark.slow(seconds=9)
def test_verify_deep_rereads_blobs_and_catches_damage(world: World) -> None:
    image = ImageFactory(world.ns).index("deep", attestations=True)
    world.seed("deep", "v1", image)
    assert world.run("sync").returncode == 0
    deep = world.run("verify", "--deep")
    assert deep.returncode == 0, deep.stdout + deep.stderr
    unique = len({b.digest for b in image.blobs})
    assert f"verified 1 tags, {unique} blobs" in deep.stdout
    # Damage one layer in the mirror's storage: same size, different bytes.
    layer = image.blobs[-1].digest.partition(":")[2]
    data = world.mirror.storage / "docker/registry/v2/blobs/sha256" / layer[:2] / layer / "data"
    damaged = bytearray(data.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    data.write_bytes(bytes(damaged))
    assert world.run("verify").returncode == 0  # the manifest is intact: a HEAD cannot tell
    caught = world.run("verify", "--deep")
    assert caught.returncode == 1
    assert f"{world.mirror_ns}/deep:v1: content damaged" in caught.stdout
    assert layer in caught.stdout


@pytest.mark.slow(seconds=10)
def test_a_killed_runs_leftovers_are_discarded_and_redone(world: World) -> None:
    f = ImageFactory(world.ns)
    world.seed("app", "v1", f.image("app-1"))
    assert world.run("sync").returncode == 0
    world.seed("app", "v2", f.image("app-2"))
    # Simulate a run killed after writing state but before committing it: the clone is dirty.
    clones = list((world.tmp / "home" / ".cache" / "mirrorbot" / "state-repos").iterdir())
    [clone] = clones
    state_file = clone / "state" / world.upstream.host / f"{world.ns}.json"
    document = json.loads(state_file.read_text())
    document["images"]["app"]["tags"]["v2"] = document["images"]["app"]["tags"]["v1"]
    state_file.write_text(json.dumps(document))
    (clone / "state" / "stray.tmp").write_text("half-written")
    result = world.run("sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "- new: " in world.remote_file("state/CHANGELOG.md").rsplit("\n## ", 1)[1]
    assert ":v2` →" in world.remote_file("state/CHANGELOG.md").rsplit("\n## ", 1)[1]
    assert not (clone / "state" / "stray.tmp").exists()


def test_the_run_report_goes_to_the_github_step_summary(world: World) -> None:
    world.seed("app", "v1", ImageFactory(world.ns).image("summary"))
    summary = world.tmp / "step-summary.md"
    summary.write_text("previous step\n")
    result = world.run("sync", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 0, result.stderr
    text = summary.read_text()
    assert text.startswith("previous step\n## mirrorbot sync")  # appended, not overwritten
    assert "| tags new (copied) | 1 |" in text
    assert "tags new (copied)" in result.stdout  # plain text on a non-terminal stdout


@pytest.mark.slow(seconds=9)
def test_a_no_push_commit_is_kept_and_pushed_by_the_next_run(world: World) -> None:
    f = ImageFactory(world.ns)
    world.seed("app", "v1", f.image("np-1"))
    local = world.run("sync", "--no-push")
    assert local.returncode == 0, local.stderr
    assert "committed" in local.stdout
    assert "pushed" not in local.stdout
    assert git("rev-list", "--count", "main", cwd=world.remote).strip() == "1"
    world.seed("app", "v2", f.image("np-2"))
    again = world.run("sync", "--no-push")  # the first commit must survive this run's fresh start
    assert again.returncode == 0, again.stderr
    pushed = world.run("sync")  # nothing new upstream, but two commits to push
    assert pushed.returncode == 0, pushed.stderr
    assert git("rev-list", "--count", "main", cwd=world.remote).strip() == "3"
    changelog = world.remote_file("state/CHANGELOG.md")
    assert changelog.count(":v1` →") == 1
    assert changelog.count(":v2` →") == 1


def test_a_cold_sync_asks_the_target_nothing_it_can_know(world: World) -> None:
    f = ImageFactory(world.ns)
    base = f.layer("cold-base", 4096)
    world.seed("a", "v1", f.index("cold-a", layers=[base], attestations=True))
    world.seed("a", "v2", f.image("cold-a2", layers=[base]))
    world.seed("b", "v1", f.image("cold-b", layers=[base]))
    mark = world.mirror.log_mark()
    assert world.run("sync").returncode == 0
    logged = [r for r in world.mirror.requests(mark) if r.user_agent.startswith("mirrorbot/")]
    heads = [r for r in logged if r.method == "HEAD"]
    assert heads == []  # fresh repositories: one tags/list each instead of a HEAD per tag/blob
    tag_lists = [r for r in logged if r.method == "GET" and r.uri.endswith("/tags/list")]
    assert len(tag_lists) == 2
