"""The browsable index at scale, and ``find``: one tag order, one pull-tag rule, for both.

States are built directly (no registry is needed to know what a page says); ``find``
through the CLI reads them from a real git checkout.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import re
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mirrorbot.cli import app
from mirrorbot.domain.changes import Change, apply_changes
from mirrorbot.domain.indexpages import INDEX_DIR, PAGE_LIMIT, render_pages, stale_pages
from mirrorbot.domain.tagorder import (
    artifact_kind,
    is_artifact_tag,
    newest_first,
    pull_tag,
    split_artifacts,
)
from mirrorbot.errors import StateError
from mirrorbot.jobs.find import find
from mirrorbot.state.store import NamespaceState, SkipRecord, StateStore, TagRecord

D1 = "sha256:7031c1b283388d2c2e09b57badb803c05ebed362dc88d84b480cc47f72a21097"
D2 = "sha256:9e1b2c3d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcdef"
SIG = f"sha256-{D1.removeprefix('sha256:')}.sig"
ATT = f"sha256-{D1.removeprefix('sha256:')}.att"
REFERRERS = f"sha256-{D1.removeprefix('sha256:')}"
INDEX = "application/vnd.oci.image.index.v1+json"
PLATFORMS = ("linux/amd64", "linux/arm64", "linux/ppc64le", "linux/s390x")
# Ten tags an image, in the order the index must show them (newest first).
TAGS_NEWEST_FIRST = [
    "v1.49.0",
    "v1.10.0",
    "v1.9.0",
    "v2.0.0-rc1",  # a pre-release of a later version still sits below every release
    "v1.49.0-rc.10",
    "v1.49.0-rc.2",
    "v1.49.0-alpha",
    "v1.9.0-rc.2",
]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def record(synced: str, digest: str = D1) -> TagRecord:
    return TagRecord(digest, INDEX, PLATFORMS, 1234, synced)


def synced(day: int, hour: int = 3) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:04:05Z"


def scale_states(images: int = 10_000) -> list[NamespaceState]:
    """Three namespaces, ``images`` images, ten image tags each plus a signature on some."""
    sizes = {"gcr.io/google-containers": images * 7 // 10, "quay.io/coreos": images * 2 // 10}
    sizes["registry.k8s.io"] = images - sum(sizes.values())
    states = []
    for source, count in sizes.items():
        state = NamespaceState(source, "docker.io/gcrxio")
        for number in range(count):
            name = f"team-{number % 7}/image-{number:05d}"
            target = f"docker.io/gcrxio/{source.split('/')[-1]}_{name.replace('/', '_')}"
            # Sync time runs against the version: a sync-time order would show v1.49.0 last.
            for day, tag in enumerate(reversed(TAGS_NEWEST_FIRST), start=1):
                state.record(name, target, tag, record(synced(day)))
            state.record(name, target, "main", record(synced(20)))
            state.record(name, target, "nightly", record(synced(21)))
            if number % 3 == 0:
                state.record(name, target, SIG, record(synced(28), D2))
        states.append(state)
    return states


def page_links(pages: dict[str, str], path: str) -> list[str]:
    """Pages linked from ``path``, as keys of ``pages`` (relative links resolved)."""
    found = []
    for href in LINK.findall(pages[path]):
        target = posixpath.normpath(posixpath.join(posixpath.dirname(path), href))
        target = target.replace("%3A", ":")
        if target in pages:
            found.append(target)
    return found


def clicks_to(pages: dict[str, str], image: str, tag: str, pull: str) -> int | None:
    """How many links from README.md to a page showing ``image:tag`` with its pull command."""
    row = re.compile(rf"^\| `{re.escape(tag)}` \|.*\| `{re.escape(pull)}` \|$", re.MULTILINE)

    def shows(path: str) -> bool:
        sections = pages[path].split("\n### ")  # an image cut in parts has one section a part
        return any(
            section.startswith((f"`{image}`\n", f"`{image}` (part")) and row.search(section)
            for section in sections
        )

    frontier, seen = ["README.md"], {"README.md"}
    for clicks in range(3):
        if any(shows(path) for path in frontier):
            return clicks
        following = []
        for path in frontier:
            for target in page_links(pages, path):
                if target not in seen:
                    seen.add(target)
                    following.append(target)
        frontier = following
    return None


@pytest.fixture(scope="module")
def scale() -> tuple[list[NamespaceState], dict[str, str], float]:
    states = scale_states()
    started = time.perf_counter()
    pages = render_pages(states)
    return states, pages, time.perf_counter() - started


def test_ten_thousand_images_render_fast_into_pages_under_the_budget(
    scale: tuple[list[NamespaceState], dict[str, str], float],
) -> None:
    states, pages, elapsed = scale
    # Linear work takes about a second here; a quadratic loop over 10,000 images takes minutes.
    assert elapsed < 20, f"rendering took {elapsed:.1f} s"
    sizes = {path: len(text.encode("utf-8")) for path, text in pages.items()}
    assert max(sizes.values()) < PAGE_LIMIT, max(sizes.items(), key=lambda item: item[1])
    readme = pages["README.md"]
    signatures = sum(1 for s in states for e in s.images.values() if SIG in e.tags)
    assert "10000 images and 100000 tags from 3 upstream namespaces" in readme
    assert f"besides {signatures} signature, attestation and referrers tags" in readme
    # The README links every page of every namespace; the big namespace needed several.
    linked = set(page_links(pages, "README.md"))
    assert linked == set(pages) - {"README.md"}
    big = [path for path in pages if path.startswith("index/gcr.io/google-containers")]
    assert len(big) > 10
    assert "index/gcr.io/google-containers.md" in big
    assert "index/gcr.io/google-containers~2.md" in big
    assert "index/registry.k8s.io/_root.md" in pages
    # Every image is on exactly one page.
    headings = {
        (path.split("/")[1], name)
        for path, text in pages.items()
        for name in re.findall(r"^### `([^`]+)`$", text, re.MULTILINE)
    }
    expected = {(s.source.split("/")[0], name) for s in states for name in s.images}
    assert headings == expected
    assert sum(len(re.findall(r"^### `", t, re.MULTILINE)) for t in pages.values()) == 10_000
    page = pages["index/quay.io/coreos.md"]
    assert "· upstream `quay.io/coreos/team-0/image-00000` · 10 tags and 1 signature" in page


def test_any_image_tag_and_its_pull_command_is_one_click_from_the_readme(
    scale: tuple[list[NamespaceState], dict[str, str], float],
) -> None:
    _, pages, _ = scale
    for number, tag in [(0, "v1.49.0"), (6999, "v1.9.0-rc.2"), (3333, "nightly")]:
        image = f"team-{number % 7}/image-{number:05d}"  # 6999: the big namespace's last page
        target = f"docker.io/gcrxio/google-containers_{image.replace('/', '_')}"
        assert clicks_to(pages, image, tag, f"docker pull {target}:{tag}") == 1, (image, tag)


def test_tags_are_newest_first_by_version_with_pre_releases_below_releases() -> None:
    state = scale_states(10)[0]
    entry = state.images["team-0/image-00000"]
    ordered = newest_first(entry.tags)
    images, artifacts = split_artifacts(ordered)
    assert images == [*TAGS_NEWEST_FIRST, "nightly", "main"]  # then other tags, newest sync first
    assert artifacts == [SIG]
    assert pull_tag(images) == "v1.49.0"  # not v1.9.0 (text), not nightly (sync time)
    pages = render_pages([state])
    page = pages["index/gcr.io/google-containers.md"]
    section = page[page.index("### `team-0/image-00000`") :].split("\n### ")[0]
    rows = re.findall(r"^\| `([^`]+)` \| `sha256:", section, re.MULTILINE)
    assert rows == [*TAGS_NEWEST_FIRST, "nightly", "main"]
    assert "`docker pull docker.io/gcrxio/google-containers_team-0_image-00000:v1.49.0` ·" in (
        section
    )
    assert f"| `{SIG}` | signature | `sha256:9e1b2c3d…` |" in section
    assert "10 tags and 1 signature/attestation/referrers tag" in section


def test_artifact_tags_are_classified_and_never_the_pull_tag() -> None:
    assert [artifact_kind(t) for t in (SIG, ATT, REFERRERS, "v1.0")] == [
        "signature",
        "attestation",
        "referrers",
        None,
    ]
    assert is_artifact_tag(f"{REFERRERS}.sbom")
    assert not is_artifact_tag("sha256-abc.sig")
    # Synced last and lexically largest: the old rule would have picked one of them.
    tags = {
        "v1.0": record(synced(1)),
        "v0.9": record(synced(2)),
        SIG: record(synced(9), D2),
        REFERRERS: record(synced(9), D2),
    }
    assert pull_tag(newest_first(tags)) == "v1.0"
    assert pull_tag(newest_first({SIG: record(synced(1))})) is None
    assert pull_tag(newest_first(tags | {"latest": record(synced(1))})) == "latest"
    state = NamespaceState("ghcr.io/acme", "docker.io/gcrxio")
    for tag, value in tags.items():
        state.record("app", "docker.io/gcrxio/app", tag, value)
    state.record("only-signed", "docker.io/gcrxio/only-signed", SIG, record(synced(1)))
    page = render_pages([state])["index/ghcr.io/acme.md"]
    assert "`docker pull docker.io/gcrxio/app:v1.0` · upstream `ghcr.io/acme/app` · 2 tags" in page
    assert "no image tag mirrored · upstream `ghcr.io/acme/only-signed` · 0 tags and 1" in page
    assert "docker pull docker.io/gcrxio/app:sha256-" not in page
    (match,) = find([state], "acme/app")
    assert match.pull == "docker pull docker.io/gcrxio/app:v1.0"
    assert match.tags == ("v1.0", "v0.9")
    assert set(match.artifacts) == {SIG, REFERRERS}
    (signed,) = find([state], "only-signed")
    assert signed.pull is None
    assert signed.artifacts == (SIG,)


def test_an_image_with_more_tags_than_a_page_holds_is_cut_in_parts() -> None:
    state = NamespaceState("docker.io/library", "docker.io/gcrxio")
    for number in range(12_000):
        state.record("busybox", "docker.io/gcrxio/busybox", f"1.{number}.0", record(synced(1)))
    state.record("alpine", "docker.io/gcrxio/alpine", "3.20", record(synced(1)))
    pages = render_pages([state])
    assert all(len(text.encode("utf-8")) < PAGE_LIMIT for text in pages.values())
    parts = [p for p in pages if "### `busybox` (part 1 of" in pages[p]]
    assert len(parts) == 1
    shown = [
        tag
        for text in pages.values()
        for tag in re.findall(r"^\| `(1\.\d+\.0)` \|", text, re.MULTILINE)
    ]
    assert len(shown) == 12_000
    assert (shown[0], shown[-1]) == ("1.11999.0", "1.0.0")
    assert clicks_to(pages, "busybox", "1.0.0", "docker pull docker.io/gcrxio/busybox:1.0.0") == 1


def test_skipped_tags_and_hostile_text_in_a_state_file() -> None:
    state = NamespaceState("gcr.io/google-containers", "docker.io/gcr|xio")
    state.record("pause", "docker.io/gcrxio/pa`use|x", "3.9", record("yesterday|`"))
    state.skip("pause", "0.8", SkipRecord("schema1 | manifest `x`", "", synced(2)))
    state.skip("ancient", "1.0", SkipRecord("schema1", "", synced(2)))
    page = render_pages([state])["index/gcr.io/google-containers.md"]
    assert "| `0.8` | `schema1 \\| manifest 'x'` | 2026-11-02 03:04 UTC |" in page
    assert "### `ancient`\n\nno image tag mirrored" in page
    assert "`docker pull docker.io/gcrxio/pa'use\\|x:3.9`" in page
    assert "| `yesterday\\|'` |" in page
    for line in page.splitlines():  # every table row keeps its column count
        if line.startswith("| `3.9`"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 6
    with pytest.raises(StateError, match="index page"):
        render_pages([NamespaceState("gcr.io/../../etc", "docker.io/x")])


def test_one_source_mirrored_to_two_places_gets_two_pages() -> None:
    one = NamespaceState("gcr.io/google-containers", "docker.io/gcrxio")
    two = NamespaceState("gcr.io/google-containers", "quay.io/gcrxio")
    for state in (one, two):
        state.record("pause", f"{state.mirror}/pause", "3.9", record(synced(1)))
    pages = render_pages([one, two])
    assert {
        "index/gcr.io/google-containers@docker.io+gcrxio.md",
        "index/gcr.io/google-containers@quay.io+gcrxio.md",
    } <= set(pages)


def change(image: str, tag: str) -> Change:
    return Change(
        kind="new",
        namespace="gcr.io/google-containers",
        mirror="docker.io/gcrxio",
        image=image,
        tag=tag,
        upstream=f"gcr.io/google-containers/{image}:{tag}",
        target_repository=f"docker.io/gcrxio/{image}",
        record=record(synced(1)),
    )


def test_publishing_writes_every_page_and_removes_only_its_own_stale_pages(
    tmp_path: Path,
) -> None:
    root = tmp_path / "state"
    pages_dir = root / INDEX_DIR / "gcr.io"
    pages_dir.mkdir(parents=True)
    stale = pages_dir / "google-containers~7.md"  # a page a bigger namespace once needed
    stale.write_text("old page\n")
    notes = pages_dir / "notes.txt"
    notes.write_text("not a page\n")
    beside = root / "NOTES.md"
    beside.write_text("not the index\n")
    written = apply_changes(StateStore(root), [change("pause", "3.9")], dt.datetime.now(dt.UTC))
    assert stale in written
    assert not stale.exists()
    assert (pages_dir / "google-containers.md").read_text().count("### `pause`") == 1
    assert notes.exists()
    assert beside.exists()
    assert stale_pages(root, render_pages(StateStore(root).all())) == []


def test_stale_pages_never_follow_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kept.md").write_text("outside\n")
    (tmp_path / "state" / INDEX_DIR).mkdir(parents=True)
    (tmp_path / "state" / INDEX_DIR / "linked").symlink_to(outside, target_is_directory=True)
    assert stale_pages(tmp_path / "state", {}) == []
    (tmp_path / "state" / INDEX_DIR).rename(tmp_path / "moved")
    (tmp_path / "state" / INDEX_DIR).symlink_to(outside, target_is_directory=True)
    assert stale_pages(tmp_path / "state", {}) == []


def test_find_exact_tag_host_with_port_and_artifacts() -> None:
    state = NamespaceState("127.0.0.1:5000/ns", "docker.io/gcrxio")
    for tag in ("3.6", "3.6.1", "3.10", "latest"):
        state.record("pause", "docker.io/gcrxio/pause", tag, record(synced(1)))
    state.record("pause", "docker.io/gcrxio/pause", SIG, record(synced(9)))
    state.record("etcd", "docker.io/gcrxio/etcd", "v3.5", record(synced(1)))
    (exact,) = find([state], "pause:3.6")
    assert exact.tags == ("3.6",)
    assert exact.pull == "docker pull docker.io/gcrxio/pause:3.6"
    assert find([state], "pause:3.7") == []
    by_host = find([state], "127.0.0.1:5000/ns/pause")  # the port is not a tag
    assert [m.upstream for m in by_host] == ["127.0.0.1:5000/ns/pause"]
    assert by_host[0].tags == ("3.10", "3.6.1", "3.6", "latest")
    assert by_host[0].pull == "docker pull docker.io/gcrxio/pause:latest"
    (tagged,) = find([state], "127.0.0.1:5000/ns/etcd:v3.5")
    assert tagged.pull == "docker pull docker.io/gcrxio/etcd:v3.5"
    assert len(find([state], "127.0.0.1:5000/ns")) == 2
    (mirror,) = find([state], "docker.io/gcrxio/pause:latest")
    assert mirror.tags == ("latest",)


CONFIG = """\
mirror:
  registry: docker.io
  namespace: gcrxio
state:
  repo: .
  path: state
namespaces:
  - source: 127.0.0.1:5000/ns
    list: images
    images: [pause]
"""


def test_find_command_json_and_text(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "mirrorbot.yaml").write_text(CONFIG)
    store = StateStore(tmp_path / "state")
    state = NamespaceState("127.0.0.1:5000/ns", "docker.io/gcrxio")
    for tag in ("v1.9.0", "v1.49.0", SIG):
        state.record("pause", "docker.io/gcrxio/pause", tag, record(synced(1)))
    store.save(state)
    config = str(tmp_path / "mirrorbot.yaml")
    runner = CliRunner()
    found = runner.invoke(app, ["find", "127.0.0.1:5000/ns/pause", "--config", config, "--json"])
    assert found.exit_code == 0, found.output
    (match,) = json.loads(found.stdout)
    assert match["pull"] == "docker pull docker.io/gcrxio/pause:v1.49.0"
    assert [t["tag"] for t in match["tags"]] == ["v1.49.0", "v1.9.0"]
    assert match["tags"][0]["digest"] == D1
    assert match["tags"][0]["platforms"] == list(PLATFORMS)
    assert match["artifacts"][0]["kind"] == "signature"
    assert match["artifacts"][0]["subject"] == D1
    text = runner.invoke(app, ["find", "pause:v1.9.0", "--config", config])
    assert text.exit_code == 0, text.output
    assert "127.0.0.1:5000/ns/pause → docker.io/gcrxio/pause  [v1.9.0]" in text.output
    assert "  docker pull docker.io/gcrxio/pause:v1.9.0" in text.output
    none = runner.invoke(app, ["find", "pause:v9", "--config", config, "--json"])
    assert none.exit_code == 1
    assert json.loads(none.stdout) == []
