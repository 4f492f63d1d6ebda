"""Media types, manifest parsing and descriptor walking.

A :class:`Manifest` keeps the exact bytes it was served with: the digest is the
sha256 of those bytes, so they are what we push. Parsing only extracts what the
copier needs to walk (children, config, layers) and what state records
(platforms).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mirrorbot.errors import (
    InvalidReferenceError,
    NoMatchingPlatformError,
    UnsupportedManifestError,
)
from mirrorbot.reference import validate_digest

__all__ = [
    "ACCEPT_MANIFESTS",
    "ANY",
    "ATTESTATION_DIGEST_ANNOTATION",
    "ATTESTATION_TYPE_ANNOTATION",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "DOCKER_SCHEMA1",
    "DOCKER_SCHEMA1_SIGNED",
    "FOREIGN_LAYER_TYPES",
    "IMAGE_CONFIG_TYPES",
    "IMAGE_TYPES",
    "INDEX_TYPES",
    "MAX_MANIFEST_SIZE",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "SCHEMA1_TYPES",
    "Descriptor",
    "Manifest",
    "Platform",
    "PlatformFilter",
    "filter_index",
    "parse_manifest",
    "platform_of_config",
    "sha256_digest",
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
FOREIGN_LAYER_TYPES = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)

# Schema1 is listed last so that a registry that only has schema1 says so,
# and we can report it instead of receiving a silently converted manifest.
ACCEPT_MANIFESTS = ", ".join(
    [
        OCI_INDEX,
        DOCKER_MANIFEST_LIST,
        OCI_MANIFEST,
        DOCKER_MANIFEST,
        DOCKER_SCHEMA1_SIGNED + ";q=0.1",
    ]
)

MAX_MANIFEST_SIZE = 4 * 1024 * 1024
ATTESTATION_TYPE_ANNOTATION = "vnd.docker.reference.type"
ATTESTATION_DIGEST_ANNOTATION = "vnd.docker.reference.digest"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True, order=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r} is not os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    @classmethod
    def from_json(cls, value: Any) -> Platform | None:
        if not isinstance(value, Mapping):
            return None
        os_name, arch = value.get("os"), value.get("architecture")
        if not isinstance(os_name, str) or not isinstance(arch, str):
            return None
        variant = value.get("variant")
        return cls(os_name, arch, variant if isinstance(variant, str) else "")

    @property
    def unknown(self) -> bool:
        return self.os == "unknown" and self.architecture == "unknown"

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


_DEFAULT_VARIANTS = {"arm64": "v8"}
ANY = "*"  # image-syncer's --os without --arch (or the reverse): any value matches


@dataclass(frozen=True, slots=True)
class PlatformFilter:
    """Which platforms of an index to keep. Empty means all.

    A wanted platform without a variant matches every variant of that
    os/architecture, as ``docker pull --platform linux/arm`` does.
    """

    wanted: tuple[Platform, ...] = ()

    @classmethod
    def parse(cls, values: Iterable[str]) -> PlatformFilter:
        return cls(tuple(Platform.parse(v) for v in values))

    @classmethod
    def from_lists(cls, systems: Iterable[str], architectures: Iterable[str]) -> PlatformFilter:
        """Every (os, arch) pair (image-syncer's ``--os``/``--arch``); an empty list means any.

        An architecture may carry a variant, ``arm:v7`` (image-syncer) or ``arm/v7``.
        """
        oses = [s for s in systems if s] or [ANY]
        arches = [a for a in architectures if a] or [ANY]
        if oses == [ANY] and arches == [ANY]:
            return cls()
        split = [a.replace(":", "/").partition("/")[::2] for a in arches]
        return cls(tuple(Platform(o, a, v) for o in oses for a, v in split))

    @property
    def everything(self) -> bool:
        return not self.wanted

    def matches(self, platform: Platform | None) -> bool:
        if self.everything:
            return True
        if platform is None:
            return False
        for want in self.wanted:
            if want.os not in (ANY, platform.os) or want.architecture not in (
                ANY,
                platform.architecture,
            ):
                continue
            if not want.variant:
                return True
            have = platform.variant or _DEFAULT_VARIANTS.get(platform.architecture, "")
            if want.variant == have:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, value: Any, reference: str) -> Descriptor:
        if not isinstance(value, Mapping):
            raise UnsupportedManifestError(reference, "", "descriptor is not an object")
        digest, size = value.get("digest"), value.get("size")
        if (
            not isinstance(digest, str)
            or not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
        ):
            raise UnsupportedManifestError(reference, "", "descriptor without digest or size")
        try:
            # The digest ends up in URL paths and picks the hash that verifies content.
            validate_digest(digest)
        except InvalidReferenceError as exc:
            raise UnsupportedManifestError(reference, "", f"descriptor: {exc.reason}") from None
        media_type = value.get("mediaType")
        annotations = value.get("annotations")
        urls = value.get("urls")
        return cls(
            media_type=media_type if isinstance(media_type, str) else "",
            digest=digest,
            size=size,
            platform=Platform.from_json(value.get("platform")),
            annotations=(
                {str(k): str(v) for k, v in annotations.items()}
                if isinstance(annotations, Mapping)
                else {}
            ),
            urls=tuple(u for u in urls if isinstance(u, str)) if isinstance(urls, list) else (),
        )

    @property
    def is_attestation(self) -> bool:
        return self.annotations.get(ATTESTATION_TYPE_ANNOTATION) == "attestation-manifest"

    @property
    def is_reference(self) -> bool:
        """About another entry of its index (``vnd.docker.reference.digest``), not an image.

        BuildKit writes ``attestation-manifest`` here, other builders other types
        (``builder``, …): every kind follows its subject through a platform filter.
        """
        return self.is_attestation or ATTESTATION_DIGEST_ANNOTATION in self.annotations

    @property
    def is_foreign(self) -> bool:
        """Non-distributable layers: their bytes live at ``urls``, not in the registry."""
        return self.media_type in FOREIGN_LAYER_TYPES


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest or index with its exact bytes."""

    raw: bytes
    media_type: str
    digest: str
    children: tuple[Descriptor, ...] = ()
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Config then layers: what must exist before this manifest can be pushed."""
        return ((self.config,) if self.config is not None else ()) + self.layers

    def platforms(self) -> tuple[str, ...]:
        """Sorted platforms of an index's images (attestations excluded); empty for an image."""
        found = {
            str(child.platform)
            for child in self.children
            if child.platform is not None and not child.platform.unknown and not child.is_reference
        }
        return tuple(sorted(found))


def _detect_media_type(
    document: Mapping[str, Any], content_type: str | None, reference: str
) -> str:
    declared = document.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if document.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1_SIGNED
    header = (content_type or "").split(";")[0].strip()
    if header in INDEX_TYPES | IMAGE_TYPES | SCHEMA1_TYPES:
        return header
    # OCI allows mediaType to be absent: tell index from image by shape.
    if "manifests" in document:
        return OCI_INDEX
    if "config" in document:
        return OCI_MANIFEST
    raise UnsupportedManifestError(reference, header, "cannot tell what kind of manifest this is")


def parse_manifest(raw: bytes, content_type: str | None, reference: str) -> Manifest:
    """Parse served bytes; schema1 and unknown kinds raise, never get converted."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise UnsupportedManifestError(reference, content_type or "", f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UnsupportedManifestError(reference, content_type or "", "not a JSON object")
    media_type = _detect_media_type(document, content_type, reference)
    digest = sha256_digest(raw)
    if media_type in SCHEMA1_TYPES:
        raise UnsupportedManifestError(
            reference,
            media_type,
            "Docker schema1 is deprecated; re-push the image with a current client",
        )
    subject = (
        Descriptor.from_json(document["subject"], reference) if "subject" in document else None
    )
    if media_type in INDEX_TYPES:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise UnsupportedManifestError(reference, media_type, "index without a manifests list")
        children = tuple(Descriptor.from_json(entry, reference) for entry in entries)
        return Manifest(raw, media_type, digest, children=children, subject=subject)
    if media_type in IMAGE_TYPES or "config" in document:
        # OCI artifacts (cosign signatures, SBOMs) are image manifests with other config types.
        config = Descriptor.from_json(document.get("config"), reference)
        layer_entries = document.get("layers", [])
        if not isinstance(layer_entries, list):
            raise UnsupportedManifestError(reference, media_type, "layers is not a list")
        layers = tuple(Descriptor.from_json(entry, reference) for entry in layer_entries)
        return Manifest(raw, media_type, digest, config=config, layers=layers, subject=subject)
    raise UnsupportedManifestError(reference, media_type, "neither an image manifest nor an index")


def filter_index(index: Manifest, platforms: PlatformFilter, reference: str) -> Manifest:
    """A new index holding only the wanted platforms and the entries that refer to them.

    The result has new bytes and so a new digest: callers must record and
    report that digest, not the source's.
    """
    if platforms.everything or not index.is_index:
        return index
    kept_images = [
        child
        for child in index.children
        if not child.is_reference and platforms.matches(child.platform)
    ]
    if not kept_images:
        wanted = ", ".join(str(p) for p in platforms.wanted)
        raise NoMatchingPlatformError(
            reference, index.media_type, f"no manifest for platforms {wanted}"
        )
    kept_digests = {child.digest for child in kept_images}
    # Decide per entry, not per digest: one image may be listed under several platforms.
    keep = [
        (not child.is_reference and platforms.matches(child.platform))
        or (
            child.is_reference
            and child.annotations.get(ATTESTATION_DIGEST_ANNOTATION) in kept_digests
        )
        for child in index.children
    ]
    if all(keep):
        return index
    document = json.loads(index.raw)
    # parse_manifest built one child per entry, in order.
    document["manifests"] = [
        entry for entry, wanted in zip(document["manifests"], keep, strict=True) if wanted
    ]
    raw = json.dumps(document, indent=3).encode()
    return parse_manifest(raw, index.media_type, reference)


IMAGE_CONFIG_TYPES = frozenset(
    {"application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json"}
)


def platform_of_config(raw: bytes) -> Platform | None:
    """os/arch/variant from an image config blob; None for artifacts and unknowns."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    platform = Platform.from_json(document)
    if platform is None or not platform.os or not platform.architecture or platform.unknown:
        return None
    return platform
