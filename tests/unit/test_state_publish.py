"""State files and the Markdown published from them, in the exact formats of DESIGN.md §3."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mirrorbot.domain.changes import Change, apply_changes, render_changelog_section, short_digest
from mirrorbot.errors import StateError
from mirrorbot.state.store import NamespaceState, StateStore, TagRecord

D1 = "sha256:7031c1b283388d2c2e09b57badb803c05ebed362dc88d84b480cc47f72a21097"
D2 = "sha256:9e1b2c3d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcdef"
WHEN = dt.datetime(2026, 11, 23, 3, 4, 5, tzinfo=dt.UTC)
INDEX = "application/vnd.oci.image.index.v1+json"


def change(
    kind: str, tag: str, digest: str, previous: str | None = None, image: str = "pause"
) -> Change:
    return Change(
        kind=kind,  # type: ignore[arg-type]
        namespace="gcr.io/google-containers",
        mirror="docker.io/gcrxio",
        image=image,
        tag=tag,
        upstream=f"gcr.io/google-containers/{image}:{tag}",
        target_repository=f"docker.io/gcrxio/{image.replace('/', '_')}",
        record=TagRecord(
            digest, INDEX, ("linux/amd64", "linux/arm64"), 1234, "2026-11-23T03:04:05Z"
        ),
        previous=previous,
    )


def test_state_file_is_exactly_the_contract_format(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    apply_changes(store, [change("new", "3.9", D1)], WHEN)
    path = tmp_path / "state" / "gcr.io" / "google-containers.json"
    text = path.read_text()
    expected = {
        "images": {
            "pause": {
                "tags": {
                    "3.9": {
                        "digest": D1,
                        "mediaType": INDEX,
                        "platforms": ["linux/amd64", "linux/arm64"],
                        "size": 1234,
                        "synced": "2026-11-23T03:04:05Z",
                    }
                },
                "target": "docker.io/gcrxio/pause",
            }
        },
        "mirror": "docker.io/gcrxio",
        "source": "gcr.io/google-containers",
        "version": 1,
    }
    assert text == json.dumps(expected, indent=2, sort_keys=True) + "\n"
    assert (
        store.load("gcr.io/google-containers", "docker.io/gcrxio").lookup("pause", "3.9")
        is not None
    )


def test_changelog_section_lines_match_the_contract() -> None:
    section = render_changelog_section(
        [change("updated", "latest", D2, previous=D1), change("new", "3.9", D1)], WHEN
    )
    assert section == (
        "## 2026-11-23 03:04 UTC\n\n"
        "- new: `gcr.io/google-containers/pause:3.9` → `docker.io/gcrxio/pause:3.9` (sha256:7031c1b2…)\n"
        "- updated: `gcr.io/google-containers/pause:latest` → `docker.io/gcrxio/pause:latest` "
        "(sha256:9e1b2c3d… was sha256:7031c1b2…)\n"
    )
    assert short_digest(D1) == "sha256:7031c1b2…"


def test_each_run_appends_one_section_and_regenerates_the_index(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    first = apply_changes(
        store, [change("new", "3.9", D1), change("new", "v1", D1, image="etcd/backup")], WHEN
    )
    assert {p.relative_to(tmp_path / "state").as_posix() for p in first} == {
        "gcr.io/google-containers.json",
        "CHANGELOG.md",
        "README.md",
        "index/gcr.io/google-containers.md",
    }
    apply_changes(store, [change("updated", "3.9", D2, previous=D1)], WHEN + dt.timedelta(days=1))
    changelog = (tmp_path / "state" / "CHANGELOG.md").read_text()
    assert changelog.count("## 2026-11-23 03:04 UTC") == 1
    assert changelog.count("## 2026-11-24 03:04 UTC") == 1
    assert changelog.index("2026-11-23") < changelog.index("2026-11-24")
    index = (tmp_path / "state" / "README.md").read_text()
    assert (
        "| [`gcr.io/google-containers`](index/gcr.io/google-containers.md) | `docker.io/gcrxio` | 2 | 2 |"
        in index
    )
    assert "2 images and 2 tags" in index
    page = (tmp_path / "state" / "index" / "gcr.io" / "google-containers.md").read_text()
    assert "# `gcr.io/google-containers` → `docker.io/gcrxio`" in page
    assert "[All namespaces](../../README.md)" in page
    assert "### `etcd/backup`" in page
    assert "| `v1` | `sha256:7031c1b2…` |" in page
    assert "`docker pull docker.io/gcrxio/etcd_backup:v1` |" in page
    assert "| `3.9` | `sha256:9e1b2c3d…` |" in page  # the update is on the page


def test_no_changes_writes_nothing(tmp_path: Path) -> None:
    assert apply_changes(StateStore(tmp_path / "state"), [], WHEN) == []
    assert not (tmp_path / "state").exists()


@pytest.mark.hostile("state files")
def test_root_namespace_and_hostile_state_files(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    assert (
        store.path_for("registry.k8s.io") == tmp_path / "state" / "registry.k8s.io" / "_root.json"
    )
    with pytest.raises(StateError):
        store.path_for("gcr.io/../../etc")
    bad = tmp_path / "state" / "gcr.io" / "evil.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        json.dumps(
            {
                "version": 1,
                "source": "gcr.io/evil",
                "mirror": "m/x",
                "images": {"../x": {"target": "t", "tags": {}}},
            }
        )
    )
    with pytest.raises(StateError, match=r"evil\.json"):
        store.load("gcr.io/evil", "m/x")
    bad.write_text("{not json")
    with pytest.raises(StateError, match="not valid JSON"):
        list(store.all())


def test_state_round_trips_and_unchanged_saves_write_nothing(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    state = NamespaceState("quay.io/coreos", "docker.io/gcrxio")
    state.record(
        "etcd",
        "docker.io/gcrxio/etcd",
        "v3.5",
        TagRecord(D1, INDEX, (), 1, "2026-11-23T03:04:05Z", D2),
    )
    assert store.save(state) is True
    path = store.path_for("quay.io/coreos")
    before = path.stat().st_mtime_ns
    assert store.save(store.load("quay.io/coreos", "docker.io/gcrxio")) is False
    assert path.stat().st_mtime_ns == before
    loaded = store.load("quay.io/coreos", "docker.io/gcrxio")
    assert loaded.lookup("etcd", "v3.5") == state.lookup("etcd", "v3.5")
    assert '"sourceDigest"' in path.read_text()


def test_the_report_says_a_shared_error_once() -> None:
    from mirrorbot.jobs.outcome import Failure, SyncReport
    from mirrorbot.jobs.report import render_markdown, render_plain, summarise

    report = SyncReport()
    down = "registry mirror.example is down: 3 operations in a row failed"
    report.failures = [Failure(f"up.example/ns/app-{i}:v1", "t", down) for i in range(40)]
    report.failures.append(Failure("up.example/ns/odd:v1", "t", "404 MANIFEST_UNKNOWN"))
    report.stopped = True
    report.not_started = ["a", "b"]
    text = render_plain(summarise(report))
    assert text.count("is down") == 1
    assert (
        "40 tags failed (up.example/ns/app-0:v1, up.example/ns/app-1:v1, up.example/ns/app-2:v1 and 37 more)"
        in text
    )
    assert "up.example/ns/odd:v1: 404 MANIFEST_UNKNOWN" in text
    assert "2 tags not started" in text  # they count tags, not images
    assert render_markdown(summarise(report)).count("is down") == 1
