"""Deterministic sample images of every kind mirrorbot must carry.

Docker v2 manifests and manifest lists, OCI manifests and indexes, an index
holding a BuildKit-style attestation manifest, a cosign-style signature
artifact, shared base layers. Everything is derived from a seed string, so the
same call gives the same digests on every machine.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mirrorbot.engine.registry.media import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    sha256_digest,
)

__all__ = ["Blob", "Image", "ImageFactory", "sample_namespace"]

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
INTOTO = "application/vnd.in-toto+json"
COSIGN_SIGNATURE = "application/vnd.dev.cosign.simplesigning.v1+json"


@dataclass(frozen=True, slots=True)
class Blob:
    media_type: str
    data: bytes = field(repr=False)
    # The uncompressed digest, for configs' rootfs.diff_ids.
    diff_id: str = ""

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True, slots=True)
class Image:
    """Something pushable under one tag: its blobs, then manifests children-first."""

    blobs: tuple[Blob, ...]
    manifests: tuple[tuple[str, bytes], ...]
    platforms: tuple[str, ...] = ()

    @property
    def media_type(self) -> str:
        return self.manifests[-1][0]

    @property
    def raw(self) -> bytes:
        return self.manifests[-1][1]

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.raw), **extra}

    @property
    def blob_bytes(self) -> int:
        return sum(b.size for b in {b.digest: b for b in self.blobs}.values())


def _stream(seed: str, size: int) -> bytes:
    """Incompressible deterministic bytes."""
    return hashlib.shake_256(seed.encode()).digest(size)


def _tar(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mtime = 0
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=False).encode()


class ImageFactory:
    """Builds images from a seed; the same seed and arguments give the same digests."""

    def __init__(self, seed: str = "mirrorbot") -> None:
        self.seed = seed

    def layer(
        self, key: str, size: int = 2048, *, compressed: bool = True, oci: bool = False
    ) -> Blob:
        tar = _tar(f"{key}.bin", _stream(f"{self.seed}/{key}", size))
        diff_id = sha256_digest(tar)
        if not compressed:
            return Blob(OCI_LAYER, tar, diff_id)
        data = gzip.compress(tar, compresslevel=1, mtime=0)
        return Blob(OCI_LAYER_GZIP if oci else DOCKER_LAYER, data, diff_id)

    def config(
        self,
        key: str,
        platform: str,
        layers: Sequence[Blob],
        *,
        oci: bool,
        created: str | None = None,
    ) -> Blob:
        os_name, arch, *variant = platform.split("/")
        document: dict[str, Any] = {
            "architecture": arch,
            "os": os_name,
            "config": {"Env": ["PATH=/usr/bin"], "Labels": {"org.example.key": key}},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        }
        if variant:
            document["variant"] = variant[0]
        if created is not None:
            document["created"] = created
        return Blob(OCI_CONFIG if oci else DOCKER_CONFIG, _canonical(document))

    def image(
        self,
        key: str,
        *,
        platform: str = "linux/amd64",
        layers: Sequence[Blob] = (),
        oci: bool = False,
        layer_size: int = 2048,
        created: str | None = None,
    ) -> Image:
        """A single-platform image: the given (shared) layers plus one of its own.

        ``created`` is the config's creation time (RFC 3339), absent when None.
        """
        own = self.layer(f"{key}/{platform}/own", layer_size, oci=oci)
        all_layers = (*layers, own)
        config = self.config(f"{key}/{platform}", platform, all_layers, oci=oci, created=created)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
            "config": config.descriptor(),
            "layers": [layer.descriptor() for layer in all_layers],
        }
        media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
        return Image((config, *all_layers), ((media_type, _canonical(manifest)),), (platform,))

    def index(
        self,
        key: str,
        platforms: Sequence[str] = ("linux/amd64", "linux/arm64"),
        *,
        layers: Sequence[Blob] = (),
        oci: bool = True,
        attestations: bool = False,
        layer_size: int = 2048,
        created: str | None = None,
    ) -> Image:
        """A multi-platform index (OCI) or manifest list (Docker), optionally with attestations."""
        children = [
            self.image(
                key, platform=p, layers=layers, oci=oci, layer_size=layer_size, created=created
            )
            for p in platforms
        ]
        return self.index_of(
            key, dict(zip(platforms, children, strict=True)), oci=oci, attestations=attestations
        )

    def index_of(
        self,
        key: str,
        children: Mapping[str, Image],
        *,
        oci: bool = True,
        attestations: bool = False,
    ) -> Image:
        """An index over given per-platform images (``{"linux/amd64": image, …}``)."""
        entries: list[dict[str, Any]] = []
        blobs: list[Blob] = []
        manifests: list[tuple[str, bytes]] = []
        for platform, child in children.items():
            os_name, arch, *variant = platform.split("/")
            described: dict[str, Any] = {"os": os_name, "architecture": arch}
            if variant:
                described["variant"] = variant[0]
            entries.append(child.descriptor(platform=described))
            blobs.extend(child.blobs)
            manifests.extend(child.manifests)
        if attestations:
            for platform, child in children.items():
                attestation = self.attestation(f"{key}/{platform}", child.digest)
                entries.append(
                    attestation.descriptor(
                        platform={"os": "unknown", "architecture": "unknown"},
                        annotations={
                            "vnd.docker.reference.digest": child.digest,
                            "vnd.docker.reference.type": "attestation-manifest",
                        },
                    )
                )
                blobs.extend(attestation.blobs)
                manifests.extend(attestation.manifests)
        media_type = OCI_INDEX if oci else DOCKER_MANIFEST_LIST
        document = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
        manifests.append((media_type, _canonical(document)))
        return Image(tuple(blobs), tuple(manifests), tuple(children))

    def attestation(self, key: str, subject_digest: str) -> Image:
        statement = _canonical(
            {
                "_type": "https://in-toto.io/Statement/v0.1",
                "predicateType": "https://slsa.dev/provenance/v0.2",
                "subject": [{"name": key, "digest": {"sha256": subject_digest.partition(":")[2]}}],
            }
        )
        layer = Blob(INTOTO, statement)
        config = Blob(
            OCI_CONFIG,
            _canonical(
                {
                    "architecture": "unknown",
                    "os": "unknown",
                    "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
                }
            ),
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [
                layer.descriptor(
                    annotations={"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}
                )
            ],
        }
        return Image((config, layer), ((OCI_MANIFEST, _canonical(manifest)),))

    def signature(self, subject: Image, reference: str) -> Image:
        """A cosign-style signature artifact, pushed under ``sha256-<hex>.sig``."""
        payload = Blob(
            COSIGN_SIGNATURE,
            _canonical(
                {
                    "critical": {
                        "identity": {"docker-reference": reference},
                        "image": {"docker-manifest-digest": subject.digest},
                        "type": "cosign container image signature",
                    },
                    "optional": None,
                }
            ),
        )
        config = Blob(
            OCI_CONFIG,
            _canonical(
                {
                    "architecture": "",
                    "os": "",
                    "rootfs": {"type": "layers", "diff_ids": [payload.digest]},
                }
            ),
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [
                payload.descriptor(
                    annotations={
                        "dev.cosignproject.cosign/signature": "MEUCIQD" + subject.digest[7:27]
                    }
                )
            ],
        }
        return Image((config, payload), ((OCI_MANIFEST, _canonical(manifest)),))


def signature_tag(digest: str) -> str:
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}-{hex_part}.sig"


def sample_namespace(
    factory: ImageFactory | None = None, prefix: str = "google-containers"
) -> dict[str, dict[str, Image]]:
    """A small upstream namespace: ``{repository: {tag: image}}``.

    Covers every manifest kind, nested paths, shared layers and a signature.
    """
    f = factory or ImageFactory("sample")
    base = f.layer("base-os", 4096)
    pause_31 = f.image("pause-3.1", layers=[base])
    pause_39 = f.index("pause-3.9", layers=[base], oci=False)
    etcd = f.index("etcd-3.5.9", layers=[base], oci=True, attestations=True)
    coredns = f.image("coredns-1.11", layers=[base], oci=True)
    proxy = f.index(
        "kube-proxy-1.28", ("linux/amd64", "linux/arm64", "linux/arm/v7"), layers=[base]
    )
    return {
        f"{prefix}/pause": {"3.1": pause_31, "3.9": pause_39, "latest": pause_39},
        f"{prefix}/etcd": {
            "3.5.9": etcd,
            signature_tag(etcd.digest): f.signature(etcd, f"{prefix}/etcd"),
        },
        f"{prefix}/coredns/coredns": {"v1.11.1": coredns},
        f"{prefix}/kube-proxy": {"v1.28.0": proxy},
    }
