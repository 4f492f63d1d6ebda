"""Publish a few tags to a state repository, as a run would: in-process, or as a second process.

``python -m tests.support.publisher REMOTE CLONE_ROOT TAG...`` is the other
mirrorbot process of the lock tests (run from the repository root).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from mirrorbot.domain.changes import Change, apply_changes, pending_changes
from mirrorbot.state.gitrepo import MetadataRepo
from mirrorbot.state.store import StateStore, TagRecord

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64
WHEN = dt.datetime(2026, 11, 23, 3, 4, tzinfo=dt.UTC)


def change(tag: str, digest: str, image: str = "pause") -> Change:
    return Change(
        kind="new",
        namespace="gcr.io/google-containers",
        mirror="docker.io/gcrxio",
        image=image,
        tag=tag,
        upstream=f"gcr.io/google-containers/{image}:{tag}",
        target_repository=f"docker.io/gcrxio/{image}",
        record=TagRecord(
            digest, "application/vnd.oci.image.manifest.v1+json", (), 1, "2026-11-23T03:04:00Z"
        ),
    )


def publish(repo: MetadataRepo, changes: list[Change], *, push: bool = True) -> str | None:
    """What ``job.publish_changes`` does: record what the remote lacks, commit, push."""
    store = StateStore(repo.root / "state")

    def build() -> tuple[list[Path], str]:
        pending = pending_changes(store, changes)
        return (apply_changes(store, pending, WHEN), "mirror: test") if pending else ([], "")

    sha, _ = repo.publish(build, push=push)
    return sha


def main(argv: list[str]) -> int:
    remote, clone_root, *tags = argv
    repo = MetadataRepo.open(
        remote, branch="main", base_dir=Path(clone_root), clone_root=Path(clone_root), environ={}
    )
    print(publish(repo, [change(tag, D1) for tag in tags]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
