"""OCI 1.1 referrers against real Distribution registries, refereed by skopeo.

Upstream either has no referrers API (Distribution 2.8: the ``sha256-<hex>``
fallback tag) or is a :class:`ReferrersFront` that serves it over a real
registry; the mirror is a real Distribution 2.8 registry (no API: mirrorbot
maintains the fallback tag there).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from mirrorbot.config import parse_config
from mirrorbot.demo.corpus import Image, ImageFactory
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from mirrorbot.engine.copier import Copier
from mirrorbot.engine.registry.client import RegistryClient
from mirrorbot.engine.registry.credentials import CredentialStore
from mirrorbot.engine.registry.media import OCI_INDEX, OCI_MANIFEST, PlatformFilter
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.engine.registry.retry import RetryPolicy
from mirrorbot.errors import ConfigError, ProtocolViolationError, StateError
from mirrorbot.jobs.referrers import MAX_REFERRERS, fallback_tag, list_referrers
from mirrorbot.reference import parse_reference
from mirrorbot.state.store import TagRecord
from tests.conftest import CREDS
from tests.support import skopeo
from tests.support.referrers import ReferrersFront, artifact, fallback_index
from tests.support.world import World, write_config

SPDX = "application/spdx+json"
OTHER = "application/vnd.example.scan+json"


def _configure(world: World, lines: str, *, source: str | None = None) -> None:
    write_config(world, source=source)
    text = world.config.read_text()
    world.config.write_text(text.replace("    list: catalog\n", f"    list: catalog\n{lines}", 1))


def _mirror(world: World, repository: str) -> str:
    return f"{world.mirror.host}/{world.mirror_ns}/{repository}"


def _tags(world: World, host: str | None = None) -> dict[str, Any]:
    path = f"state/{host or world.upstream.host}/{world.ns}.json"
    tags: dict[str, Any] = json.loads(world.remote_file(path))["images"]["app"]["tags"]
    return tags


@pytest.mark.slow(seconds=8)
def test_referrers_fallback_tag_follows_its_image_through_include(world: World) -> None:
    f = ImageFactory(world.ns)
    v2, dev = f.image("app-v2"), f.image("app-dev")
    sbom = artifact(v2, SPDX, b'{"spdxVersion": "SPDX-2.3"}')
    dev_sbom = artifact(dev, SPDX, b'{"spdxVersion": "SPDX-2.3", "name": "dev"}')
    world.seed("app", "v2", v2)
    world.seed("app", "dev", dev)
    world.seed("app", sbom.digest, sbom)
    world.seed("app", dev_sbom.digest, dev_sbom)
    world.seed("app", fallback_tag(v2.digest), fallback_index((sbom, SPDX)))
    world.seed("app", fallback_tag(dev.digest), fallback_index((dev_sbom, SPDX)))
    _configure(world, "    include: ['v\\d+']\n")

    run = world.run("sync")

    assert run.returncode == 0, run.stdout + run.stderr
    tags = set(skopeo.list_tags(_mirror(world, "app"), CREDS))
    assert tags == {"v2", fallback_tag(v2.digest)}  # dev's is left out with dev
    assert skopeo.manifest_digest(f"{_mirror(world, 'app')}@{sbom.digest}", CREDS) == sbom.digest
    assert set(_tags(world)) == {"v2", fallback_tag(v2.digest)}


@pytest.mark.slow(seconds=8)
def test_referrers_api_upstream_gets_its_referrers_copied(
    world: World, source_registry: LocalRegistry
) -> None:
    f = ImageFactory(world.ns)
    v1 = f.image("app-v1")
    sbom = artifact(v1, SPDX, b'{"spdxVersion": "SPDX-2.3"}')
    scan = artifact(v1, OTHER, b'{"findings": []}')
    world.seed("app", "v1", v1)
    world.seed("app", sbom.digest, sbom)  # by digest only: no fallback tag upstream
    world.seed("app", scan.digest, scan)
    with ReferrersFront(source_registry) as front:
        host = front.host
        _configure(
            world,
            f"    referrers: {{enabled: true, types: ['{SPDX}']}}\n",
            source=f"{front.host}/{world.ns}",
        )
        run = world.run("sync")
    assert run.returncode == 0, run.stdout + run.stderr
    assert ("GET", f"/v2/{world.ns}/app/referrers/{v1.digest}") in front.requests

    mirror = _mirror(world, "app")
    assert skopeo.manifest_digest(f"{mirror}@{sbom.digest}", CREDS) == sbom.digest
    with pytest.raises(subprocess.CalledProcessError):  # not of a configured artifactType
        skopeo.inspect_raw(f"{mirror}@{scan.digest}", CREDS)
    # The mirror has no referrers API: its fallback tag lists what was copied.
    index = json.loads(skopeo.inspect_raw(f"{mirror}:{fallback_tag(v1.digest)}", CREDS))
    assert index["mediaType"] == OCI_INDEX
    assert [(e["digest"], e["artifactType"]) for e in index["manifests"]] == [(sbom.digest, SPDX)]
    assert _tags(world, host)["v1"]["referrers"] == {sbom.digest: SPDX}
    page = world.remote_file(f"state/index/{host}/{world.ns}.md")
    assert f"| (by digest) | `{SPDX}` | `{sbom.digest[:15]}…` | `v1` |" in page


@pytest.mark.slow(seconds=8)
def test_referrers_without_an_api_upstream_are_read_from_the_fallback_tag(world: World) -> None:
    f = ImageFactory(world.ns)
    v1 = f.image("app-v1")
    sbom = artifact(v1, SPDX, b'{"spdxVersion": "SPDX-2.3"}')
    scan = artifact(v1, OTHER, b'{"findings": []}')
    world.seed("app", "v1", v1)
    world.seed("app", sbom.digest, sbom)
    world.seed("app", scan.digest, scan)
    world.seed("app", fallback_tag(v1.digest), fallback_index((sbom, SPDX), (scan, OTHER)))
    # signatures: false, so the tag is not copied as a tag: mirrorbot writes the mirror's own.
    _configure(
        world, f"    signatures: false\n    referrers: {{enabled: true, types: ['{SPDX}']}}\n"
    )

    run = world.run("sync")

    assert run.returncode == 0, run.stdout + run.stderr
    mirror = _mirror(world, "app")
    assert skopeo.manifest_digest(f"{mirror}@{sbom.digest}", CREDS) == sbom.digest
    with pytest.raises(subprocess.CalledProcessError):
        skopeo.inspect_raw(f"{mirror}@{scan.digest}", CREDS)
    index = json.loads(skopeo.inspect_raw(f"{mirror}:{fallback_tag(v1.digest)}", CREDS))
    assert [e["digest"] for e in index["manifests"]] == [sbom.digest]
    assert _tags(world)["v1"]["referrers"] == {sbom.digest: SPDX}
    assert set(_tags(world)) == {"v1"}


@pytest.mark.parametrize(
    "answer",
    [
        b'{"manifests": {"not": "a list"}}',
        json.dumps(
            {
                "manifests": [
                    {"mediaType": OCI_MANIFEST, "digest": f"sha256:{n:064x}", "size": 1}
                    for n in range(MAX_REFERRERS + 1)
                ]
            }
        ).encode(),
        b'{"manifests": [{"mediaType": "x/y", "digest": "sha256:../../etc", "size": 1}]}',
    ],
    ids=["not-an-index", "too-many", "bad-digest"],
)
@pytest.mark.slow(seconds=6)
def test_hostile_referrers_answer_is_one_warning_and_the_image_is_kept(
    world: World, source_registry: LocalRegistry, answer: bytes
) -> None:
    v1 = ImageFactory(world.ns).image("app-v1")
    world.seed("app", "v1", v1)
    with ReferrersFront(source_registry) as front:
        front.hostile = answer
        host = front.host
        _configure(world, "    referrers: {enabled: true}\n", source=f"{front.host}/{world.ns}")
        run = world.run("sync")
    assert run.returncode == 0, run.stdout + run.stderr
    output = run.stdout + run.stderr
    assert output.count("referrers not copied") == 1, output
    assert "referrers" not in _tags(world, host)["v1"]
    assert skopeo.manifest_digest(f"{_mirror(world, 'app')}:v1", CREDS) == v1.digest


def _index_with_references(f: ImageFactory) -> tuple[Image, dict[str, str]]:
    """amd64 + arm64 images, each with a reference entry: an attestation and a ``builder``."""
    amd64 = f.image("multi", platform="linux/amd64")
    arm64 = f.image("multi", platform="linux/arm64")
    about_amd64 = f.attestation("multi/amd64", amd64.digest)
    about_arm64 = f.attestation("multi/arm64-builder", arm64.digest)
    unknown = {"os": "unknown", "architecture": "unknown"}
    entries = [
        amd64.descriptor(platform={"os": "linux", "architecture": "amd64"}),
        arm64.descriptor(platform={"os": "linux", "architecture": "arm64"}),
        about_amd64.descriptor(
            platform=unknown,
            annotations={
                "vnd.docker.reference.digest": amd64.digest,
                "vnd.docker.reference.type": "attestation-manifest",
            },
        ),
        about_arm64.descriptor(
            platform=unknown,
            annotations={
                "vnd.docker.reference.digest": arm64.digest,
                "vnd.docker.reference.type": "builder",
            },
        ),
    ]
    parts = (amd64, arm64, about_amd64, about_arm64)
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    image = Image(
        tuple(blob for part in parts for blob in part.blobs),
        (*(m for part in parts for m in part.manifests), (OCI_INDEX, raw)),
    )
    return image, {"arm64": arm64.digest, "builder": about_arm64.digest}


async def test_platform_filter_keeps_a_builder_reference_entry(
    source_registry: LocalRegistry, plain_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    image, digests = _index_with_references(ImageFactory(ns))
    with Seeder(source_registry.url) as seeder:
        seeder.push(f"{ns}/multi", "v1", image)
    store = CredentialStore({}, docker_config=tmp_path / "no-docker-config.json")
    async with RegistryPool(store) as pool:
        result = await Copier(pool).copy(
            parse_reference(f"{source_registry.host}/{ns}/multi:v1"),
            parse_reference(f"{plain_registry.host}/{ns}/multi:v1"),
            platforms=PlatformFilter.parse(["linux/arm64"]),
        )
    assert result.platforms == ("linux/arm64",)
    raw = skopeo.inspect_raw(f"{plain_registry.host}/{ns}/multi:v1")
    kept = [entry["digest"] for entry in json.loads(raw)["manifests"]]
    assert kept == [digests["arm64"], digests["builder"]]
    skopeo.copy_to_oci(f"{plain_registry.host}/{ns}/multi:v1", tmp_path / "oci")


def test_state_records_referrers_additively() -> None:
    old = {
        "digest": "sha256:" + "a" * 64,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "platforms": ["linux/amd64"],
        "size": 10,
        "synced": "2026-01-01T00:00:00Z",
    }
    record = TagRecord.from_json(old, "old")
    assert record.referrers == ()
    assert record.to_json() == old  # old files load and write back unchanged
    newer = {**old, "referrers": {"sha256:" + "c" * 64: SPDX, "sha256:" + "b" * 64: ""}}
    loaded = TagRecord.from_json(newer, "new")
    assert list(loaded.to_json()["referrers"]) == ["sha256:" + "b" * 64, "sha256:" + "c" * 64]
    with pytest.raises(StateError, match="not a media type"):
        TagRecord.from_json({**old, "referrers": {"sha256:" + "b" * 64: "<b>"}}, "bad")


def test_referrers_config_defaults_and_overrides() -> None:
    text = f"""\
mirror: {{namespace: m}}
defaults:
  referrers: {{enabled: true, types: ['{SPDX}']}}
namespaces:
  - source: quay.io/a
  - source: quay.io/b
    referrers: {{enabled: false}}
"""
    first, second = parse_config(text).namespace_plans()
    assert (first.referrers.enabled, first.referrers.types) == (True, (SPDX,))
    assert (second.referrers.enabled, second.referrers.types) == (False, ())
    (plain,) = parse_config(
        "mirror: {namespace: m}\nnamespaces: [{source: quay.io/a}]\n"
    ).namespace_plans()
    assert not plain.referrers.enabled  # off unless asked: no extra request per image
    with pytest.raises(ConfigError, match="types"):
        parse_config(text.replace(SPDX, "not a media type"))


@pytest.mark.slow(seconds=8)
def test_a_paged_referrers_answer_is_read_to_its_last_page(
    world: World, source_registry: LocalRegistry
) -> None:
    """Three referrers served one a page (``Link: rel="next"``): all three are copied."""
    f = ImageFactory(world.ns)
    v1 = f.image("app-v1")
    referrers = [artifact(v1, SPDX, f'{{"n": {n}}}'.encode()) for n in range(3)]
    world.seed("app", "v1", v1)
    for referrer in referrers:
        world.seed("app", referrer.digest, referrer)
    with ReferrersFront(source_registry) as front:
        front.page_size = 1
        host = front.host
        _configure(world, "    referrers: {enabled: true}\n", source=f"{host}/{world.ns}")
        run = world.run("sync")
        asked = [p for m, p in front.requests if m == "GET" and "/referrers/" in p]
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(asked) == 3, asked
    assert _tags(world, host)["v1"]["referrers"] == {r.digest: SPDX for r in referrers}
    mirror = _mirror(world, "app")
    for referrer in referrers:
        assert skopeo.manifest_digest(f"{mirror}@{referrer.digest}", CREDS) == referrer.digest


@pytest.mark.slow(seconds=10)
def test_types_filter_the_fallback_tag_copied_in_the_signature_phase(world: World) -> None:
    """The bare ``sha256-<hex>`` tag is copied with only the entries of ``referrers.types``.

    Its filtered index is a new digest, recorded as such: a second run copies nothing.
    """
    f = ImageFactory(world.ns)
    v1 = f.image("app-v1")
    sbom = artifact(v1, SPDX, b'{"spdxVersion": "SPDX-2.3"}')
    scan = artifact(v1, OTHER, b'{"findings": []}')
    world.seed("app", "v1", v1)
    world.seed("app", sbom.digest, sbom)
    world.seed("app", scan.digest, scan)
    tag = fallback_tag(v1.digest)
    upstream_index = fallback_index((sbom, SPDX), (scan, OTHER))
    world.seed("app", tag, upstream_index)
    _configure(world, f"    referrers: {{enabled: true, types: ['{SPDX}']}}\n")

    run = world.run("sync")

    assert run.returncode == 0, run.stdout + run.stderr
    mirror = _mirror(world, "app")
    index = json.loads(skopeo.inspect_raw(f"{mirror}:{tag}", CREDS))
    assert [e["digest"] for e in index["manifests"]] == [sbom.digest]
    with pytest.raises(subprocess.CalledProcessError):
        skopeo.inspect_raw(f"{mirror}@{scan.digest}", CREDS)
    record = _tags(world)[tag]
    assert record["digest"] == skopeo.manifest_digest(f"{mirror}:{tag}", CREDS)
    assert record["digest"] != upstream_index.digest
    changelog = world.remote_file("state/CHANGELOG.md")
    again = world.run("sync")
    assert again.returncode == 0, again.stdout + again.stderr
    assert world.remote_file("state/CHANGELOG.md") == changelog


@pytest.mark.slow(seconds=10)
def test_a_platform_filtered_index_gets_its_referrers_under_the_mirrors_digest(
    world: World,
) -> None:
    """``platforms:`` makes a new index; upstream's referrers of the index follow it.

    Each is pushed with ``subject`` rewritten to the mirror's index (a new
    referrer digest, same config and layers) and listed in the mirror's
    fallback tag of that index.
    """
    f = ImageFactory(world.ns)
    multi = f.index("app-multi")
    sbom = artifact(multi, SPDX, b'{"spdxVersion": "SPDX-2.3"}')
    world.seed("app", "v1", multi)
    world.seed("app", sbom.digest, sbom)
    world.seed("app", fallback_tag(multi.digest), fallback_index((sbom, SPDX)))
    _configure(
        world,
        "    platforms: [linux/arm64]\n    signatures: false\n    referrers: {enabled: true}\n",
    )

    run = world.run("sync")

    assert run.returncode == 0, run.stdout + run.stderr
    record = _tags(world)["v1"]
    pushed = record["digest"]
    assert pushed != multi.digest  # filtered
    [(copied, kind)] = record["referrers"].items()
    assert kind == SPDX
    assert copied != sbom.digest
    mirror = _mirror(world, "app")
    index = json.loads(skopeo.inspect_raw(f"{mirror}:{fallback_tag(pushed)}", CREDS))
    assert [e["digest"] for e in index["manifests"]] == [copied]
    document = json.loads(skopeo.inspect_raw(f"{mirror}@{copied}", CREDS))
    original = json.loads(sbom.manifests[0][1])
    assert document["subject"]["digest"] == pushed
    assert document["layers"] == original["layers"]
    assert document["config"] == original["config"]


def _referrers_api(links: dict[str, str | None]) -> httpx.MockTransport:
    """A registry whose referrers answer is paged: each page's ``Link`` from ``links``."""

    def handle(request: httpx.Request) -> httpx.Response:
        page = request.url.params.get("page", "1")
        entry = {
            "mediaType": OCI_MANIFEST,
            "digest": "sha256:" + page.rjust(64, "0"),
            "size": 10,
            "artifactType": SPDX,
        }
        headers = {"Content-Type": OCI_INDEX}
        link = links.get(page)
        if link is not None:
            headers["Link"] = f'<{link}>; rel="next"'
        document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
        return httpx.Response(200, headers=headers, content=json.dumps(document).encode())

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("links", "outcome"),
    [
        ({"1": "?page=2", "2": "?page=1"}, 2),  # links back to a page served: stop there
        ({"1": "https://elsewhere.example/v2/x/referrers/d?page=2"}, "leaves"),
        ({"1": "http://registry.example/v2/x/referrers/d?page=2"}, "leaves"),  # not https
    ],
)
async def test_referrers_pages_stay_on_the_registry_and_never_loop(
    links: dict[str, str | None], outcome: int | str
) -> None:
    subject = "sha256:" + "a" * 64
    async with RegistryClient(
        "registry.example",
        transport=_referrers_api(links),
        retry=RetryPolicy(attempts=1, timeout=None, wait_initial=0, wait_max=0),
    ) as client:
        if isinstance(outcome, int):
            found = await list_referrers(client, "x", subject)
            assert len(found) == outcome
        else:
            with pytest.raises(ProtocolViolationError, match=outcome):
                await list_referrers(client, "x", subject)
