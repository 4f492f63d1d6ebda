"""``backup:`` keeps a moved mutable tag's old image; ``prune:`` deletes tags gone upstream."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from mirrorbot.config import NamespaceSettings
from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.demo.seed import Seeder
from mirrorbot.domain.changes import Change, apply_changes, pending_changes
from mirrorbot.domain.prune import Pruner, plan_prune
from mirrorbot.domain.shards import change_from_fragment
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.registry.retry import RetryPolicy
from mirrorbot.errors import InvalidFragmentRecordError
from mirrorbot.state.store import NamespaceState, StateStore, TagRecord
from tests.conftest import CREDS
from tests.support import skopeo
from tests.support.world import World, git

TEMPLATE = "{tag}-{date}-{short}"


def _configure(world: World, *, prune: bool) -> None:
    text = world.config.read_text()
    extra = f'    backup: "{TEMPLATE}"\n' + ("    prune: true\n" if prune else "")
    world.config.write_text(text.replace("    list: catalog\n", "    list: catalog\n" + extra, 1))


def _tags(world: World, image: str) -> dict[str, Any]:
    tags: dict[str, Any] = world.state()["images"][image]["tags"]  # type: ignore[index]
    return tags


def _commits(world: World) -> int:
    return int(git("rev-list", "--count", "main", cwd=world.remote))


def _mirror(world: World, image: str) -> str:
    return f"{world.mirror.host}/{world.mirror_ns}/{image}"


def _backup_tag(tag: str, record: dict[str, Any]) -> str:
    return f"{tag}-{record['synced'][:10].replace('-', '')}-{record['digest'][7:19]}"


def _ok(result: Any) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_moved_latest_leaves_a_backup_tag(world: World) -> None:
    _configure(world, prune=False)
    f = ImageFactory(world.ns)
    world.seed("app", "latest", f.image("one"))
    _ok(world.run("sync"))
    old = _tags(world, "app")["latest"]
    world.seed("app", "latest", f.image("two"))

    _ok(world.run("sync"))

    backup = _backup_tag("latest", old)
    tags = _tags(world, "app")
    assert tags[backup]["digest"] == old["digest"]
    assert tags[backup]["backupOf"] == "latest"
    assert tags["latest"]["digest"] != old["digest"]
    mirror = _mirror(world, "app")
    assert skopeo.manifest_digest(f"{mirror}:{backup}", CREDS) == old["digest"]
    assert skopeo.manifest_digest(f"{mirror}:latest", CREDS) == tags["latest"]["digest"]
    changelog = world.remote_file("state/CHANGELOG.md")
    [line] = [line for line in changelog.splitlines() if line.startswith("- backup:")]
    assert line.startswith(f"- backup: `{mirror}:latest` (sha256:{old['digest'][7:15]}")
    assert line.endswith(f"kept as `{mirror}:{backup}`")

    # The backup tag is the mirror's own: never "gone upstream", a re-run commits nothing.
    commits = _commits(world)
    _ok(world.run("sync"))
    assert _commits(world) == commits
    assert "goneUpstream" not in _tags(world, "app")[backup]


def test_a_failed_backup_leaves_latest_alone(world: World) -> None:
    """The mirror lost the old image: no backup can be made, so latest is not overwritten."""
    _configure(world, prune=False)
    f = ImageFactory(world.ns)
    world.seed("app", "latest", f.image("one"))
    _ok(world.run("sync"))
    old = _tags(world, "app")["latest"]["digest"]
    with Seeder(world.mirror.url, CREDS) as seeder:
        seeder.delete_tag_target(f"{world.mirror_ns}/app", "latest")
    world.seed("app", "latest", f.image("two"))

    failed = world.run("sync")

    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "backup" in failed.stdout + failed.stderr
    assert _tags(world, "app")["latest"]["digest"] == old
    assert "latest" not in skopeo.list_tags(_mirror(world, "app"), CREDS)


def test_prune_deletes_only_gone_tags_never_one_a_backup_shares(world: World) -> None:
    _configure(world, prune=True)
    f = ImageFactory(world.ns)
    world.seed("app", "v1", f.image("a"))
    world.seed("app", "v2", f.image("b"))
    shared = f.image("c")
    world.seed("app", "v3", shared)
    world.seed("app", "latest", shared)
    _ok(world.run("sync"))
    old_latest = _tags(world, "app")["latest"]
    world.seed("app", "latest", f.image("d"))
    _ok(world.run("sync"))  # latest moves: its old image (v3's) is kept as a backup tag
    backup = _backup_tag("latest", old_latest)
    with Seeder(world.upstream.url) as seeder:
        seeder.delete_tag_target(f"{world.ns}/app", "v2")
        seeder.delete_tag_target(f"{world.ns}/app", "v3")
    mirror = _mirror(world, "app")
    commits = _commits(world)

    dry = world.run("sync", "--dry-run")

    _ok(dry)
    assert "would prune" in dry.stdout
    assert f"{mirror}:v2" in dry.stdout
    assert f"{mirror}:v3" not in dry.stdout.split("would prune")[1].split("warnings:")[0]
    assert f"{mirror}:v3: not pruned: backup tag {backup}" in dry.stdout
    assert _commits(world) == commits
    assert "v2" in skopeo.list_tags(mirror, CREDS)

    _ok(world.run("sync"))

    tags = _tags(world, "app")
    assert "v2" not in tags
    assert "goneUpstream" in tags["v3"]  # kept: the backup holds the same image
    assert set(skopeo.list_tags(mirror, CREDS)) == {"v1", "v3", "latest", backup}
    changelog = world.remote_file("state/CHANGELOG.md")
    pruned = [line for line in changelog.splitlines() if line.startswith("- pruned:")]
    assert len(pruned) == 1
    assert f"`{mirror}:v2`" in pruned[0]

    commits = _commits(world)
    _ok(world.run("sync"))
    assert _commits(world) == commits  # nothing more to prune, nothing to say


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{tag}-{when}", "unknown placeholder {when}"),
        ("{tag}-{short", "unbalanced"),
        ("{tag}-old", "needs {short} or {date}"),
        ("-{tag}-{short}", "not a tag"),
        ("x" * 120 + "{tag}-{short}", "not a tag"),
    ],
)
def test_a_bad_backup_template_is_refused_at_load(template: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("{", r"\{")):
        NamespaceSettings(source="r.example/ns", backup=template)


DIGEST = "sha256:" + "c" * 64


def _record(digest: str, backup_of: str | None = None) -> TagRecord:
    return TagRecord(
        digest,
        "application/vnd.oci.image.manifest.v1+json",
        (),
        10,
        "2026-11-30T00:00:00Z",
        backup_of=backup_of,
    )


def test_gone_tags_sharing_a_digest_go_together_unless_a_live_tag_holds_it() -> None:
    state = NamespaceState("r.example/ns", "m.example/x")
    for tag in ("a", "b"):
        state.record("app", "m.example/x/app", tag, _record(DIGEST))
    state.record("app", "m.example/x/app", "live", _record("sha256:" + "d" * 64))
    state.record("app", "m.example/x/app", "c", _record("sha256:" + "d" * 64))
    plan = plan_prune(state, [("app", "a"), ("app", "b"), ("app", "c")])
    assert [(c.digest, [t for t, _ in c.tags]) for c in plan.deletes] == [(DIGEST, ["a", "b"])]
    assert plan.kept == [
        f"m.example/x/app:c: not pruned: tag live holds the same image ({'sha256:' + 'd' * 12})"
    ]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(405),
        httpx.Response(400, json={"errors": [{"code": "UNSUPPORTED", "message": "no"}]}),
    ],
)
def test_a_registry_that_does_not_delete_is_said_once_and_state_stays(
    answer: httpx.Response,
) -> None:
    """Docker Hub's registry API refuses DELETE: one line, and the rest is not tried."""
    requests: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        requests.append(request.method)
        return answer

    state = NamespaceState("r.example/ns", "hub.example/x")
    state.record("app", "hub.example/x/app", "a", _record(DIGEST))
    state.record("app", "hub.example/x/app", "b", _record("sha256:" + "d" * 64))
    plan = plan_prune(state, [("app", "a"), ("app", "b")])

    async def run() -> list[str | None]:
        async with RegistryClient(
            "hub.example",
            transport=httpx.MockTransport(refuse),
            retry=RetryPolicy(attempts=1),
        ) as client:
            pruner = Pruner()
            return [await pruner.delete(client, "hub.example", c) for c in plan.deletes]

    first, second = asyncio.run(run())
    assert first == "hub.example: does not delete manifests (prune skipped, state unchanged)"
    assert second == ""
    assert requests == ["DELETE"]


def _change(kind: str, tag: str, record: TagRecord) -> Change:
    return Change(
        kind=kind,  # type: ignore[arg-type]
        namespace="r.example/ns",
        mirror="m.example/x",
        image="app",
        tag=tag,
        upstream=f"r.example/ns/app:{tag}",
        target_repository="m.example/x/app",
        record=record,
    )


@pytest.mark.hostile("shard fragments")
@pytest.mark.parametrize(
    ("kind", "backup_of", "accepted"),
    [
        ("backup", "latest", True),
        ("pruned", None, True),
        ("backup", None, False),
        ("new", "latest", False),
        ("backup", "-bad tag", False),
    ],
)
def test_fragments_carry_backups_and_prunes(
    kind: str, backup_of: str | None, accepted: bool
) -> None:
    document = _change(kind, "latest-20261130-cccccccccccc", _record(DIGEST)).to_json()
    if backup_of is not None:
        document["record"]["backupOf"] = backup_of
    if accepted:
        assert change_from_fragment(document).record.backup_of == backup_of
    else:
        with pytest.raises(InvalidFragmentRecordError):
            change_from_fragment(document)


def test_backups_and_prunes_are_published_once(tmp_path: Any) -> None:
    store = StateStore(tmp_path / "state")
    state = NamespaceState("r.example/ns", "m.example/x")
    state.record("app", "m.example/x/app", "v2", _record(DIGEST))
    store.save(state)
    backup = _change("backup", "latest-20261130-cccccccccccc", _record(DIGEST, "latest"))
    pruned = _change("pruned", "v2", _record(DIGEST))
    assert pending_changes(store, [backup, pruned]) == [backup, pruned]
    apply_changes(store, [backup, pruned], dt.datetime(2026, 11, 30, tzinfo=dt.UTC))
    assert store.load("r.example/ns", "m.example/x").lookup("app", "v2") is None
    assert pending_changes(store, [backup, pruned]) == []
