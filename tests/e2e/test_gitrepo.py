"""The metadata repository with real git: bare remotes, concurrent pushers, a token over HTTP."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirrorbot.domain.changes import apply_changes, pending_changes
from mirrorbot.errors import GitError
from mirrorbot.state.gitrepo import MetadataRepo
from mirrorbot.state.store import StateStore
from tests.support.git_http import GitHttpServer
from tests.support.publisher import D1, D2, WHEN, change, publish
from tests.support.world import git, seeded_remote

TOKEN = "ghp_TestTokenNeverOnDisk0123456789"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return seeded_remote(tmp_path, "remote.git")


def remote_file(bare: Path, path: str) -> str:
    return git("show", f"main:{path}", cwd=bare)


def test_clone_commit_push(tmp_path: Path, remote: Path) -> None:
    repo = MetadataRepo.open(
        str(remote), branch="main", base_dir=tmp_path, clone_root=tmp_path / "clones", environ={}
    )
    assert publish(repo, [change("3.9", D1)]) is not None
    assert D1 in remote_file(remote, "state/gcr.io/google-containers.json")
    assert "pause:3.9" in remote_file(remote, "state/CHANGELOG.md")
    # Nothing new: no commit.
    assert repo.commit([repo.root / "state" / "CHANGELOG.md"], "noop") is None


def human_edits_the_config(tmp_path: Path, remote: Path) -> None:
    """Someone else moves the remote on: a commit of their own, pushed."""
    other = tmp_path / "other"
    git("clone", str(remote), str(other), cwd=tmp_path)
    (other / "mirrorbot.yaml").write_text("# edited by a human\n")
    git("add", "mirrorbot.yaml", cwd=other)
    git("commit", "-m", "config", cwd=other)
    git("push", "origin", "HEAD:main", cwd=other)


def test_push_rebases_when_the_remote_moved_elsewhere(tmp_path: Path, remote: Path) -> None:
    repo = MetadataRepo.open(
        str(remote), branch="main", base_dir=tmp_path, clone_root=tmp_path / "clones", environ={}
    )
    human_edits_the_config(tmp_path, remote)
    publish(repo, [change("3.9", D1)])
    log = git("log", "--format=%s", "main", cwd=remote).splitlines()
    assert log[:2] == ["mirror: test", "config"]
    assert "human" in remote_file(remote, "mirrorbot.yaml")


def test_conflicting_runs_reapply_changes_without_loss_or_duplicates(
    tmp_path: Path, remote: Path
) -> None:
    first = MetadataRepo.open(
        str(remote), branch="main", base_dir=tmp_path, clone_root=tmp_path / "a", environ={}
    )
    second = MetadataRepo.open(
        str(remote), branch="main", base_dir=tmp_path, clone_root=tmp_path / "b", environ={}
    )
    publish(first, [change("3.9", D1)])
    # The second run started from the old remote: its CHANGELOG and state edits conflict.
    publish(second, [change("latest", D2), change("v1", D2, image="etcd")])
    state = remote_file(remote, "state/gcr.io/google-containers.json")
    assert D1 in state
    assert D2 in state
    assert '"etcd"' in state
    changelog = remote_file(remote, "state/CHANGELOG.md")
    assert changelog.count("pause:3.9` →") == 1
    assert changelog.count("pause:latest` →") == 1
    assert changelog.count("etcd:v1` →") == 1
    assert changelog.count("## 2026-11-23 03:04 UTC") == 2
    index = remote_file(remote, "state/README.md")
    assert "2 images and 3 tags" in index  # pause (3.9, latest) and etcd (v1), none lost
    page = remote_file(remote, "state/index/gcr.io/google-containers.md")
    assert "### `pause`" in page
    assert "· 2 tags ·" in page


def reopen(tmp_path: Path, remote: Path) -> MetadataRepo:
    return MetadataRepo.open(
        str(remote), branch="main", base_dir=tmp_path, clone_root=tmp_path / "clones", environ={}
    )


def state_file(repo: MetadataRepo) -> Path:
    return repo.root / "state" / "gcr.io" / "google-containers.json"


def test_an_unpushed_commit_is_replayed_onto_the_moved_remote(tmp_path: Path, remote: Path) -> None:
    repo = reopen(tmp_path, remote)
    store = StateStore(repo.root / "state")
    assert repo.commit(apply_changes(store, [change("3.9", D1)], WHEN), "mirror: local") is not None
    human_edits_the_config(tmp_path, remote)

    again = reopen(tmp_path, remote)
    assert again.unpushed() == 1
    assert D1 in state_file(again).read_text()
    assert (again.root / "mirrorbot.yaml").read_text() == "# edited by a human\n"


def test_what_a_killed_run_left_uncommitted_is_discarded(tmp_path: Path, remote: Path) -> None:
    publish(reopen(tmp_path, remote), [change("3.9", D1)])
    killed = reopen(tmp_path, remote)
    state_file(killed).write_text("{half-written")
    (killed.root / "state" / "gcr.io" / "stray.json").write_text("{}")
    git("add", "state", cwd=killed.root)

    again = reopen(tmp_path, remote)
    again.discard_changes(again.root / "state")
    assert D1 in state_file(again).read_text()
    assert not (again.root / "state" / "gcr.io" / "stray.json").exists()
    assert git("status", "--porcelain", cwd=again.root) == ""


def test_a_recreated_remote_does_not_get_old_state_back(tmp_path: Path, remote: Path) -> None:
    publish(reopen(tmp_path, remote), [change("3.9", D1)])
    # The state repository is deleted and created again, empty, at the same place.
    shutil.rmtree(remote)
    git("init", "--bare", "--initial-branch=main", str(remote), cwd=tmp_path)

    again = reopen(tmp_path, remote)
    assert again.head() is None
    assert again.unpushed() == 0
    assert not (again.root / "state").exists()
    publish(again, [change("latest", D2)])
    state = remote_file(remote, "state/gcr.io/google-containers.json")
    assert D2 in state
    assert D1 not in state
    assert git("log", "--format=%s", "main", cwd=remote).splitlines() == ["mirror: test"]


def test_a_rewound_remote_stays_rewound(tmp_path: Path, remote: Path) -> None:
    before = git("rev-parse", "main", cwd=remote).strip()
    publish(reopen(tmp_path, remote), [change("3.9", D1)])
    # Someone resets the state branch to before that run (e.g. the target was wiped).
    git("update-ref", "refs/heads/main", before, cwd=remote)

    again = reopen(tmp_path, remote)
    assert again.head() == before
    assert again.unpushed() == 0
    assert not state_file(again).exists()


@pytest.fixture
def http_remote(tmp_path: Path, remote: Path) -> Iterator[tuple[GitHttpServer, str]]:
    server = GitHttpServer(tmp_path, TOKEN).start()
    try:
        yield server, f"{server.url}/{remote.name}"
    finally:
        server.stop()


def test_token_goes_only_in_a_header(
    tmp_path: Path, remote: Path, http_remote: tuple[GitHttpServer, str]
) -> None:
    server, url = http_remote
    repo = MetadataRepo.open(
        url,
        branch="main",
        base_dir=tmp_path,
        clone_root=tmp_path / "clones",
        environ={"GITHUB_TOKEN": TOKEN},
    )
    publish(repo, [change("3.9", D1)])
    assert D1 in remote_file(remote, "state/gcr.io/google-containers.json")
    assert server.authorizations
    assert all(a is not None for a in server.authorizations)
    for path in (repo.root / ".git").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert repo.repo.remotes.origin.url == url


def test_wrong_token_fails_with_a_redacted_message(
    tmp_path: Path, http_remote: tuple[GitHttpServer, str]
) -> None:
    _, url = http_remote
    secret = "ghp_wrong_but_still_secret_value"
    with pytest.raises(GitError) as caught:
        MetadataRepo.open(
            url,
            branch="main",
            base_dir=tmp_path,
            clone_root=tmp_path / "clones",
            environ={"GITHUB_TOKEN": secret},
        )
    assert secret not in str(caught.value)


def test_credentials_in_the_url_are_moved_out_of_it(
    tmp_path: Path, remote: Path, http_remote: tuple[GitHttpServer, str]
) -> None:
    _, url = http_remote
    with_userinfo = url.replace("http://", f"http://x-access-token:{TOKEN}@")
    repo = MetadataRepo.open(
        with_userinfo, branch="main", base_dir=tmp_path, clone_root=tmp_path / "clones", environ={}
    )
    assert TOKEN not in repo.repo.remotes.origin.url
    assert TOKEN not in (repo.root / ".git" / "config").read_text()
    publish(repo, [change("3.9", D1)])
    assert D1 in remote_file(remote, "state/gcr.io/google-containers.json")


def test_dot_means_the_repository_holding_the_config(tmp_path: Path, remote: Path) -> None:
    checkout = tmp_path / "checkout"
    git("clone", str(remote), str(checkout), cwd=tmp_path)
    (checkout / "config").mkdir()
    repo = MetadataRepo.open(
        ".", branch="main", base_dir=checkout / "config", clone_root=tmp_path / "unused", environ={}
    )
    # Not a clone: a worktree of the checkout's own repository, at the remote state branch.
    assert not (tmp_path / "unused").exists()
    common = git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=repo.root)
    assert Path(common.strip()) == checkout / ".git"
    assert repo.head() == git("rev-parse", "origin/main", cwd=checkout).strip()
    assert (repo.root / "README.md").read_text() == "metadata repository\n"


# -- runs that overlap, re-runs, and runs from another branch ---------------------------


def mirror_commits(remote: Path) -> list[str]:
    return [s for s in git("log", "--format=%s", "main", cwd=remote).splitlines() if s != "init"]


def test_a_run_that_started_from_the_old_tip_records_only_what_the_remote_lacks(
    tmp_path: Path, remote: Path
) -> None:
    first = MetadataRepo.open(
        str(remote), branch="main", base_dir=tmp_path, clone_root=tmp_path / "a", environ={}
    )
    second = MetadataRepo.open(
        str(remote), branch="main", base_dir=tmp_path, clone_root=tmp_path / "b", environ={}
    )
    publish(first, [change("3.9", D1), change("latest", D1)])
    # Both started from the same tip: the second saw every tag as new.
    publish(second, [change("3.9", D1), change("latest", D2), change("v1", D2, image="etcd")])
    changelog = remote_file(remote, "state/CHANGELOG.md")
    assert changelog.count("pause:3.9` →") == 1
    assert changelog.count("- new: `gcr.io/google-containers/pause:latest` →") == 1
    # What the second run calls new is, against the remote it pushes onto, an update.
    assert changelog.count("- updated: `gcr.io/google-containers/pause:latest` →") == 1
    assert f"was {D1[:15]}" in changelog
    assert changelog.count("etcd:v1` →") == 1
    assert len(mirror_commits(remote)) == 2
    # Run once more, from the same old start: nothing left, no commit.
    third = MetadataRepo.open(
        str(remote), branch="main", base_dir=tmp_path, clone_root=tmp_path / "c", environ={}
    )
    tip = git("rev-parse", "main", cwd=remote)
    assert publish(third, [change("3.9", D1), change("v1", D2, image="etcd")]) is None
    assert git("rev-parse", "main", cwd=remote) == tip


def test_publishing_the_same_changes_twice_makes_one_commit(tmp_path: Path, remote: Path) -> None:
    changes = [change("3.9", D1), change("v1", D2, image="etcd")]
    assert publish(reopen(tmp_path, remote), changes) is not None
    assert publish(reopen(tmp_path, remote), changes) is None
    assert mirror_commits(remote) == ["mirror: test"]
    assert remote_file(remote, "state/CHANGELOG.md").count("- new: ") == 2


def test_a_rejected_push_recomputes_the_section_on_the_new_tip(
    tmp_path: Path, remote: Path
) -> None:
    """The second run's first push is rejected; its retry must not repeat the first's lines."""
    slow = reopen(tmp_path, remote)
    store = StateStore(slow.root / "state")
    attempts: list[int] = []

    def build() -> tuple[list[Path], str]:
        if not attempts:
            # Another runner pushes the same tag between our fetch and our push.
            publish(
                MetadataRepo.open(
                    str(remote),
                    branch="main",
                    base_dir=tmp_path,
                    clone_root=tmp_path / "other",
                    environ={},
                ),
                [change("3.9", D1)],
            )
        pending = pending_changes(store, [change("3.9", D1), change("latest", D2)])
        attempts.append(len(pending))
        return (apply_changes(store, pending, WHEN), "mirror: slow") if pending else ([], "")

    slow.publish(build, push=True)
    assert attempts == [2, 1]
    changelog = remote_file(remote, "state/CHANGELOG.md")
    assert changelog.count("pause:3.9` →") == 1
    assert changelog.count("pause:latest` →") == 1
    assert mirror_commits(remote) == ["mirror: slow", "mirror: test"]


@pytest.mark.parametrize("checked_out", ["feature", "main"])
def test_a_run_from_another_checkout_publishes_only_state_on_the_remote_branch(
    tmp_path: Path, remote: Path, checked_out: str
) -> None:
    """Unreviewed commits (a feature branch, or a local main ahead of origin) stay local."""
    checkout = tmp_path / "checkout"
    git("clone", str(remote), str(checkout), cwd=tmp_path)
    if checked_out == "feature":
        git("checkout", "-b", "feature", cwd=checkout)
    (checkout / "mirrorbot.yaml").write_text("# unreviewed\n")
    (checkout / "state").mkdir()
    (checkout / "state" / "CHANGELOG.md").write_text("# forged on the branch\n")
    git("add", "mirrorbot.yaml", "state", cwd=checkout)
    git("commit", "-m", "unreviewed", cwd=checkout)
    (checkout / "README.md").write_text("uncommitted edit\n")
    unreviewed = git("rev-parse", "HEAD", cwd=checkout).strip()
    status = git("status", "--porcelain", cwd=checkout)
    human_edits_the_config(tmp_path, remote)  # the remote moved on since the checkout
    tip = git("rev-parse", "main", cwd=remote).strip()

    repo = MetadataRepo.open(
        ".", branch="main", base_dir=checkout, clone_root=tmp_path / "unused", environ={}
    )
    assert publish(repo, [change("3.9", D1)]) is not None

    assert git("rev-parse", "main^", cwd=remote).strip() == tip
    # Not in main's history: not even in the remote's object store.
    assert subprocess.run(["git", "cat-file", "-e", unreviewed], cwd=remote).returncode != 0
    changed = git("diff", "--name-only", "main^", "main", cwd=remote).split()
    assert changed
    assert all(path.startswith("state/") for path in changed)
    assert remote_file(remote, "state/CHANGELOG.md").startswith("# Changelog")
    assert "human" in remote_file(remote, "mirrorbot.yaml")
    # The user's checkout is as it was: same branch, same commit, same edits.
    assert git("rev-parse", "HEAD", cwd=checkout).strip() == unreviewed
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=checkout).strip() == checked_out
    assert git("status", "--porcelain", cwd=checkout) == status  # only origin/main moved
    assert (checkout / "README.md").read_text() == "uncommitted edit\n"
    # A second run reuses the worktree and records nothing twice.
    again = MetadataRepo.open(
        ".", branch="main", base_dir=checkout, clone_root=tmp_path / "unused", environ={}
    )
    assert publish(again, [change("3.9", D1), change("latest", D2)]) is not None
    assert remote_file(remote, "state/CHANGELOG.md").count("pause:3.9` →") == 1
    assert git("rev-parse", "HEAD", cwd=checkout).strip() == unreviewed


def test_a_new_state_branch_starts_empty_not_from_the_checkout(
    tmp_path: Path, remote: Path
) -> None:
    checkout = tmp_path / "checkout"
    git("clone", str(remote), str(checkout), cwd=tmp_path)
    repo = MetadataRepo.open(
        ".", branch="state", base_dir=checkout, clone_root=tmp_path / "unused", environ={}
    )
    assert repo.head() is None
    assert publish(repo, [change("3.9", D1)]) is not None
    log = git("log", "--format=%s", "state", cwd=remote).splitlines()
    assert log == ["mirror: test"]
    assert git("ls-tree", "-r", "--name-only", "state", cwd=remote).split() == [
        "state/CHANGELOG.md",
        "state/README.md",
        "state/gcr.io/google-containers.json",
        "state/index/gcr.io/google-containers.md",
    ]
    assert "mirrorbot-unborn" not in git("branch", "--all", cwd=checkout)


# -- one clone shared by several processes -----------------------------------------------


def publisher(remote: Path, clone_root: Path, *tags: str) -> subprocess.Popen[str]:
    """Another mirrorbot process publishing ``tags`` through the clone under ``clone_root``."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.publisher", str(remote), str(clone_root), *tags],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def test_a_second_process_waits_for_the_clone_lock(tmp_path: Path, remote: Path) -> None:
    holder = reopen(tmp_path, remote)
    with holder.locked():
        other = publisher(remote, tmp_path / "clones", "latest")
        try:
            assert other.stderr is not None
            # It says it waits (it found the lock held) before it touches the clone.
            assert "waiting for another mirrorbot run" in other.stderr.readline()
            publish(holder, [change("3.9", D1)])
            # A git of ours is mid-operation: its lock must not be taken for a stale one.
            index_lock = Path(holder.repo.git_dir) / "index.lock"
            index_lock.write_text("")
            assert other.poll() is None
            index_lock.unlink()
        except BaseException:
            other.kill()
            other.communicate()
            raise
    _, errors = other.communicate(timeout=120)
    assert other.returncode == 0, errors
    changelog = remote_file(remote, "state/CHANGELOG.md")
    assert changelog.count("pause:3.9` →") == 1
    assert changelog.count("pause:latest` →") == 1


def test_concurrent_processes_on_one_clone_take_turns(tmp_path: Path, remote: Path) -> None:
    reopen(tmp_path, remote)  # the shared clone exists, as on a runner's second run
    runs = [
        publisher(remote, tmp_path / "clones", *tags)
        for tags in (("3.9", "latest"), ("latest", "v1"), ("3.9", "v1"), ("v2",))
    ]
    results = [run.communicate(timeout=300) for run in runs]
    for run, (_, errors) in zip(runs, results, strict=True):
        assert run.returncode == 0, errors
        assert "index.lock" not in errors
    changelog = remote_file(remote, "state/CHANGELOG.md")
    for tag in ("3.9", "latest", "v1", "v2"):
        assert changelog.count(f"pause:{tag}` →") == 1, changelog
