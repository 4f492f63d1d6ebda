"""Manifest parsing, platforms and index filtering, on hand-written documents."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from mirrorbot.engine.registry.media import (
    ACCEPT_MANIFESTS,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    FOREIGN_LAYER_TYPES,
    IMAGE_TYPES,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    Platform,
    PlatformFilter,
    filter_index,
    parse_manifest,
    sha256_digest,
)
from mirrorbot.errors import UnsupportedManifestError

REF = "ghcr.io/o/r:v1"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
FOREIGN_DOCKER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
ATTESTATION = "attestation-manifest"


def dg(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def image_doc(media_type: str | None = OCI_MANIFEST, *, layers: int = 2) -> dict[str, Any]:
    docker = media_type == DOCKER_MANIFEST
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "config": {
            "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
            "digest": dg("config"),
            "size": 123,
        },
        "layers": [
            {
                "mediaType": DOCKER_LAYER if docker else OCI_LAYER,
                "digest": dg(f"layer{i}"),
                "size": 1000 + i,
            }
            for i in range(layers)
        ],
    }
    if media_type is not None:
        document["mediaType"] = media_type
    return document


def entry(
    seed: str, platform: str | None, *, attests: str | None = None, media_type: str = OCI_MANIFEST
) -> dict[str, Any]:
    value: dict[str, Any] = {"mediaType": media_type, "digest": dg(seed), "size": 500}
    if platform is not None:
        parts = platform.split("/")
        value["platform"] = {"os": parts[0], "architecture": parts[1]}
        if len(parts) == 3:
            value["platform"]["variant"] = parts[2]
    if attests is not None:
        value["annotations"] = {
            "vnd.docker.reference.type": ATTESTATION,
            "vnd.docker.reference.digest": dg(attests),
        }
    return value


def index_doc(entries: list[dict[str, Any]], media_type: str | None = OCI_INDEX) -> dict[str, Any]:
    document: dict[str, Any] = {"schemaVersion": 2, "manifests": entries}
    if media_type is not None:
        document["mediaType"] = media_type
    return document


def buildx_index() -> dict[str, Any]:
    """What ``docker buildx`` pushes: images plus one attestation per image."""
    return index_doc(
        [
            entry("amd64", "linux/amd64"),
            entry("arm64", "linux/arm64/v8"),
            entry("armv7", "linux/arm/v7"),
            entry("att-amd64", "unknown/unknown", attests="amd64"),
            entry("att-arm64", "unknown/unknown", attests="arm64"),
            entry("att-armv7", "unknown/unknown", attests="armv7"),
        ]
    )


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.hostile("registry answers (manifests, bodies, headers)")
@pytest.mark.parametrize(
    ("media_type", "content_type"),
    [
        (OCI_MANIFEST, OCI_MANIFEST),
        (OCI_MANIFEST, None),
        (OCI_MANIFEST, "application/json"),
        (DOCKER_MANIFEST, DOCKER_MANIFEST),
        (DOCKER_MANIFEST, None),
    ],
)
def test_parse_image_manifest(media_type: str, content_type: str | None) -> None:
    raw = encode(image_doc(media_type))
    manifest = parse_manifest(raw, content_type, REF)
    assert manifest.media_type == media_type
    assert not manifest.is_index
    assert manifest.raw == raw
    assert manifest.size == len(raw)
    assert manifest.digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert manifest.children == ()
    assert manifest.config is not None
    assert manifest.config.digest == dg("config")
    assert manifest.config.size == 123
    assert [layer.digest for layer in manifest.layers] == [dg("layer0"), dg("layer1")]
    assert [layer.size for layer in manifest.layers] == [1000, 1001]
    # Config first, then the layers in order.
    assert manifest.blobs == (manifest.config, *manifest.layers)
    assert manifest.platforms() == ()


@pytest.mark.parametrize(
    "content_type",
    [OCI_MANIFEST, OCI_MANIFEST + "; charset=utf-8", None, "application/octet-stream"],
)
def test_oci_manifest_without_media_type_field(content_type: str | None) -> None:
    manifest = parse_manifest(encode(image_doc(None)), content_type, REF)
    assert manifest.media_type == OCI_MANIFEST
    assert manifest.config is not None


def test_media_type_without_field_comes_from_content_type_header() -> None:
    manifest = parse_manifest(encode(image_doc(None)), DOCKER_MANIFEST, REF)
    assert manifest.media_type == DOCKER_MANIFEST


def test_media_type_field_wins_over_content_type_header() -> None:
    manifest = parse_manifest(encode(image_doc(DOCKER_MANIFEST)), OCI_MANIFEST, REF)
    assert manifest.media_type == DOCKER_MANIFEST


@pytest.mark.parametrize(
    ("media_type", "content_type", "expected"),
    [
        (OCI_INDEX, OCI_INDEX, OCI_INDEX),
        (OCI_INDEX, None, OCI_INDEX),
        (None, None, OCI_INDEX),
        (None, OCI_INDEX, OCI_INDEX),
        (None, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_LIST),
        (DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_LIST),
        (DOCKER_MANIFEST_LIST, None, DOCKER_MANIFEST_LIST),
    ],
)
def test_parse_index(media_type: str | None, content_type: str | None, expected: str) -> None:
    document = index_doc(
        [
            entry("amd64", "linux/amd64", media_type=DOCKER_MANIFEST),
            entry("arm64", "linux/arm64/v8", media_type=DOCKER_MANIFEST),
        ],
        media_type,
    )
    raw = encode(document)
    manifest = parse_manifest(raw, content_type, REF)
    assert manifest.media_type == expected
    assert manifest.is_index
    assert manifest.config is None
    assert manifest.layers == ()
    assert manifest.blobs == ()
    assert [c.digest for c in manifest.children] == [dg("amd64"), dg("arm64")]
    assert [c.media_type for c in manifest.children] == [DOCKER_MANIFEST] * 2
    assert manifest.children[1].platform == Platform("linux", "arm64", "v8")
    assert manifest.platforms() == ("linux/amd64", "linux/arm64/v8")
    assert manifest.digest == sha256_digest(raw)


def test_oci_artifact_manifest_with_other_config_type_is_an_image() -> None:
    document = image_doc(OCI_MANIFEST, layers=1)
    document["config"]["mediaType"] = "application/vnd.dev.cosign.artifact.sig.v1+json"
    document["artifactType"] = "application/vnd.dev.cosign.artifact.sig.v1+json"
    document["subject"] = {"mediaType": OCI_MANIFEST, "digest": dg("signed"), "size": 42}
    manifest = parse_manifest(encode(document), None, REF)
    assert manifest.media_type == OCI_MANIFEST
    assert manifest.subject is not None
    assert manifest.subject.digest == dg("signed")
    assert len(manifest.layers) == 1


def test_image_without_layers_key_has_no_layers() -> None:
    document = image_doc(OCI_MANIFEST)
    del document["layers"]
    manifest = parse_manifest(encode(document), None, REF)
    assert manifest.layers == ()
    assert manifest.blobs == (manifest.config,)


def test_digest_is_sha256_of_exact_bytes() -> None:
    document = image_doc(OCI_MANIFEST)
    compact = json.dumps(document, separators=(",", ":")).encode()
    pretty = json.dumps(document, indent=3).encode()
    trailing = compact + b"\n"
    parsed = [parse_manifest(raw, OCI_MANIFEST, REF) for raw in (compact, pretty, trailing)]
    # Same document, different bytes, different digests: nothing is re-serialised.
    assert len({m.digest for m in parsed}) == 3
    for raw, manifest in zip((compact, pretty, trailing), parsed, strict=True):
        assert manifest.raw == raw
        assert manifest.digest == "sha256:" + hashlib.sha256(raw).hexdigest()
        assert manifest.layers == parsed[0].layers


def test_sha256_digest() -> None:
    assert sha256_digest(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        ({"schemaVersion": 1, "name": "o/r", "tag": "v1", "fsLayers": []}, None),
        ({"schemaVersion": 1, "name": "o/r", "tag": "v1", "fsLayers": []}, OCI_MANIFEST),
        ({"schemaVersion": 1, "name": "o/r", "fsLayers": [], "signatures": []}, SCHEMA1_SIGNED),
        ({"name": "o/r", "fsLayers": []}, SCHEMA1_SIGNED),
        ({"name": "o/r", "fsLayers": []}, SCHEMA1),
        ({"name": "o/r", "fsLayers": []}, SCHEMA1_SIGNED + "; charset=utf-8"),
        ({"mediaType": SCHEMA1, "schemaVersion": 1}, None),
        ({"mediaType": SCHEMA1_SIGNED, "schemaVersion": 1}, None),
        # Served as schema1 by the registry: never read it as something else by its shape.
        (image_doc(None), SCHEMA1_SIGNED),
    ],
)
def test_schema1_is_unsupported(document: dict[str, Any], content_type: str | None) -> None:
    with pytest.raises(UnsupportedManifestError, match="schema1") as info:
        parse_manifest(encode(document), content_type, REF)
    assert info.value.reference == REF
    assert info.value.media_type in {SCHEMA1, SCHEMA1_SIGNED}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not JSON"),
        (b"<html>nope</html>", "not JSON"),
        (b"{", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'"manifest"', "not a JSON object"),
        (b"42", "not a JSON object"),
        (b"null", "not a JSON object"),
        (b"{}", "cannot tell"),
        (b'{"schemaVersion": 2}', "cannot tell"),
        (encode({"mediaType": "text/plain"}), "neither an image manifest nor an index"),
        (encode({"mediaType": OCI_INDEX}), "without a manifests list"),
        (encode({"mediaType": OCI_INDEX, "manifests": {}}), "without a manifests list"),
        (encode({**image_doc(OCI_MANIFEST), "layers": {}}), "layers is not a list"),
        (encode({**image_doc(OCI_MANIFEST), "config": None}), "descriptor is not an object"),
        (encode({**image_doc(OCI_MANIFEST), "config": {"size": 1}}), "without digest"),
        (
            encode({**image_doc(OCI_MANIFEST), "config": {"digest": dg("c"), "size": -1}}),
            "without digest or size",
        ),
        (
            encode({**image_doc(OCI_MANIFEST), "config": {"digest": dg("c"), "size": "12"}}),
            "without digest or size",
        ),
        (
            encode({**image_doc(OCI_MANIFEST), "config": {"digest": dg("c"), "size": True}}),
            "without digest or size",
        ),
        (encode(index_doc(["not a descriptor"])), "descriptor is not an object"),
    ],
)
def test_unparseable(raw: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedManifestError, match=reason) as info:
        parse_manifest(raw, None, REF)
    assert str(info.value).startswith(f"{REF}: unsupported manifest")


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:abc",
        "sha256:" + "A" * 64,
        "md5:" + "a" * 32,
        "sha256:" + "a" * 64 + "/../../v2/other/blobs/x",
        "sha256:" + "a" * 64 + "?x=1",
        "",
    ],
)
def test_descriptor_digest_is_validated(digest: str) -> None:
    # A served manifest's digests end up in request paths and choose the verifying hash.
    document = image_doc(OCI_MANIFEST)
    document["layers"][0]["digest"] = digest
    with pytest.raises(UnsupportedManifestError, match="descriptor"):
        parse_manifest(encode(document), None, REF)
    index = index_doc([{**entry("a", "linux/amd64"), "digest": digest}])
    with pytest.raises(UnsupportedManifestError, match="descriptor"):
        parse_manifest(encode(index), None, REF)


def test_sha512_descriptor_digest_is_accepted() -> None:
    document = image_doc(OCI_MANIFEST)
    document["layers"][0]["digest"] = "sha512:" + "a" * 128
    manifest = parse_manifest(encode(document), None, REF)
    assert manifest.layers[0].digest == "sha512:" + "a" * 128


def test_descriptor_fields() -> None:
    value = {
        "mediaType": FOREIGN_DOCKER,
        "digest": dg("foreign"),
        "size": 7,
        "urls": ["https://example.com/layer", 5, "https://mirror.example.com/layer"],
        "annotations": {"a": "b", "n": 1},
        "platform": {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1"},
    }
    descriptor = Descriptor.from_json(value, REF)
    assert descriptor == Descriptor(
        media_type=FOREIGN_DOCKER,
        digest=dg("foreign"),
        size=7,
        platform=Platform("windows", "amd64"),
        annotations={"a": "b", "n": "1"},
        urls=("https://example.com/layer", "https://mirror.example.com/layer"),
    )


def test_descriptor_tolerates_missing_optional_fields() -> None:
    descriptor = Descriptor.from_json({"digest": dg("x"), "size": 0}, REF)
    assert descriptor == Descriptor("", dg("x"), 0)
    assert descriptor.platform is None
    assert dict(descriptor.annotations) == {}
    assert descriptor.urls == ()
    assert not descriptor.is_attestation
    assert not descriptor.is_foreign


@pytest.mark.parametrize(
    "platform",
    [None, "linux/amd64", {"os": "linux"}, {"architecture": "amd64"}, {"os": 1, "architecture": 2}],
)
def test_descriptor_unusable_platform_is_none(platform: Any) -> None:
    descriptor = Descriptor.from_json({"digest": dg("x"), "size": 0, "platform": platform}, REF)
    assert descriptor.platform is None


# --- foreign layers ---------------------------------------------------------------------------


@pytest.mark.parametrize("media_type", sorted(FOREIGN_LAYER_TYPES))
def test_foreign_layers(media_type: str) -> None:
    document = image_doc(DOCKER_MANIFEST, layers=2)
    document["layers"][0]["mediaType"] = media_type
    document["layers"][0]["urls"] = ["https://go.microsoft.com/fwlink/?linkid=1"]
    manifest = parse_manifest(encode(document), None, REF)
    assert manifest.layers[0].is_foreign
    assert manifest.layers[0].urls == ("https://go.microsoft.com/fwlink/?linkid=1",)
    assert not manifest.layers[1].is_foreign
    assert manifest.config is not None
    assert not manifest.config.is_foreign


def test_foreign_layer_types_cover_docker_and_oci() -> None:
    assert FOREIGN_DOCKER in FOREIGN_LAYER_TYPES
    assert "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" in FOREIGN_LAYER_TYPES
    assert OCI_LAYER not in FOREIGN_LAYER_TYPES
    assert DOCKER_LAYER not in FOREIGN_LAYER_TYPES


# --- media type tables --------------------------------------------------------------------------


def test_media_type_tables() -> None:
    assert {OCI_INDEX, DOCKER_MANIFEST_LIST} == INDEX_TYPES
    assert {OCI_MANIFEST, DOCKER_MANIFEST} == IMAGE_TYPES
    assert not INDEX_TYPES & IMAGE_TYPES


def test_accept_header_lists_every_type_and_schema1_last_with_low_q() -> None:
    parts = [part.strip() for part in ACCEPT_MANIFESTS.split(",")]
    assert set(parts[:4]) == INDEX_TYPES | IMAGE_TYPES
    assert parts[-1] == SCHEMA1_SIGNED + ";q=0.1"


# --- platforms ----------------------------------------------------------------------------------


def test_platforms_excludes_attestations_and_sorts() -> None:
    manifest = parse_manifest(encode(buildx_index()), None, REF)
    assert manifest.platforms() == ("linux/amd64", "linux/arm/v7", "linux/arm64/v8")
    attestations = [c for c in manifest.children if c.is_attestation]
    assert len(attestations) == 3
    assert all(c.platform == Platform("unknown", "unknown") for c in attestations)


def test_platforms_excludes_unknown_without_annotation_and_missing_platform() -> None:
    document = index_doc(
        [entry("a", "linux/amd64"), entry("u", "unknown/unknown"), entry("n", None)]
    )
    assert parse_manifest(encode(document), None, REF).platforms() == ("linux/amd64",)


def test_platforms_deduplicates() -> None:
    document = index_doc([entry("a", "linux/amd64"), entry("b", "linux/amd64")])
    assert parse_manifest(encode(document), None, REF).platforms() == ("linux/amd64",)


def test_attestation_with_real_platform_is_still_excluded() -> None:
    document = index_doc([entry("a", "linux/amd64"), entry("att", "linux/s390x", attests="a")])
    assert parse_manifest(encode(document), None, REF).platforms() == ("linux/amd64",)


@pytest.mark.parametrize(
    ("text", "platform"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/arm/v7", Platform("linux", "arm", "v7")),
        (" linux/arm64/v8 ", Platform("linux", "arm64", "v8")),
        ("windows/amd64", Platform("windows", "amd64")),
    ],
)
def test_platform_parse(text: str, platform: Platform) -> None:
    assert Platform.parse(text) == platform
    assert str(Platform.parse(text)) == text.strip()


@pytest.mark.parametrize("text", ["", "linux", "linux/", "/amd64", "linux/arm/v7/extra", "a//b"])
def test_platform_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="os/arch"):
        Platform.parse(text)


def test_platform_unknown() -> None:
    assert Platform("unknown", "unknown").unknown
    assert not Platform("linux", "unknown").unknown
    assert not Platform("unknown", "amd64").unknown


# --- PlatformFilter -------------------------------------------------------------------------------


def test_empty_filter_matches_everything() -> None:
    everything = PlatformFilter()
    assert everything.everything
    assert PlatformFilter.parse([]).everything
    assert everything.matches(None)
    assert everything.matches(Platform("unknown", "unknown"))
    assert everything.matches(Platform("plan9", "mips"))


@pytest.mark.parametrize(
    ("wanted", "platform", "matches"),
    [
        (["linux/amd64"], Platform("linux", "amd64"), True),
        (["linux/amd64"], Platform("linux", "arm64"), False),
        (["linux/amd64"], Platform("windows", "amd64"), False),
        (["linux/amd64"], None, False),
        # No variant wanted: every variant of os/arch matches.
        (["linux/arm64"], Platform("linux", "arm64", "v8"), True),
        (["linux/arm64"], Platform("linux", "arm64"), True),
        (["linux/arm"], Platform("linux", "arm", "v6"), True),
        (["linux/arm"], Platform("linux", "arm", "v7"), True),
        # arm64 without a variant is v8.
        (["linux/arm64/v8"], Platform("linux", "arm64"), True),
        (["linux/arm64/v8"], Platform("linux", "arm64", "v8"), True),
        (["linux/arm64/v9"], Platform("linux", "arm64"), False),
        (["linux/arm/v7"], Platform("linux", "arm", "v7"), True),
        (["linux/arm/v7"], Platform("linux", "arm", "v6"), False),
        (["linux/arm/v7"], Platform("linux", "arm"), False),
        (["linux/amd64", "linux/arm/v7"], Platform("linux", "arm", "v7"), True),
        (["linux/amd64", "linux/arm/v7"], Platform("linux", "386"), False),
        (["linux/amd64"], Platform("unknown", "unknown"), False),
    ],
)
def test_platform_filter_matches(
    wanted: list[str], platform: Platform | None, matches: bool
) -> None:
    platform_filter = PlatformFilter.parse(wanted)
    assert not platform_filter.everything
    assert platform_filter.matches(platform) is matches


def test_platform_filter_parse_rejects_bad_platform() -> None:
    with pytest.raises(ValueError, match="os/arch"):
        PlatformFilter.parse(["linux/amd64", "amd64"])


# --- filter_index -------------------------------------------------------------------------------


def kept_digests(manifest: Manifest) -> list[str]:
    return [c.digest for c in manifest.children]


def test_filter_keeps_wanted_platforms_and_their_attestations() -> None:
    index = parse_manifest(encode(buildx_index()), None, REF)
    filtered = filter_index(index, PlatformFilter.parse(["linux/amd64", "linux/arm64"]), REF)
    assert kept_digests(filtered) == [dg("amd64"), dg("arm64"), dg("att-amd64"), dg("att-arm64")]
    assert filtered.platforms() == ("linux/amd64", "linux/arm64/v8")
    # A new index: new bytes, new digest, the digest of the new bytes, same media type.
    assert filtered.raw != index.raw
    assert filtered.digest != index.digest
    assert filtered.digest == sha256_digest(filtered.raw)
    assert filtered.media_type == index.media_type == OCI_INDEX
    assert json.loads(filtered.raw)["mediaType"] == OCI_INDEX
    # Entries are kept verbatim, annotations and all.
    original = {e["digest"]: e for e in json.loads(index.raw)["manifests"]}
    for kept in json.loads(filtered.raw)["manifests"]:
        assert kept == original[kept["digest"]]


def test_filtered_index_parses_back_to_itself() -> None:
    index = parse_manifest(encode(buildx_index()), None, REF)
    filtered = filter_index(index, PlatformFilter.parse(["linux/arm/v7"]), REF)
    again = parse_manifest(filtered.raw, filtered.media_type, REF)
    assert again == filtered
    assert kept_digests(filtered) == [dg("armv7"), dg("att-armv7")]


def test_filter_docker_manifest_list_keeps_media_type() -> None:
    document = index_doc(
        [
            entry("amd64", "linux/amd64", media_type=DOCKER_MANIFEST),
            entry("arm64", "linux/arm64/v8", media_type=DOCKER_MANIFEST),
        ],
        DOCKER_MANIFEST_LIST,
    )
    index = parse_manifest(encode(document), DOCKER_MANIFEST_LIST, REF)
    filtered = filter_index(index, PlatformFilter.parse(["linux/arm64/v8"]), REF)
    assert filtered.media_type == DOCKER_MANIFEST_LIST
    assert json.loads(filtered.raw)["mediaType"] == DOCKER_MANIFEST_LIST
    assert kept_digests(filtered) == [dg("arm64")]


def test_filter_oci_index_without_media_type_field_keeps_media_type() -> None:
    index = parse_manifest(
        encode(index_doc([entry("a", "linux/amd64"), entry("b", "linux/s390x")], None)),
        OCI_INDEX,
        REF,
    )
    filtered = filter_index(index, PlatformFilter.parse(["linux/s390x"]), REF)
    assert filtered.media_type == OCI_INDEX
    assert kept_digests(filtered) == [dg("b")]


def test_filter_keeps_other_index_fields() -> None:
    document = buildx_index()
    document["annotations"] = {"org.opencontainers.image.source": "https://example.com/src"}
    document["subject"] = {"mediaType": OCI_MANIFEST, "digest": dg("subject"), "size": 3}
    index = parse_manifest(encode(document), None, REF)
    filtered = filter_index(index, PlatformFilter.parse(["linux/amd64"]), REF)
    kept = json.loads(filtered.raw)
    assert kept["annotations"] == document["annotations"]
    assert kept["schemaVersion"] == 2
    assert filtered.subject == index.subject


def test_filter_returns_same_object_when_nothing_is_dropped() -> None:
    index = parse_manifest(encode(buildx_index()), None, REF)
    everything = PlatformFilter.parse(["linux/amd64", "linux/arm64", "linux/arm"])
    assert filter_index(index, everything, REF) is index
    assert filter_index(index, PlatformFilter(), REF) is index


def test_filter_leaves_an_image_alone() -> None:
    image = parse_manifest(encode(image_doc(OCI_MANIFEST)), None, REF)
    assert filter_index(image, PlatformFilter.parse(["linux/s390x"]), REF) is image


def test_filter_raises_when_no_platform_matches() -> None:
    index = parse_manifest(encode(buildx_index()), None, REF)
    with pytest.raises(UnsupportedManifestError, match="no manifest for platforms") as info:
        filter_index(index, PlatformFilter.parse(["linux/s390x", "windows/amd64"]), REF)
    assert "linux/s390x, windows/amd64" in str(info.value)
    assert info.value.reference == REF


def test_filter_never_keeps_attestations_alone() -> None:
    # unknown/unknown is asked for, but only attestations carry it: nothing to copy.
    index = parse_manifest(encode(buildx_index()), None, REF)
    with pytest.raises(UnsupportedManifestError):
        filter_index(index, PlatformFilter.parse(["unknown/unknown"]), REF)


def test_filter_drops_attestations_of_dropped_images_and_orphans() -> None:
    document = index_doc(
        [
            entry("amd64", "linux/amd64"),
            entry("arm64", "linux/arm64"),
            entry("att-amd64", "unknown/unknown", attests="amd64"),
            entry("att-arm64", "unknown/unknown", attests="arm64"),
            entry("att-orphan", "unknown/unknown", attests="gone"),
        ]
    )
    index = parse_manifest(encode(document), None, REF)
    filtered = filter_index(index, PlatformFilter.parse(["linux/arm64"]), REF)
    assert kept_digests(filtered) == [dg("arm64"), dg("att-arm64")]


def test_filter_decides_per_entry_when_a_digest_is_listed_twice() -> None:
    # One image may be listed under two platforms; keeping one must not keep the other.
    document = index_doc(
        [
            entry("multi", "linux/amd64"),
            entry("multi", "linux/386"),
            entry("arm64", "linux/arm64"),
        ]
    )
    index = parse_manifest(encode(document), None, REF)
    filtered = filter_index(index, PlatformFilter.parse(["linux/amd64"]), REF)
    assert filtered.platforms() == ("linux/amd64",)
    assert kept_digests(filtered) == [dg("multi")]
    only_listed_twice = parse_manifest(encode(index_doc(document["manifests"][:2])), None, REF)
    filtered = filter_index(only_listed_twice, PlatformFilter.parse(["linux/amd64"]), REF)
    assert filtered is not only_listed_twice
    assert filtered.platforms() == ("linux/amd64",)


def test_filter_drops_entries_without_platform() -> None:
    document = index_doc([entry("amd64", "linux/amd64"), entry("nested", None)])
    index = parse_manifest(encode(document), None, REF)
    filtered = filter_index(index, PlatformFilter.parse(["linux/amd64"]), REF)
    assert kept_digests(filtered) == [dg("amd64")]
