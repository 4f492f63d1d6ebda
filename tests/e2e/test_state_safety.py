"""Files in the state repository are data, never links (issue 11, item 1 and the state parts of 8).

A pull request can commit anything to the metadata repository. The end-to-end
tests here commit the hostile file to the real bare remote, as a merged pull
request would, and run the real ``mirrorbot sync``: it must stop with one line
naming the file, exit 1, copy nothing, and leave no secret in any output or
commit.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mirrorbot.demo.corpus import Image, ImageFactory
from mirrorbot.domain.changes import apply_changes
from mirrorbot.domain.shards import Fragment, change_from_fragment, read_fragments
from mirrorbot.errors import (
    CorruptStateError,
    FragmentError,
    InvalidFragmentRecordError,
    StateError,
    UnsafeStatePathError,
)
from mirrorbot.state.store import StateStore, atomic_write
from tests.support.world import World, git
from tests.unit.test_state_publish import D1, WHEN, change

FAKE_TOKEN = "dckr_pat_FakeSecretNeverPublished0123456789"
NAMESPACE = "gcr.io/google-containers"
MIRROR = "docker.io/gcrxio"


def _secret_file(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.env"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(f"DOCKERHUB_TOKEN={FAKE_TOKEN}\n")
    return secret


# -- the store and apply_changes, on a plain folder ------------------------------------------


@pytest.mark.hostile("state files")
def test_a_symlinked_changelog_is_refused_and_its_target_never_read(tmp_path: Path) -> None:
    secret = _secret_file(tmp_path)
    store = StateStore(tmp_path / "repo" / "state")
    store.root.mkdir(parents=True)
    (store.root / "CHANGELOG.md").symlink_to(secret)
    with pytest.raises(UnsafeStatePathError) as caught:
        apply_changes(store, [change("new", "3.9", D1)], WHEN)
    assert str(caught.value).startswith("state/CHANGELOG.md is a symlink, not a regular file")
    assert "\n" not in str(caught.value)
    assert FAKE_TOKEN not in str(caught.value)
    # Nothing was written, the link was not replaced, its target not touched.
    assert (store.root / "CHANGELOG.md").is_symlink()
    assert sorted(p.name for p in store.root.iterdir()) == ["CHANGELOG.md"]
    assert secret.read_text() == f"DOCKERHUB_TOKEN={FAKE_TOKEN}\n"


@pytest.mark.hostile("state files")
def test_a_symlinked_state_file_is_neither_read_nor_replaced(tmp_path: Path) -> None:
    secret = _secret_file(tmp_path)
    store = StateStore(tmp_path / "repo" / "state")
    link = store.path_for(NAMESPACE)
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    with pytest.raises(
        UnsafeStatePathError, match=r"^state/gcr\.io/google-containers\.json is a symlink"
    ):
        store.load(NAMESPACE, MIRROR)
    with pytest.raises(UnsafeStatePathError):
        list(store.all())
    with pytest.raises(UnsafeStatePathError):
        atomic_write(link, "{}\n")
    assert link.is_symlink()
    assert secret.read_text() == f"DOCKERHUB_TOKEN={FAKE_TOKEN}\n"


@pytest.mark.hostile("state files")
def test_a_state_folder_linking_out_of_the_clone_is_never_written(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "state").symlink_to(outside, target_is_directory=True)
    store = StateStore(repo / "state", boundary=repo)
    with pytest.raises(UnsafeStatePathError, match=r"^state is a symlink, not a directory"):
        apply_changes(store, [change("new", "3.9", D1)], WHEN)
    with pytest.raises(UnsafeStatePathError):
        store.save(store.load(NAMESPACE, MIRROR))
    assert list(outside.iterdir()) == []
    # A link further up, between the clone root and a nested state folder, too.
    (repo / "meta").symlink_to(outside, target_is_directory=True)
    nested = StateStore(repo / "meta" / "state", boundary=repo)
    with pytest.raises(UnsafeStatePathError, match=r"^meta is a symlink"):
        nested.check()
    # And a link inside the state folder to a folder elsewhere.
    real = StateStore(repo / "real", boundary=repo)
    real.root.mkdir()
    (real.root / "gcr.io").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeStatePathError, match=r"^real/gcr\.io is a symlink"):
        real.load(NAMESPACE, MIRROR)
    with pytest.raises(UnsafeStatePathError):
        list(real.all())
    assert list(outside.iterdir()) == []


@pytest.mark.hostile("state files")
def test_a_fifo_under_state_is_refused_without_blocking(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    fifo = store.path_for(NAMESPACE)
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    # Opening a FIFO for reading blocks until a writer comes: no writer ever will.
    with pytest.raises(UnsafeStatePathError, match=r"google-containers\.json is a fifo"):
        store.load(NAMESPACE, MIRROR)
    with pytest.raises(UnsafeStatePathError, match="is a fifo"):
        store.check()


@pytest.mark.hostile("state files")
def test_a_changelog_that_is_a_directory_is_a_named_error(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    (store.root / "CHANGELOG.md").mkdir(parents=True)
    with pytest.raises(UnsafeStatePathError, match=r"^state/CHANGELOG\.md is a directory"):
        store.write_text(store.root / "CHANGELOG.md", "x")
    (store.root / "CHANGELOG.md" / "inner.txt").write_text("x")
    with pytest.raises(UnsafeStatePathError, match=r"^state/CHANGELOG\.md is a directory"):
        apply_changes(store, [change("new", "3.9", D1)], WHEN)


@pytest.mark.hostile("state files")
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"version": 1, "source": "\xff\xfe"}', r"not valid UTF-8 \(byte 26\)"),
        (b"[" * 200_000 + b"]" * 200_000, r"not valid JSON \(nested too deeply\)"),
        (b'{"version": 1, "source": "' + b"9" * 10, "not valid JSON"),
    ],
    ids=["invalid-utf8", "deep-json", "truncated"],
)
def test_corrupt_state_is_a_one_line_named_error(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    store = StateStore(tmp_path / "state")
    path = store.path_for(NAMESPACE)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    for attempt in (lambda: store.load(NAMESPACE, MIRROR), lambda: list(store.all())):
        with pytest.raises(CorruptStateError, match=expected) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith("state/gcr.io/google-containers.json: ")
        assert "\n" not in message
        assert len(message) < 300


@pytest.mark.hostile("state files")
def test_a_huge_state_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    path = store.path_for(NAMESPACE)
    path.parent.mkdir(parents=True)
    with path.open("wb") as handle:  # sparse: costs no disk
        handle.truncate(64 * 1024 * 1024 + 1)
    with pytest.raises(CorruptStateError, match=r"google-containers\.json: larger than 64 MiB"):
        store.load(NAMESPACE, MIRROR)


def test_safe_writes_still_behave_like_atomic_writes(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    first = apply_changes(store, [change("new", "3.9", D1)], WHEN)
    assert {p.relative_to(store.root).as_posix() for p in first} == {
        "gcr.io/google-containers.json",
        "CHANGELOG.md",
        "README.md",
        "index/gcr.io/google-containers.md",
    }
    # No temp file left, files are plain and readable by others (git only tracks +x).
    names = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*"))
    assert names == [
        "CHANGELOG.md",
        "README.md",
        "gcr.io",
        "gcr.io/google-containers.json",
        "index",
        "index/gcr.io",
        "index/gcr.io/google-containers.md",
    ]
    assert atomic_write(store.root / "README.md", (store.root / "README.md").read_text()) is False
    store.check()


# -- the real command line against a real git remote ------------------------------------------


def _commit_to_remote(world: World, make: Callable[[Path], None]) -> None:
    """What a merged pull request does: a commit on main of the metadata repository."""
    clone = world.tmp / "contributor"
    git("clone", str(world.remote), str(clone), cwd=world.tmp)
    make(clone)
    git("add", "-A", cwd=clone)
    git("commit", "-m", "a helpful pull request", cwd=clone)
    git("push", "origin", "HEAD:main", cwd=clone)


def _everything_on_the_remote(world: World) -> str:
    logged = subprocess.run(
        ["git", "log", "-p", "--all", "--format=%H %s%n%b"],
        cwd=world.remote,
        capture_output=True,
        check=True,
    )
    return logged.stdout.decode("utf-8", errors="replace")


def _run_sync(world: World) -> subprocess.CompletedProcess[str]:
    """``mirrorbot sync`` with a token in its environment and a known clone cache."""
    env = {"DOCKERHUB_TOKEN": FAKE_TOKEN, "XDG_CACHE_HOME": str(world.tmp / "cache")}
    return world.run("sync", env=env)


def _assert_refused(world: World, result: subprocess.CompletedProcess[str], expected: str) -> None:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(errors) == 1, result.stderr
    assert expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert FAKE_TOKEN not in result.stdout + result.stderr
    assert FAKE_TOKEN not in _everything_on_the_remote(world)


def _link_changelog_to_environ(clone: Path) -> None:
    (clone / "state").mkdir()
    (clone / "state" / "CHANGELOG.md").symlink_to("/proc/self/environ")


@pytest.mark.hostile("state files")
def test_sync_refuses_a_changelog_linked_to_its_own_environment(world: World) -> None:
    world.seed("pause", "3.9", _image(world))
    _commit_to_remote(world, _link_changelog_to_environ)
    commits = git("rev-list", "--count", "main", cwd=world.remote)
    mark = world.mirror.log_mark()
    result = _run_sync(world)
    _assert_refused(world, result, "state/CHANGELOG.md is a symlink, not a regular file")
    assert git("rev-list", "--count", "main", cwd=world.remote) == commits
    assert world.mirror.requests(mark) == []  # refused before anything was copied


def _image(world: World, name: str = "pause") -> Image:
    return ImageFactory(world.ns).image(name, layer_size=1024)


def _hostile_trees(tmp: Path) -> dict[str, tuple[Callable[[Path], None], str]]:
    secret = _secret_file(tmp)

    def linked_changelog(clone: Path) -> None:
        (clone / "state").mkdir()
        (clone / "state" / "CHANGELOG.md").symlink_to(os.path.relpath(secret, clone / "state"))

    def linked_state_file(clone: Path) -> None:
        (clone / "state" / "gcr.io").mkdir(parents=True)
        (clone / "state" / "gcr.io" / "x.json").symlink_to(secret)

    def linked_folder(clone: Path) -> None:
        (clone / "state").symlink_to(secret.parent, target_is_directory=True)

    def changelog_directory(clone: Path) -> None:
        (clone / "state" / "CHANGELOG.md").mkdir(parents=True)
        (clone / "state" / "CHANGELOG.md" / "x").write_text("x\n")

    return {
        "linked-changelog": (linked_changelog, "state/CHANGELOG.md is a symlink"),
        "linked-state-file": (linked_state_file, "state/gcr.io/x.json is a symlink"),
        "linked-state-folder": (linked_folder, "state is a symlink, not a directory"),
        "changelog-directory": (changelog_directory, "state/CHANGELOG.md is a directory"),
    }


@pytest.mark.hostile("state files")
@pytest.mark.parametrize(
    "case", ["linked-changelog", "linked-state-file", "linked-state-folder", "changelog-directory"]
)
def test_sync_refuses_links_and_folders_committed_under_state(world: World, case: str) -> None:
    world.seed("pause", "3.9", _image(world))
    make, expected = _hostile_trees(world.tmp)[case]
    _commit_to_remote(world, make)
    commits = git("rev-list", "--count", "main", cwd=world.remote)
    before = sorted(p.name for p in (world.tmp / "outside").iterdir())
    result = _run_sync(world)
    _assert_refused(world, result, expected)
    assert git("rev-list", "--count", "main", cwd=world.remote) == commits
    assert sorted(p.name for p in (world.tmp / "outside").iterdir()) == before


@pytest.mark.hostile("state files")
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"version": 1, "source": "\xff"}\n', "x.json: not valid UTF-8"),
        (b"[" * 200_000 + b"]" * 200_000, "x.json: not valid JSON (nested too deeply)"),
    ],
    ids=["invalid-utf8", "deep-json"],
)
def test_sync_names_a_corrupt_state_file_in_one_line(
    world: World, content: bytes, expected: str
) -> None:
    world.seed("pause", "3.9", _image(world))

    def corrupt(clone: Path) -> None:
        path = clone / "state" / world.upstream.host / f"{world.ns}.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(content)

    _commit_to_remote(world, corrupt)
    result = _run_sync(world)
    _assert_refused(world, result, expected.replace("x.json", f"{world.ns}.json"))


@pytest.mark.hostile("state files")
def test_sync_refuses_a_fifo_left_in_its_clone_without_blocking(world: World) -> None:
    world.seed("pause", "3.9", _image(world))
    first = _run_sync(world)
    assert first.returncode == 0, first.stdout + first.stderr
    clones = list((world.tmp / "cache" / "mirrorbot" / "state-repos").iterdir())
    assert len(clones) == 1
    os.mkfifo(clones[0] / "state" / "waiting.json")
    world.seed("pause", "3.10", _image(world, "pause-3.10"))
    env = world.environment(
        {"DOCKERHUB_TOKEN": FAKE_TOKEN, "XDG_CACHE_HOME": str(world.tmp / "cache")}
    )
    result = subprocess.run(
        world.command("sync"),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,  # a blocked open would hang far longer
        check=False,
        stdin=subprocess.DEVNULL,
    )
    _assert_refused(world, result, "state/waiting.json is a fifo, not a regular file")
    assert "3.10" not in world.remote_file("state/CHANGELOG.md")


# -- shard fragments at publish: data to check, never to trust --------------------------------

RUN_TIME = "2026-11-23T03:04:05Z"


def _fragment_document(changes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "version": 1,
        "shard": "1/1",
        "when": RUN_TIME,
        "changes": changes,
        "failures": [],
        "errors": [],
    }


def _good_change() -> dict[str, Any]:
    return change("new", "3.9", D1).to_json()


def _with(path: str, value: object) -> dict[str, Any]:
    """A good change with one field (``record.digest`` reaches into the record) replaced."""
    document = _good_change()
    outer, _, inner = path.partition(".")
    if inner:
        document[outer][inner] = value
    else:
        document[outer] = value
    return document


@pytest.mark.hostile("shard fragments")
@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("tag", "3.9`\n\n<img src=x onerror=alert(1)>", "tag: invalid reference"),
        ("tag", "v1 **bold**", "tag: invalid reference"),
        ("image", "pause](https://evil.example)", "image: invalid reference"),
        ("upstream", "gcr.io/google-containers/pause:3.9\n- new: `x`", "upstream: invalid"),
        ("upstream", "gcr.io/google-containers/other:3.9", "is not pause:3.9"),
        ("targetRepository", "docker.io/gcrxio/<b>pause</b>", "targetRepository: invalid"),
        ("targetRepository", "docker.io/gcrxio/pause:3.9", "has a tag or digest"),
        ("namespace", "gcr.io/Google Containers", "namespace: invalid"),
        ("mirror", "docker.io/`x`", "mirror: invalid"),
        ("kind", "deleted", "is not one of new, updated, skipped, gone, returned"),
        ("previous", "sha256:abc", "previous 'sha256:abc' is not sha256:<64 hex>"),
        ("record.digest", "sha256:" + "A" * 64, "is not sha256:<64 hex>"),
        ("record.digest", "md5:" + "a" * 32, "is not sha256:<64 hex>"),
        ("record.sourceDigest", "sha256:" + "a" * 63, "sourceDigest"),
        ("record.mediaType", "text/html\n<script>", "is not a media type"),
        ("record.platforms", ["linux/amd64", "<svg onload=x>/y"], "not os/arch"),
        ("record.platforms", ["linux/amd64"] * 257, "not os/arch"),
        ("record.size", 10**18, "is not a manifest size"),
        ("record.size", True, "is not a manifest size"),
        ("record.synced", "2026-13-45T99:99:99Z", "is not a real moment"),
        ("record.synced", "<b>now</b>", "is not a UTC timestamp"),
        ("record.extra", "x", "unknown fields"),
    ],
)
def test_a_hostile_fragment_record_is_dropped_and_named(
    field: str, value: object, reason: str
) -> None:
    document = _fragment_document([_with(field, value), _good_change()])
    fragment = Fragment.from_document(document, "fragment-1-of-1.json")
    assert [c.to_json() for c in fragment.changes] == [_good_change()]
    assert len(fragment.rejected) == 1
    line = fragment.rejected[0]
    assert line.startswith("fragment-1-of-1.json: change 1 dropped: "), line
    assert reason in line, line
    assert "\n" not in line
    with pytest.raises(InvalidFragmentRecordError):
        change_from_fragment(_with(field, value))


@pytest.mark.hostile("shard fragments")
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(when="yesterday"), "when 'yesterday' is not a UTC timestamp"),
        (lambda d: d.update(when="2026-02-30T00:00:00Z"), "is not a real moment"),
        (lambda d: d.update(when=None), "when None is not a UTC timestamp"),
        (lambda d: d.update(shard="0/3"), "shard '0/3' is not I/N"),
        (lambda d: d.update(shard="3/2"), "shard '3/2' is not I/N"),
        (lambda d: d.update(shard="1/100000"), "is not I/N"),
        (lambda d: d.update(version=2), "unsupported fragment version 2"),
        (lambda d: d.update(changes={"a": 1}), "changes is not a list"),
        (lambda d: d.update(failures=[{"upstream": 1}]), "failure 1"),
        (lambda d: d.update(errors=[["x"]]), "error 1: not a string"),
    ],
)
def test_a_hostile_fragment_file_is_refused_with_a_named_error(
    mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    document = _fragment_document([_good_change()])
    mutate(document)
    with pytest.raises(FragmentError, match=re.escape(message)) as caught:
        Fragment.from_document(document, "fragment-1-of-1.json")
    assert str(caught.value).startswith("fragment-1-of-1.json: ")
    assert "\n" not in str(caught.value)


@pytest.mark.hostile("shard fragments")
def test_fragment_files_are_plain_bounded_files(tmp_path: Path) -> None:
    secret = _secret_file(tmp_path)
    downloads = tmp_path / "fragments"
    nested = downloads / "fragment-1"
    nested.mkdir(parents=True)
    good = nested / "fragment-1-of-2.json"
    good.write_text(json.dumps(_fragment_document([_good_change()]) | {"shard": "1/2"}))
    # A link to an unrelated place is skipped, never followed ...
    (downloads / "elsewhere").symlink_to(secret.parent, target_is_directory=True)
    assert [f.index for f in read_fragments([downloads])] == [1]
    # ... but a fragment that is a link is refused, whatever it points at.
    (downloads / "fragment-2-of-2.json").symlink_to(secret)
    with pytest.raises(FragmentError, match=r"fragment-2-of-2\.json is a symlink") as caught:
        read_fragments([downloads])
    assert FAKE_TOKEN not in str(caught.value)
    with pytest.raises(FragmentError, match="is a symlink"):
        read_fragments([downloads / "fragment-2-of-2.json"])
    (downloads / "fragment-2-of-2.json").unlink()
    os.mkfifo(downloads / "fragment-2-of-2.json")
    with pytest.raises(FragmentError, match=r"fragment-2-of-2\.json is a fifo"):
        read_fragments([downloads])
    (downloads / "fragment-2-of-2.json").unlink()
    # Size, encoding and nesting are bounded.
    big = downloads / "fragment-2-of-2.json"
    with big.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024 + 1)
    with pytest.raises(FragmentError, match="larger than 64 MiB"):
        read_fragments([downloads])
    big.write_bytes(b"[" * 200_000)
    with pytest.raises(FragmentError, match=r"nested too deeply"):
        read_fragments([downloads])
    big.write_bytes(b'{"version": 1, "when": "\xff"}')
    with pytest.raises(FragmentError, match=r"not valid UTF-8"):
        read_fragments([downloads])


def _publish(world: World, *directories: Path) -> subprocess.CompletedProcess[str]:
    env = {"DOCKERHUB_TOKEN": FAKE_TOKEN, "XDG_CACHE_HOME": str(world.tmp / "cache")}
    return world.run("publish", *(str(d) for d in directories), env=env)


def _genuine_fragment(world: World) -> Path:
    world.seed("pause", "3.9", _image(world))
    output = world.tmp / "fragments"
    shard = world.run(
        "sync", "--shard", "1/1", "--no-push", "--output", str(output), "--run-time", RUN_TIME
    )
    assert shard.returncode == 0, shard.stdout + shard.stderr
    return output / "fragment-1-of-1.json"


@pytest.mark.hostile("shard fragments")
def test_publish_drops_injected_records_and_publishes_the_genuine_ones(world: World) -> None:
    path = _genuine_fragment(world)
    document = json.loads(path.read_text())
    genuine = document["changes"][0]
    injected = json.loads(json.dumps(genuine))
    injected["tag"] = "3.9`\n\n<img src=x onerror=alert(1)>"
    injected["upstream"] = genuine["upstream"].replace(":3.9", ":" + injected["tag"])
    forged = json.loads(json.dumps(genuine))
    forged["tag"] = "forged"
    forged["upstream"] = genuine["upstream"].replace(":3.9", ":forged")
    forged["record"]["digest"] = "sha256:" + "0" * 63 + "Z"
    ghost = json.loads(json.dumps(genuine))  # well-formed, but the mirror never got it
    ghost["tag"] = "ghost"
    ghost["upstream"] = genuine["upstream"].replace(":3.9", ":ghost")
    ghost["record"]["digest"] = "sha256:" + "0" * 64
    document["changes"] = [injected, genuine, forged, ghost]
    path.write_text(json.dumps(document))

    result = _publish(world, path.parent)
    assert result.returncode == 1, result.stdout + result.stderr
    rejected = [line for line in result.stderr.splitlines() if line.startswith("rejected: ")]
    assert len(rejected) == 3, result.stderr
    assert "change 1 dropped: tag: invalid reference" in rejected[0]
    assert "change 3 dropped: digest 'sha256:000" in rejected[1]
    assert rejected[2].endswith("/pause:ghost: not in the mirror; not recorded"), rejected[2]
    changelog = world.remote_file("state/CHANGELOG.md")
    assert changelog.count("- new: ") == 1
    assert f"{world.ns}/pause:3.9` → " in changelog
    assert "<img" not in changelog
    assert "forged" not in changelog
    assert "ghost" not in changelog
    assert set(world.state()["images"]["pause"]["tags"]) == {"3.9"}  # type: ignore[index]
    assert "<img" not in world.remote_file("state/README.md")


@pytest.mark.hostile("shard fragments")
@pytest.mark.parametrize("case", ["bad-timestamp", "linked-fragment"])
def test_publish_refuses_a_hostile_fragment_file_and_commits_nothing(
    world: World, case: str
) -> None:
    path = _genuine_fragment(world)
    if case == "bad-timestamp":
        document = json.loads(path.read_text())
        document["when"] = "2026-11-23 03:04:05<script>"
        path.write_text(json.dumps(document))
        expected = "fragment-1-of-1.json: when '2026-11-23 03:04:05<script>' is not a UTC"
    else:
        real = world.tmp / "outside-fragment.json"
        path.rename(real)
        path.symlink_to(real)
        expected = "fragment-1-of-1.json is a symlink, not a regular file"
    commits = git("rev-list", "--count", "main", cwd=world.remote)
    result = _publish(world, path.parent)
    _assert_refused(world, result, expected)
    assert git("rev-list", "--count", "main", cwd=world.remote) == commits


@pytest.mark.hostile("state files")
@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("target", "docker.io/gcrxio/pause`](https://evil.example)", "target: invalid reference"),
        ("target", "docker.io/gcrxio/pause:3.9", "has a tag or digest"),
        ("digest", "sha256:<b>x</b>", "invalid reference"),
        ("synced", "<script>alert(1)</script>", "is not a timestamp"),
        ("mediaType", "text/html <b>", "is not a media type"),
        ("platforms", ["linux/amd64\n| injected |"], "os/arch"),
        ("source", "gcr.io/google containers", "is not registry[/path]"),
    ],
)
def test_a_state_file_carrying_markup_is_a_named_error(
    tmp_path: Path, path: str, value: object, reason: str
) -> None:
    store = StateStore(tmp_path / "state")
    apply_changes(store, [change("new", "3.9", D1)], WHEN)
    file = store.path_for(NAMESPACE)
    document = json.loads(file.read_text())
    image = document["images"]["pause"]
    if path == "source":
        document["source"] = value
    elif path == "target":
        image["target"] = value
    else:
        image["tags"]["3.9"][path] = value
    file.write_text(json.dumps(document))
    with pytest.raises(StateError, match=re.escape(reason)) as caught:
        list(store.all())
    assert str(caught.value).startswith("state/gcr.io/google-containers.json: ")
    assert "\n" not in str(caught.value)


@pytest.mark.hostile("state files")
def test_find_and_verify_refuse_a_linked_state_file_in_one_line(world: World) -> None:
    secret = _secret_file(world.tmp)

    def linked(clone: Path) -> None:
        (clone / "state" / world.upstream.host).mkdir(parents=True)
        (clone / "state" / world.upstream.host / f"{world.ns}.json").symlink_to(secret)

    _commit_to_remote(world, linked)
    expected = f"state/{world.upstream.host}/{world.ns}.json is a symlink"
    for command, code in (("find", 1), ("verify", 1)):  # issue 11: a named error, exit 1
        args = ("find", "pause") if command == "find" else ("verify",)
        result = world.run(*args, env={"XDG_CACHE_HOME": str(world.tmp / "cache")})
        assert result.returncode == code, result.stdout + result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert expected in result.stderr
        assert FAKE_TOKEN not in result.stdout + result.stderr
