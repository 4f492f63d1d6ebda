"""Runs that overlap, repeat or start from another branch, end to end.

Two runners (or ``notify`` and the cron on one host, sharing the clone cache)
sync against the same state remote at once; ``publish`` runs twice with the
same fragments; a re-run shard reports, from an old state, tags that are
already recorded: each tag gets exactly one CHANGELOG line. A sync from a
feature-branch checkout pushes only state, on top of the remote's main.
Real registries, real git, the real command line.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from mirrorbot.demo.corpus import ImageFactory
from tests.support.world import World, git


def changelog_lines(world: World) -> list[str]:
    text = world.remote_file("state/CHANGELOG.md")
    return [line for line in text.splitlines() if line.startswith("- ")]


def mirror_commits(world: World) -> int:
    return int(git("rev-list", "--count", "main", cwd=world.remote).strip()) - 1


def start_sync(world: World, home: str) -> subprocess.Popen[str]:
    home_dir = world.tmp / home
    return subprocess.Popen(
        world.command("sync"),
        env=world.environment({"HOME": str(home_dir), "DOCKER_CONFIG": str(home_dir / ".docker")}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def test_overlapping_syncs_record_each_tag_once(world: World) -> None:
    f = ImageFactory(world.ns)
    tags = {("app", "v1"), ("app", "v2"), ("tool", "v1")}
    for repository, tag in sorted(tags):
        world.seed(repository, tag, f.image(f"{repository}-{tag}"))
    # Two on one host (one clone cache: cron and notify), one on another runner.
    runs = [start_sync(world, home) for home in ("host-a", "host-a", "host-b")]
    results = [run.communicate(timeout=300) for run in runs]
    for run, (out, errors) in zip(runs, results, strict=True):
        assert run.returncode == 0, out + errors
        assert "index.lock" not in errors
    lines = changelog_lines(world)
    assert len(lines) == len(tags), lines
    for repository, tag in tags:
        assert sum(f"/{world.ns}/{repository}:{tag}` →" in line for line in lines) == 1
    assert all(line.startswith("- new: ") for line in lines)
    images = world.state()["images"]
    assert {(r, t) for r, entry in images.items() for t in entry["tags"]} == tags  # type: ignore[attr-defined]
    assert 1 <= mirror_commits(world) <= 3


@pytest.mark.slow(seconds=9)
def test_publish_twice_and_a_rerun_shard_from_the_old_state_add_nothing_twice(
    world: World,
) -> None:
    f = ImageFactory(world.ns)
    world.seed("app", "v1", f.image("app-1"))
    world.seed("app", "latest", f.image("app-1"))
    shard = world.run("sync", "--no-push", "--output", str(world.tmp / "first"))
    assert shard.returncode == 0, shard.stdout + shard.stderr

    published = world.run("publish", str(world.tmp / "first"))
    assert published.returncode == 0, published.stdout + published.stderr
    assert mirror_commits(world) == 1
    # "Re-run failed jobs" runs publish again with the same fragments.
    again = world.run("publish", str(world.tmp / "first"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "committed" not in again.stdout
    assert mirror_commits(world) == 1
    assert len(changelog_lines(world)) == 2

    # A re-run shard, started from the SHA before that publish, on a fresh runner:
    # it sees every tag as new, plus one upstream added since.
    world.seed("app", "v2", f.image("app-2"))
    old = git("rev-parse", "main^", cwd=world.remote).strip()
    rerun_remote = world.tmp / "old-state.git"
    git("clone", "--bare", "--quiet", str(world.remote), str(rerun_remote), cwd=world.tmp)
    git("update-ref", "refs/heads/main", old, cwd=rerun_remote)
    config = world.config.read_text()
    world.config.write_text(config.replace(str(world.remote), str(rerun_remote)))
    rerun = world.run("sync", "--no-push", "--output", str(world.tmp / "rerun"))
    world.config.write_text(config)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    (fragment,) = (world.tmp / "rerun").glob("fragment-*.json")
    reported = json.loads(fragment.read_text())["changes"]
    assert sorted(c["tag"] for c in reported) == ["latest", "v1", "v2"]  # from the old state

    published = world.run("publish", str(world.tmp / "rerun"))
    assert published.returncode == 0, published.stdout + published.stderr
    assert mirror_commits(world) == 2
    lines = changelog_lines(world)
    assert len(lines) == 3, lines
    assert sum(f"/{world.ns}/app:v2` →" in line for line in lines) == 1
    assert sum(f"/{world.ns}/app:v1` →" in line for line in lines) == 1


def test_a_sync_from_a_feature_branch_pushes_only_state_onto_main(world: World) -> None:
    world.seed("app", "v1", ImageFactory(world.ns).image("feature-1"))
    checkout = world.tmp / "checkout"
    git("clone", "--quiet", str(world.remote), str(checkout), cwd=world.tmp)
    git("checkout", "-q", "-b", "feature", cwd=checkout)
    config = checkout / "mirrorbot.yaml"
    config.write_text(world.config.read_text().replace(f"repo: {world.remote}", "repo: ."))
    (checkout / "NOTES.md").write_text("unreviewed\n")
    git("add", "mirrorbot.yaml", "NOTES.md", cwd=checkout)
    git("commit", "-q", "-m", "unreviewed feature", cwd=checkout)
    feature = git("rev-parse", "HEAD", cwd=checkout).strip()
    tip = git("rev-parse", "main", cwd=world.remote).strip()
    world.config = config

    result = world.run("sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert git("rev-parse", "main^", cwd=world.remote).strip() == tip
    assert git("rev-list", "main", cwd=world.remote).split().count(feature) == 0
    changed = git("diff", "--name-only", "main^", "main", cwd=world.remote).split()
    assert set(changed) == {
        "state/CHANGELOG.md",
        "state/README.md",
        f"state/index/{world.upstream.host}/{world.ns}.md",
        f"state/{world.upstream.host}/{world.ns}.json",
    }
    assert "refs/heads/feature" not in git("ls-remote", str(world.remote), cwd=world.tmp)
    # The checkout is as it was: on the feature branch, clean, no state files in it.
    assert git("rev-parse", "HEAD", cwd=checkout).strip() == feature
    assert git("status", "--porcelain", cwd=checkout) == ""
    assert not (checkout / "state").exists()
