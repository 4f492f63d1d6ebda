"""The bench corpus: a namespace of repositories x tags, and one image with a huge layer.

Deterministic (derived from a seed string), built with mirrorbot's own
:class:`~mirrorbot.demo.corpus.ImageFactory` pieces. Three kinds of layer:

- base layers shared across repositories (one per base and architecture),
- one layer per repository and architecture shared by its tags,
- one layer of each image's own.

Big layers are *uncompressed* OCI tars (``application/vnd.oci.image.layer.v1.tar``):
incompressible bytes cost nothing to generate compared to gzip. A quarter of
the images are Docker v2 manifests with small gzip layers, so both manifest
families travel. Every third image is a multi-arch index (OCI index or Docker
manifest list), every sixth carries BuildKit-style attestation manifests.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from mirrorbot.demo.corpus import (
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Blob,
    Image,
    ImageFactory,
)

MiB = 1024 * 1024
SEEDER_AGENT = "mirrorbot-seeder/1"
PLATFORMS = ("linux/amd64", "linux/arm64")
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"


@dataclass(frozen=True, slots=True)
class Scale:
    repositories: int
    tags: int  # per repository, ``latest`` included (an alias of the newest version)
    bases: int  # base layers shared across repositories (per architecture)
    base_size: int
    repo_size: int  # the per-repository layer shared by its tags
    own_size: int  # each image's own layer (OCI images)
    docker_own_size: int  # each Docker v2 image's own layer (gzip)
    big_layer: int  # the one-big-image scenario
    listing_repositories: int
    listing_tags: int


# 16 repositories with a release history of 23 versions and ``latest`` each (issue 5 asks
# for at least 16 x 7). Mirrored namespaces carry tens to hundreds of tags per repository,
# and the no-op figure compares a fixed start-up with work per tag: at 7 tags it measures
# Python's start-up (see README, "Corpus size"). ``--tags 7`` reproduces the minimum.
FULL = Scale(
    repositories=16,
    tags=24,
    bases=4,
    base_size=10 * MiB,
    repo_size=3 * MiB,
    own_size=3 * MiB // 8,
    docker_own_size=MiB // 4,
    big_layer=1024 * MiB,
    listing_repositories=2000,
    listing_tags=50,
)
QUICK = Scale(
    repositories=4,
    tags=4,
    bases=2,
    base_size=256 * 1024,
    repo_size=128 * 1024,
    own_size=64 * 1024,
    docker_own_size=32 * 1024,
    big_layer=8 * MiB,
    listing_repositories=100,
    listing_tags=10,
)


@dataclass(slots=True)
class Corpus:
    """``{repository: {tag: image}}`` below ``namespace``, plus what the figures need."""

    namespace: str
    scale: Scale
    images: dict[str, dict[str, Image]] = field(default_factory=dict)

    @property
    def tag_count(self) -> int:
        return sum(len(tags) for tags in self.images.values())

    def blob_sizes(self) -> dict[str, int]:
        """Every distinct blob (layers and configs) by digest."""
        sizes: dict[str, int] = {}
        for tags in self.images.values():
            for image in tags.values():
                for blob in image.blobs:
                    sizes[blob.digest] = blob.size
        return sizes

    def manifest_sizes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for tags in self.images.values():
            for image in tags.values():
                for _, raw in image.manifests:
                    sizes["sha256:" + hashlib.sha256(raw).hexdigest()] = len(raw)
        return sizes

    def unique_blob_bytes(self) -> int:
        return sum(self.blob_sizes().values())

    def index_share(self) -> float:
        distinct = {image.digest: image for tags in self.images.values() for image in tags.values()}
        indexes = sum(1 for image in distinct.values() if len(image.manifests) > 1)
        return indexes / len(distinct) if distinct else 0.0

    def blob_homes(self) -> dict[str, str]:
        """Every distinct blob, with one repository that holds it."""
        homes: dict[str, str] = {}
        for repository, tags in self.images.items():
            for image in tags.values():
                for blob in image.blobs:
                    homes.setdefault(blob.digest, repository)
        return homes

    def repository_blobs(self, repository: str) -> set[str]:
        return {blob.digest for image in self.images[repository].values() for blob in image.blobs}


class CorpusBuilder:
    """Builds images of three layer tiers; the same seed gives the same digests."""

    def __init__(self, scale: Scale, namespace: str, seed: str = "bench") -> None:
        self.scale = scale
        self.namespace = namespace
        self.factory = ImageFactory(seed)
        self._layers: dict[str, Blob] = {}
        self._counter = 0

    def _layer(self, key: str, size: int, *, gzip: bool = False) -> Blob:
        if key not in self._layers:
            self._layers[key] = self.factory.layer(key, size, compressed=gzip)
        return self._layers[key]

    def repository(self, index: int) -> str:
        return f"{self.namespace}/app-{index:02d}"

    def _platform_image(self, repo: int, key: str, platform: str, *, docker: bool) -> Image:
        arch = platform.rsplit("/", 1)[-1]
        base = self._layer(f"base-{repo % self.scale.bases}-{arch}", self.scale.base_size)
        shared = self._layer(f"repo-{repo}-{arch}", self.scale.repo_size)
        if docker:
            own = self._layer(f"{key}/{platform}/own", self.scale.docker_own_size, gzip=True)
        else:
            own = self._layer(f"{key}/{platform}/own", self.scale.own_size)
        layers = (base, shared, own)
        config = self.factory.config(f"{key}/{platform}", platform, layers, oci=not docker)
        media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
        descriptors = [layer.descriptor() for layer in layers]
        if docker:
            # The same uncompressed bytes, described with Docker's media type for them.
            for descriptor in descriptors:
                if descriptor["mediaType"] == OCI_LAYER:
                    descriptor["mediaType"] = DOCKER_LAYER_TAR
        manifest = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": config.descriptor(),
            "layers": descriptors,
        }
        raw = json.dumps(manifest, indent=2).encode()
        return Image((config, *layers), ((media_type, raw),), (platform,))

    def image(self, repo: int, key: str) -> Image:
        """The next image of the corpus: every third an index, every fourth Docker-typed."""
        number = self._counter
        self._counter += 1
        docker = number % 4 == 1
        if number % 3 != 0:
            return self._platform_image(repo, key, PLATFORMS[0], docker=docker)
        children = {p: self._platform_image(repo, key, p, docker=docker) for p in PLATFORMS}
        return self.factory.index_of(
            key, children, oci=not docker, attestations=number % 6 == 0 and not docker
        )

    def corpus(self) -> Corpus:
        corpus = Corpus(self.namespace, self.scale)
        for repo in range(self.scale.repositories):
            tags: dict[str, Image] = {}
            for version in range(self.scale.tags - 1):
                tags[f"v1.{version}"] = self.image(repo, f"app-{repo}/v1.{version}")
            tags["latest"] = tags[f"v1.{self.scale.tags - 2}"]
            corpus.images[self.repository(repo)] = tags
        return corpus

    def incremental(self, corpus: Corpus) -> dict[str, dict[str, Image]]:
        """One new tag in the first repository, ``latest`` retagged to new builds in two others."""
        first, second, third = (self.repository(i) for i in range(3))
        new_version = f"v1.{self.scale.tags - 1}"
        return {
            first: {new_version: self.image(0, f"app-0/{new_version}")},
            second: {"latest": self.image(1, "app-1/rebuilt")},
            third: {"latest": self.image(2, "app-2/rebuilt")},
        }


# -- the one big image -------------------------------------------------------------------


def _big_chunks(size: int, seed: str) -> Iterator[bytes]:
    """``size`` deterministic, incompressible bytes in 1 MiB chunks: one random block, counted."""
    block = hashlib.shake_256(seed.encode()).digest(MiB)
    sent = 0
    number = 0
    while sent < size:
        chunk = number.to_bytes(8, "big") + block[8:]
        chunk = chunk[: size - sent]
        sent += len(chunk)
        number += 1
        yield chunk


def big_layer_stream(content_size: int, seed: str = "bench-big") -> tuple[int, Iterator[bytes]]:
    """A one-file USTAR archive of ``content_size`` bytes, as (length, chunks), never in memory."""
    info = tarfile.TarInfo("big.bin")
    info.size = content_size
    info.mtime = 0
    info.mode = 0o644
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    padding = (-content_size) % tarfile.BLOCKSIZE
    trailer = b"\0" * (padding + 2 * tarfile.BLOCKSIZE)
    length = len(header) + content_size + len(trailer)

    def chunks() -> Iterator[bytes]:
        yield header
        yield from _big_chunks(content_size, seed)
        yield trailer

    return length, chunks()


def push_big_image(base_url: str, repository: str, tag: str, content_size: int) -> dict[str, Any]:
    """Push an OCI image whose single layer is ``content_size`` bytes, streaming.

    One pass: the layer streams into an upload session (``PATCH`` with a known
    ``Content-Length``) while its sha256 is computed, then ``PUT ?digest=``
    closes the session. Peak memory is one chunk.
    """
    length, chunks = big_layer_stream(content_size)
    hasher = hashlib.sha256()

    def hashed() -> Iterator[bytes]:
        for chunk in chunks:
            hasher.update(chunk)
            yield chunk

    with httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(600.0),
        headers={"User-Agent": SEEDER_AGENT},
    ) as http:
        start = http.post(f"/v2/{repository}/blobs/uploads/")
        start.raise_for_status()
        location = httpx.URL(str(start.url)).join(start.headers["location"])
        patch = http.patch(
            location,
            content=hashed(),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(length)},
        )
        patch.raise_for_status()
        digest = "sha256:" + hasher.hexdigest()
        location = httpx.URL(str(patch.url)).join(patch.headers["location"])
        http.put(location.copy_merge_params({"digest": digest})).raise_for_status()
        layer = {"mediaType": OCI_LAYER, "digest": digest, "size": length}
        config_raw = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Env": ["PATH=/usr/bin"]},
                "rootfs": {"type": "layers", "diff_ids": [digest]},
            },
            indent=2,
        ).encode()
        config_digest = "sha256:" + hashlib.sha256(config_raw).hexdigest()
        start = http.post(f"/v2/{repository}/blobs/uploads/")
        start.raise_for_status()
        location = httpx.URL(str(start.url)).join(start.headers["location"])
        http.put(
            location.copy_merge_params({"digest": config_digest}),
            content=config_raw,
            headers={"Content-Type": "application/octet-stream"},
        ).raise_for_status()
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_raw)},
            "layers": [layer],
        }
        raw = json.dumps(manifest, indent=2).encode()
        http.put(
            f"/v2/{repository}/manifests/{tag}", content=raw, headers={"Content-Type": OCI_MANIFEST}
        ).raise_for_status()
    return {
        "layer_digest": digest,
        "layer_bytes": length,
        "manifest_digest": "sha256:" + hashlib.sha256(raw).hexdigest(),
    }
