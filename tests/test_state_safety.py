"""Files in the state repository are data, never links (issue 11, item 1 and the state parts of 8).

A pull request can commit anything to the metadata repository. The end-to-end
tests here commit the hostile file to the real bare remote, as a merged pull
request would, and run the real ``mirrorbot sync``: it must stop with one line
naming the file, exit 1, copy nothing, and leave no secret in any output or
commit.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mirrorbot.demo.corpus import Image, ImageFactory
from mirrorbot.publish import apply_changes
from mirrorbot.state.store import (
    CorruptStateError,
    StateStore,
    UnsafeStatePathError,
    atomic_write,
)
from tests.support.world import World, git
from tests.test_state_publish import D1, WHEN, change

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
    assert {p.name for p in first} == {"google-containers.json", "CHANGELOG.md", "README.md"}
    # No temp file left, files are plain and readable by others (git only tracks +x).
    names = sorted(p.name for p in store.root.rglob("*"))
    assert names == ["CHANGELOG.md", "README.md", "gcr.io", "google-containers.json"]
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
