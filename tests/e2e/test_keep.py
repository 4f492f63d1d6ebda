"""``keep: {newest: N, by: semver|uploaded}``: config, the rule itself, and runs on real registries."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from mirrorbot.config import parse_config
from mirrorbot.demo.corpus import ImageFactory, signature_tag
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.domain.keep import KeepRule, apply_keep
from mirrorbot.domain.planner import NamespacePlan, plan_namespace
from mirrorbot.engine.sources.base import ListedRepository, ListedTag, Listing
from mirrorbot.engine.sources.timestamps import parse_timestamp
from mirrorbot.errors import ConfigError
from mirrorbot.state.store import NamespaceState, TagRecord
from tests.conftest import CREDS
from tests.support import skopeo
from tests.support.fronts import GcrFront, HubFront, ProxyFront
from tests.support.world import World, write_config

CONFIG = """\
mirror:
  namespace: gcrxio
defaults:
  keep: {newest: 5}
namespaces:
  - source: gcr.io/a
  - source: gcr.io/b
    keep: {newest: 2, by: uploaded}
"""


# --------------------------------------------------------------------------- config


def test_keep_in_defaults_and_per_namespace() -> None:
    first, second = parse_config(CONFIG).namespace_plans()
    assert first.keep == KeepRule(5, "semver")  # by defaults to semver
    assert second.keep == KeepRule(2, "uploaded")  # replaces the default, as other keys do
    plain = parse_config(CONFIG.replace("defaults:\n  keep: {newest: 5}\n", ""))
    assert plain.namespace_plans()[0].keep is None  # unset: every tag


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        ("{newest: 0}", "namespaces[0].keep.newest: Input should be greater than or equal to 1"),
        ("{newest: -3}", "greater than or equal to 1"),
        ("{newest: true}", "namespaces[0].keep.newest"),  # strict: a boolean is not a number
        ("{newest: '3'}", "namespaces[0].keep.newest"),
        ("{newest: 3, by: created}", "keep.by: expected one of 'semver' or 'uploaded'"),
        ("{by: semver}", "keep.newest: required key is missing"),
        ("{newest: 3, by: semver, newset: 2}", "unknown key 'newset'"),
        ("3", "namespaces[0].keep: expected a mapping of keys"),
    ],
)
def test_invalid_keep_is_a_config_error(keep: str, message: str) -> None:
    text = f"mirror:\n  namespace: gcrxio\nnamespaces:\n  - source: gcr.io/a\n    keep: {keep}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert message in str(caught.value)
    assert str(caught.value).startswith("mirrorbot.yaml:5: ")


# --------------------------------------------------------------------------- the rule


def _listing(*tags: ListedTag) -> Listing:
    return Listing("example.test/ns", (ListedRepository("app", tags),), ())


def test_artifact_and_mutable_tags_are_not_counted() -> None:
    sig = signature_tag("sha256:" + "a" * 64)
    listing = _listing(
        *(ListedTag(f"1.{n}") for n in range(5)),
        ListedTag("latest"),
        ListedTag(sig),
        ListedTag("sha256-" + "b" * 64),
        ListedTag("nightly"),
    )
    kept = apply_keep(
        KeepRule(2),
        listing,
        selected=lambda tag: tag != "1.4",  # excluded before keep counts
        mutable=lambda tag: tag == "latest",
    )
    # 1.3 and 1.2 are the newest selected; "nightly" is no version: below every one.
    assert kept.dropped == {("app", "1.1"), ("app", "1.0"), ("app", "nightly")}
    assert not kept.fallback


def test_uploaded_without_times_falls_back_to_semver() -> None:
    listing = _listing(*(ListedTag(f"v{n}") for n in range(4)))
    kept = apply_keep(KeepRule(1, "uploaded"), listing, selected=bool, mutable=lambda _: False)
    assert kept.dropped == {("app", "v0"), ("app", "v1"), ("app", "v2")}
    assert kept.fallback


def test_uploaded_ranks_tags_without_a_time_last() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    listing = _listing(
        ListedTag("v9"), ListedTag("v1", uploaded=at), ListedTag("v2", uploaded=at.replace(day=2))
    )
    kept = apply_keep(KeepRule(2, "uploaded"), listing, selected=bool, mutable=lambda _: False)
    assert kept.dropped == {("app", "v9")}


def test_planner_leaves_recorded_tags_beyond_n_alone() -> None:
    """A mirrored tag that fell out of the newest N: not updated, not gone; its signature follows."""
    d1, d2, d3 = ("sha256:" + c * 64 for c in "123")
    sig = signature_tag(d1)
    up = _listing(
        ListedTag("3.9", digest=d3), ListedTag("3.8", digest=d2), ListedTag(sig, digest=d2)
    )
    state = NamespaceState("example.test/ns", "mirror.test/m")
    record = TagRecord(
        d1, "application/vnd.oci.image.index.v1+json", (), 10, "2026-11-01T00:00:00Z"
    )
    state.record("app", "mirror.test/m/app", "3.8", record)

    def phase(signatures: bool) -> NamespacePlan:
        return plan_namespace(
            Rules(),
            up,
            state,
            mirror="mirror.test/m",
            targets={"app": "m/app"},
            signatures=signatures,
            keep=KeepRule(1),
        )

    images = phase(False)
    assert [(i.kind, i.tag) for i in images.items] == [("new", "3.9")]  # 3.8 moved: left alone
    assert images.kept_out == 1
    assert images.gone == ()
    assert [i.tag for i in phase(True).items] == [sig]  # signs the mirrored 3.8
    without = plan_namespace(Rules(), up, state, mirror="mirror.test/m", targets={"app": "m/app"})
    assert ("updated", "3.8") in [(i.kind, i.tag) for i in without.items]


@dataclass(frozen=True)
class Rules:
    signatures: bool = True

    def tag_selected(self, tag: str) -> bool:
        return True

    def is_mutable(self, tag: str) -> bool:
        return tag == "latest"


# --------------------------------------------------------------------------- real registries

SEMVER_TAGS = [f"v1.{minor}" for minor in range(21)] + ["v1.21-rc1", "latest"]


def _with_keep(world: World, keep: str, listing: str = "catalog") -> None:
    text = world.config.read_text()
    marker = f"    list: {listing}\n"
    assert marker in text
    world.config.write_text(text.replace(marker, f"{marker}    keep: {keep}\n"))


def _plan(world: World) -> dict[str, object]:
    result = world.run("plan", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    loaded: dict[str, object] = json.loads(result.stdout)
    return loaded


def _mirror_tags(world: World, image: str) -> list[str]:
    return sorted(skopeo.list_tags(f"{world.mirror.host}/{world.mirror_ns}/{image}", CREDS))


def _state_tags(world: World, image: str) -> dict[str, dict[str, object]]:
    images = world.state()["images"]
    assert isinstance(images, dict)
    tags: dict[str, dict[str, object]] = images[image]["tags"]
    return tags


@pytest.mark.slow(seconds=12)
def test_newest_three_by_semver(world: World) -> None:
    """``keep: {newest: 3, by: semver}`` over ``v1.0…v1.20, v1.21-rc1, latest``.

    Expected mirror: ``v1.20, v1.19, v1.18`` and ``latest``.

    - ``v1.20`` > ``v1.19`` > ``v1.18`` numerically (``v1.9`` is not above ``v1.18``).
    - ``v1.21-rc1`` is a pre-release: it ranks below every release, as in the
      index and ``find`` (mirrorbot.domain.tagorder), so it is not among the newest 3.
    - ``latest`` is mutable (the default ``mutable: ["latest"]``): mutable tags
      are always kept and not counted, since they name the current image.

    19 tags are left out (``v1.0…v1.17`` and ``v1.21-rc1``). A later run with
    ``v1.22`` upstream mirrors it, and ``v1.18``, now fourth, stays in the
    mirror and in state: it is neither deleted nor marked gone upstream.
    """
    image = ImageFactory(world.ns).image("app")
    for tag in SEMVER_TAGS:
        world.seed("app", tag, image)

    # by: uploaded over a catalog listing (no upload times): semver, said once.
    _with_keep(world, "{newest: 3, by: uploaded}")
    plan = _plan(world)
    namespaces = plan["namespaces"]
    assert isinstance(namespaces, list)
    assert len(namespaces) == 1
    namespace: dict[str, Any] = namespaces[0]
    assert namespace["keptOut"] == 19
    assert sorted(item["tag"] for item in namespace["items"]) == [
        "latest",
        "v1.18",
        "v1.19",
        "v1.20",
    ]
    notes = [w for w in plan["warnings"] if "keep by uploaded" in w]  # type: ignore[attr-defined]
    assert len(notes) == 1, plan["warnings"]

    write_config(world)
    _with_keep(world, "{newest: 3, by: semver}")
    readable = world.run("plan")
    assert readable.returncode == 0, readable.stderr
    assert "left out by keep" in readable.stdout
    assert f"{world.upstream.host}/{world.ns}: 19" in readable.stdout

    first = world.run("sync")
    assert first.returncode == 0, first.stdout + first.stderr
    assert sorted(_state_tags(world, "app")) == ["latest", "v1.18", "v1.19", "v1.20"]
    assert _mirror_tags(world, "app") == ["latest", "v1.18", "v1.19", "v1.20"]

    world.seed("app", "v1.22", image)
    second = world.run("sync")
    assert second.returncode == 0, second.stdout + second.stderr
    tags = _state_tags(world, "app")
    assert sorted(tags) == ["latest", "v1.18", "v1.19", "v1.20", "v1.22"]
    assert not [tag for tag, record in tags.items() if "goneUpstream" in record]
    assert "v1.18" in _mirror_tags(world, "app")
    assert "gone" not in world.remote_file("state/CHANGELOG.md").split("## ")[-1]


@pytest.fixture
def gcr_front(source_registry: LocalRegistry) -> Iterator[GcrFront]:
    with GcrFront(source_registry) as front:
        yield front


def _set_uploaded(registry: LocalRegistry, repository: str, digest: str, when: float) -> None:
    """The upload time GcrFront reports: the mtime of the registry's revision link."""
    link = (
        registry.storage
        / "docker/registry/v2/repositories"
        / repository
        / "_manifests/revisions/sha256"
        / digest.partition(":")[2]
        / "link"
    )
    os.utime(link, (when, when))


@pytest.mark.slow(seconds=8)
def test_newest_two_by_upload_time_through_gcr(world: World, gcr_front: GcrFront) -> None:
    """``by: uploaded`` follows gcr's ``timeUploadedMs``, not the version.

    ``v1.0…v1.4`` are distinct images; ``v1.0`` and ``v1.2`` were uploaded last
    (their revision links' mtimes, which GcrFront reports as ``timeUploadedMs``),
    so they are the newest 2; by semver it would have been ``v1.4`` and ``v1.3``.
    """
    factory = ImageFactory(world.ns)
    digests = {}
    for minor in range(5):
        image = factory.image(f"app-{minor}")
        world.seed("app", f"v1.{minor}", image)
        digests[f"v1.{minor}"] = image.digest
    base = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    order = ["v1.4", "v1.3", "v1.1", "v1.2", "v1.0"]  # oldest upload first
    for rank, tag in enumerate(order):
        _set_uploaded(world.upstream, f"{world.ns}/app", digests[tag], base + 3600 * rank)
    write_config(world, source=f"{gcr_front.host}/{world.ns}", listing="gcr")
    _with_keep(world, "{newest: 2, by: uploaded}", listing="gcr")

    result = world.run("sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "keep by uploaded" not in result.stdout + result.stderr
    state = json.loads(world.remote_file(f"state/{gcr_front.host}/{world.ns}.json"))
    assert sorted(state["images"]["app"]["tags"]) == ["v1.0", "v1.2"]


def _set_tag_pushed(registry: LocalRegistry, repository: str, tag: str, when: float) -> None:
    """The ``last_updated`` HubFront reports: the mtime of the registry's tag link."""
    link = (
        registry.storage
        / "docker/registry/v2/repositories"
        / repository
        / "_manifests/tags"
        / tag
        / "current/link"
    )
    os.utime(link, (when, when))


@pytest.mark.slow(seconds=8)
def test_newest_two_by_hub_last_updated(world: World, source_registry: LocalRegistry) -> None:
    """``by: uploaded`` over the ``dockerhub`` listing follows the Hub tag pages' ``last_updated``.

    ``v1.0…v1.4`` are distinct images without a ``created`` in their configs;
    the Hub (its tag link mtimes) says ``v1.0`` and ``v1.2`` were pushed last,
    so they are the newest 2. Without the Hub's times keep would order by
    semver (``v1.4``, ``v1.3``) and say so.
    """
    factory = ImageFactory(world.ns)
    for minor in range(5):
        world.seed("app", f"v1.{minor}", factory.image(f"app-{minor}"))
    base = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    for rank, tag in enumerate(["v1.4", "v1.3", "v1.1", "v1.2", "v1.0"]):  # oldest first
        _set_tag_pushed(world.upstream, f"{world.ns}/app", tag, base + 3600 * rank)
    with HubFront(source_registry, max_page_size=2) as hub:  # tag pages paged too
        write_config(world, listing="dockerhub")
        text = world.config.read_text().replace(
            "    list: dockerhub\n", f"    list: dockerhub\n    hub_api: {hub.url}\n"
        )
        world.config.write_text(text)
        _with_keep(world, "{newest: 2, by: uploaded}", listing="dockerhub")
        result = world.run("sync")
        tag_pages = [p for m, p in hub.requests if m == "GET" and "/repositories/app/tags" in p]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "keep by uploaded" not in result.stdout + result.stderr
    assert sorted(_state_tags(world, "app")) == ["v1.0", "v1.2"]
    assert len(tag_pages) == 3  # 5 tags, 2 a page


def _created(day: int) -> str:
    return f"2026-03-{day:02d}T10:00:00.123456789Z"  # Go writes nanoseconds


@pytest.mark.slow(seconds=8)
def test_newest_two_by_config_created_on_a_plain_registry(
    world: World, source_registry: LocalRegistry
) -> None:
    """A registry listing carries no upload time: keep reads the image configs' ``created``.

    ``v1.0…v1.4`` are created on days 5, 9, 1, 8, 2: the newest 2 are ``v1.1``
    (day 9) and ``v1.3`` (day 8), where semver would keep ``v1.4`` and ``v1.3``.
    ``v1.3`` is an index: its first platform's config counts. ``v1.0-again``
    names ``v1.0``'s image. ``latest`` (mutable) is kept and never looked up.
    Across the whole sync (lookup and copy) each upstream manifest is GET at
    most once: the lookup reads through the run's manifest cache.
    """
    factory = ImageFactory(world.ns)
    days = {"v1.0": 5, "v1.1": 9, "v1.2": 1, "v1.4": 2}
    for tag, day in days.items():
        world.seed("app", tag, factory.image(f"app-{tag}", created=_created(day)))
    world.seed("app", "v1.0-again", factory.image("app-v1.0", created=_created(5)))
    world.seed("app", "v1.3", factory.index("app-v1.3", created=_created(8)))
    world.seed("app", "latest", factory.image("app-latest", created=_created(1)))
    with ProxyFront(source_registry) as front:
        write_config(world, source=f"{front.host}/{world.ns}")
        _with_keep(world, "{newest: 2, by: uploaded}")
        plan = _plan(world)
        front.requests.clear()
        result = world.run("sync")
        gets = [p for m, p in front.requests if m == "GET" and "/manifests/" in p]
        host = front.host
    namespace: dict[str, Any] = plan["namespaces"][0]  # type: ignore[index]
    assert sorted(item["tag"] for item in namespace["items"]) == ["latest", "v1.1", "v1.3"]
    assert namespace["keptOut"] == 4
    assert result.returncode == 0, result.stdout + result.stderr
    assert "keep by uploaded" not in result.stdout + result.stderr
    state = json.loads(world.remote_file(f"state/{host}/{world.ns}.json"))
    assert sorted(state["images"]["app"]["tags"]) == ["latest", "v1.1", "v1.3"]
    assert gets
    assert len(gets) == len(set(gets)), gets
    assert not [p for p in gets if p.endswith(("/v1.0", "/v1.2", "/v1.4"))]  # HEAD, then digest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-05T10:00:00Z", datetime(2026, 3, 5, 10, tzinfo=UTC)),
        ("2026-03-05T10:00:00.123456789Z", datetime(2026, 3, 5, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-03-05T12:00:00+02:00", datetime(2026, 3, 5, 10, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", None),  # reproducible builds: unknown, not oldest
        ("2026-03-05T10:00:00", None),  # no zone
        ("2026-13-05T10:00:00Z", None),
        ("2026-03-05T10:00:00Z" + "0" * 100, None),
        (1700000000, None),
    ],
)
def test_upstream_times_are_parsed_warily(text: object, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected
