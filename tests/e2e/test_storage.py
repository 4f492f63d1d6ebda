"""list: storage — migrate from a Distribution storage directory, with no registry running."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from mirrorbot.demo.corpus import Image, ImageFactory, signature_tag
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from mirrorbot.engine.backends.storage import open_storage
from mirrorbot.engine.registry.media import Descriptor
from mirrorbot.errors import BlobIntegrityError, StorageError
from tests.conftest import CREDS
from tests.support import skopeo
from tests.support.world import World

OLD = "old-registry.example"


def corpus(seed: str) -> dict[str, dict[str, Image]]:
    f = ImageFactory(seed)
    base = f.layer("base", 8192)
    app = f.index("app", layers=[base], attestations=True)
    return {
        "team/app": {
            "v1": app,
            "latest": app,
            signature_tag(app.digest): f.signature(app, "team/app"),
        },
        "team/tools/cli": {"2.0": f.image("cli", layers=[base], oci=True)},
        "team/legacy": {"1.0": f.image("legacy", layers=[base])},
    }


@pytest.fixture(scope="module")
def stopped_registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, dict[str, Image]]]:
    """A registry that held a corpus (and one untagged manifest), then was shut down."""
    workdir = tmp_path_factory.mktemp("old-registry")
    images = corpus("storage")
    with LocalRegistry(workdir) as registry, Seeder(registry.url) as seeder:
        seeder.push_all(images)
        # An untagged manifest: pushed by tag, then the tag moved away.
        orphan = ImageFactory("orphan").image("orphan")
        seeder.push("team/legacy", "old", orphan)
        seeder.push("team/legacy", "old", images["team/legacy"]["1.0"])
    return workdir / "storage", images


def configure(world: World, path: Path) -> None:
    world.config.write_text(
        f"""\
mirror:
  registry: {world.mirror.host}
  namespace: {world.mirror_ns}
state:
  repo: {world.remote}
namespaces:
  - source: {OLD}/team
    list: storage
    path: {path}
registries:
  {world.mirror.host}:
    username: ${{MIRROR_USER}}
    password: ${{MIRROR_PASSWORD}}
"""
    )


def _assert_mirrored(
    world: World, images: dict[str, dict[str, Image]], skip: set[str] = frozenset()
) -> None:  # type: ignore[assignment]
    state = json.loads(world.remote_file(f"state/{OLD}/team.json"))
    for repository, tags in images.items():
        image = repository.removeprefix("team/")
        if image in skip:
            assert image not in state["images"]
            continue
        target = f"{world.mirror.host}/{world.mirror_ns}/{image.replace('/', '_')}"
        for tag, expected in tags.items():
            assert state["images"][image]["tags"][tag]["digest"] == expected.digest
            assert skopeo.manifest_digest(f"{target}:{tag}", CREDS) == expected.digest


@pytest.mark.slow(seconds=9)
@pytest.mark.parametrize("form", ["directory", "tar", "tar.gz"])
def test_sync_from_a_storage_directory_or_its_tarball(
    world: World, stopped_registry: tuple[Path, dict[str, dict[str, Image]]], form: str
) -> None:
    storage, images = stopped_registry
    if form == "directory":
        path = storage
    else:
        path = world.tmp / f"registry.{form}"
        with tarfile.open(path, "w:gz" if form == "tar.gz" else "w") as archive:
            archive.add(storage, arcname="storage")
    configure(world, path)
    result = world.run("sync")
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_mirrored(world, images)
    state = json.loads(world.remote_file(f"state/{OLD}/team.json"))
    assert "old" in state["images"]["legacy"]["tags"]  # tag moved: the orphan stays behind
    assert len(state["images"]["legacy"]["tags"]) == 2
    assert world.run("sync").returncode == 0  # second run: nothing to do
    assert world.run("verify").returncode == 0


@pytest.mark.hostile("storage directories")
def test_a_corrupt_or_missing_blob_fails_only_its_image(
    world: World, stopped_registry: tuple[Path, dict[str, dict[str, Image]]]
) -> None:
    storage, images = stopped_registry
    damaged = world.tmp / "damaged"
    shutil.copytree(storage, damaged)
    blobs = damaged / "docker/registry/v2/blobs/sha256"
    cli_layer = images["team/tools/cli"]["2.0"].blobs[-1].digest[7:]
    data = blobs / cli_layer[:2] / cli_layer / "data"
    data.write_bytes(data.read_bytes()[:-1] + b"X")  # same size, wrong bytes
    legacy_layer = images["team/legacy"]["1.0"].blobs[-1].digest[7:]
    (blobs / legacy_layer[:2] / legacy_layer / "data").unlink()
    configure(world, damaged)
    result = world.run("sync")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{OLD}/team/tools/cli:2.0" in result.stdout
    assert f"{OLD}/team/legacy:1.0" in result.stdout
    _assert_mirrored(world, {"team/app": images["team/app"]}, skip=set())
    state = json.loads(world.remote_file(f"state/{OLD}/team.json"))
    assert set(state["images"]) == {"app"}
    with pytest.raises(Exception):  # noqa: B017, PT011 - skopeo reports "manifest unknown"
        skopeo.manifest_digest(f"{world.mirror.host}/{world.mirror_ns}/tools_cli:2.0", CREDS)


@pytest.mark.hostile("storage directories")
def test_symlinks_and_escapes_are_refused(
    tmp_path: Path, stopped_registry: tuple[Path, dict[str, dict[str, Image]]]
) -> None:
    import asyncio

    storage, images = stopped_registry
    copy = tmp_path / "storage"
    shutil.copytree(storage, copy)
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    # A tag whose link is a symlink to a file outside the root.
    link = copy / "docker/registry/v2/repositories/team/app/_manifests/tags/evil/current"
    link.mkdir(parents=True)
    os.symlink(secret, link / "link")
    registry = open_storage(OLD, copy)
    assert "evil" not in asyncio.run(registry.tags("team/app"))  # not listed…
    with pytest.raises(StorageError, match="symbolic link"):
        asyncio.run(registry.manifest_get("team/app", "evil"))  # …and never followed
    app = images["team/app"]["v1"]
    with pytest.raises(StorageError):
        asyncio.run(registry.manifest_get("../../../etc", "v1"))
    with pytest.raises(StorageError):
        asyncio.run(registry.manifest_get("team/app", "sha256:../../x"))
    assert asyncio.run(registry.manifest_get("team/app", "v1")).digest == app.digest
    # A whole root that is a symlink is refused too.
    os.symlink(copy, tmp_path / "linked-root")
    with pytest.raises(StorageError, match="symbolic link"):
        open_storage(OLD, tmp_path / "linked-root")


@pytest.mark.hostile("storage directories")
def test_tarball_members_leaving_the_root_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../outside")
        payload = b"x"
        info.size = len(payload)
        import io

        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(StorageError, match="leaves the archive root"):
        open_storage(OLD, archive)
    assert not (tmp_path.parent / "outside").exists()


def test_not_a_storage_root(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="not a Distribution storage root"):
        open_storage(OLD, tmp_path)


async def test_blobs_are_verified_while_streaming(
    stopped_registry: tuple[Path, dict[str, dict[str, Image]]],
) -> None:
    storage, images = stopped_registry
    registry = open_storage(OLD, storage)
    blob = images["team/legacy"]["1.0"].blobs[0]
    wrong = Descriptor(blob.media_type, blob.digest, blob.size + 1)

    async def drain() -> None:
        async with registry.blob_open("team/legacy", wrong) as chunks:
            async for _ in chunks:
                pass

    with pytest.raises(BlobIntegrityError, match="bytes, descriptor says"):
        await drain()
    await registry.aclose()
