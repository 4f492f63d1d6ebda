"""Scale-out: N shard jobs + publish must equal one unsharded run, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.domain.shards import assign
from tests.support.world import World, git, seeded_remote, write_config

RUN_TIME = "2026-11-23T03:04:05Z"


def test_assignment_balances_by_weight_and_is_deterministic() -> None:
    weights = {"a": 10, "b": 7, "c": 3, "d": 3, "e": 1}
    first = assign(weights, 2)
    assert first == assign(dict(reversed(list(weights.items()))), 2)
    loads = [sum(w for k, w in weights.items() if first[k] == shard) for shard in (1, 2)]
    assert sum(loads) == 24
    assert max(loads) - min(loads) <= max(weights.values())
    assert first["a"] != first["b"]  # the two heaviest never share a shard
    assert set(assign(weights, 8).values()) <= set(range(1, 9))


def _seed_corpus(world: World) -> None:
    f = ImageFactory(world.ns)
    base = f.layer("base", 4096)
    for index in range(6):
        for tag in range(index % 3 + 1):
            image = (
                f.index(f"r{index}-{tag}", layers=[base])
                if index % 2
                else f.image(f"r{index}-{tag}", layers=[base])
            )
            world.seed(f"repo{index}", f"v{tag}", image)


def _files(remote: Path) -> dict[str, str]:
    names = git("ls-tree", "-r", "--name-only", "main", "state", cwd=remote).split()
    return {name: git("show", f"main:{name}", cwd=remote) for name in names}


@pytest.mark.slow(seconds=20)
def test_sharded_run_equals_unsharded_run(world: World) -> None:
    _seed_corpus(world)
    # One unsharded run into the world's remote.
    whole = world.run("sync", "--run-time", RUN_TIME)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    expected = _files(world.remote)
    assert len(expected) == 4  # state file, CHANGELOG.md, README.md, the namespace's index page

    # The same run, sharded, into a second metadata repository (same mirror).
    world.remote = seeded_remote(world.tmp, "sharded.git")
    write_config(world)
    planned = world.run("plan", "--shards", "3", "--json")
    assert planned.returncode == 0, planned.stderr
    document = json.loads(planned.stdout)
    assert document["matrix"] == {"shard": ["1/3", "2/3", "3/3"]}
    assert sorted(document["loads"], reverse=True)[0] - sorted(document["loads"])[0] <= 3
    plan_file = world.tmp / "plan.json"
    plan_file.write_text(planned.stdout)
    for index in (1, 2, 3):
        shard = world.run(
            "sync",
            "--shard",
            f"{index}/3",
            "--assignments",
            str(plan_file),
            "--no-push",
            "--output",
            str(world.tmp / f"fragments-{index}"),
            "--run-time",
            RUN_TIME,
        )
        assert shard.returncode == 0, shard.stdout + shard.stderr
        assert (world.tmp / f"fragments-{index}" / f"fragment-{index}-of-3.json").exists()
    # Shards did not commit anything.
    assert git("rev-list", "--count", "main", cwd=world.remote).strip() == "1"
    published = world.run("publish", *(str(world.tmp / f"fragments-{i}") for i in (1, 2, 3)))
    assert published.returncode == 0, published.stdout + published.stderr
    assert _files(world.remote) == expected
    assert git("rev-list", "--count", "main", cwd=world.remote).strip() == "2"


@pytest.mark.slow(seconds=20)
def test_a_missing_shard_loses_nothing_the_others_did(world: World) -> None:
    _seed_corpus(world)
    for index in (1, 3):  # shard 2 "crashed" and left no fragment
        shard = world.run(
            "sync", "--shard", f"{index}/3", "--no-push", "--output", str(world.tmp / "fragments")
        )
        assert shard.returncode == 0, shard.stderr
    published = world.run("publish", str(world.tmp / "fragments"))
    assert published.returncode == 1
    assert "shard 2 left no fragment" in published.stderr
    recorded = json.loads(world.remote_file(f"state/{world.upstream.host}/{world.ns}.json"))[
        "images"
    ]
    assert 0 < len(recorded) < 6
    # The next ordinary run completes the job.
    assert world.run("sync").returncode == 0
    recorded = json.loads(world.remote_file(f"state/{world.upstream.host}/{world.ns}.json"))[
        "images"
    ]
    assert len(recorded) == 6
