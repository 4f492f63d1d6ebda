"""The copy engine against real Distribution registries, refereed by skopeo."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from mirrorbot.demo.corpus import Image, ImageFactory, sample_namespace
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from mirrorbot.engine.copier import Copier
from mirrorbot.engine.registry.credentials import Credential, CredentialStore
from mirrorbot.engine.registry.media import PlatformFilter
from mirrorbot.engine.registry.pool import RegistryPool
from mirrorbot.errors import CredentialsRefusedError, RegistryError
from mirrorbot.reference import parse_reference
from tests.conftest import CREDS
from tests.support import skopeo


def _store(*registries: LocalRegistry, tmp_path: Path) -> CredentialStore:
    """Credentials for the authenticated registries, and an empty docker config."""
    return CredentialStore(
        {r.host: Credential(*CREDS) for r in registries},
        docker_config=tmp_path / "no-docker-config.json",
    )


def _seed(
    registry: LocalRegistry, corpus: Mapping[str, Mapping[str, Image]], *, creds: bool = False
) -> None:
    with Seeder(registry.url, CREDS if creds else None) as seeder:
        seeder.push_all(corpus)


def _prefixed(ns: str, corpus: Mapping[str, Mapping[str, Image]]) -> dict[str, Mapping[str, Image]]:
    return {f"{ns}/{repository}": tags for repository, tags in corpus.items()}


def _blob_puts(registry: LocalRegistry, since: int) -> list[str]:
    return [
        r.uri
        for r in registry.requests(since)
        if r.method in ("PUT", "PATCH") and "/blobs/uploads/" in r.uri
    ]


async def test_every_kind_of_image_arrives_byte_exact(
    source_registry: LocalRegistry, token_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    corpus = _prefixed(ns, sample_namespace(ImageFactory(ns)))
    _seed(source_registry, corpus)
    async with RegistryPool(_store(token_registry, tmp_path=tmp_path)) as pool:
        copier = Copier(pool)
        for repository, tags in corpus.items():
            for tag, image in tags.items():
                result = await copier.copy(
                    parse_reference(f"{source_registry.host}/{repository}:{tag}"),
                    parse_reference(f"{token_registry.host}/{repository}:{tag}"),
                )
                assert result.digest == image.digest
                assert not result.already_present
    for repository, tags in corpus.items():
        for tag, image in tags.items():
            reference = f"{token_registry.host}/{repository}:{tag}"
            assert skopeo.manifest_digest(reference, CREDS) == image.digest, reference
    # A full pull of the index with attestations: skopeo verifies every blob's digest.
    etcd = f"{token_registry.host}/{ns}/google-containers/etcd:3.5.9"
    index = skopeo.copy_to_oci(etcd, tmp_path / "etcd-oci", CREDS)
    assert index["manifests"][0]["digest"] == corpus[f"{ns}/google-containers/etcd"]["3.5.9"].digest
    pulled = {p.name for p in (tmp_path / "etcd-oci" / "blobs" / "sha256").iterdir()}
    expected = {
        b.digest.partition(":")[2] for b in corpus[f"{ns}/google-containers/etcd"]["3.5.9"].blobs
    }
    assert expected <= pulled


async def test_second_copy_uploads_nothing(
    source_registry: LocalRegistry, plain_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    factory = ImageFactory(ns)
    image = factory.index("app", ("linux/amd64", "linux/arm64"), attestations=True)
    _seed(source_registry, {f"{ns}/app": {"v1": image}})
    source = parse_reference(f"{source_registry.host}/{ns}/app:v1")
    target = parse_reference(f"{plain_registry.host}/{ns}/mirror-app:v1")
    async with RegistryPool(_store(tmp_path=tmp_path)) as pool:
        await Copier(pool).copy(source, target)
    mark = plain_registry.log_mark()
    async with RegistryPool(_store(tmp_path=tmp_path)) as pool:
        second = await Copier(pool).copy(source, target)
    assert second.already_present
    assert second.stats.bytes_uploaded == 0
    assert _blob_puts(plain_registry, mark) == []
    methods = plain_registry.request_counts(mark)
    assert methods == {"HEAD": 1}, methods  # one HEAD on the target tag, nothing else

    # Forced: manifests are pushed again, but every blob is found in place.
    mark = plain_registry.log_mark()
    async with RegistryPool(_store(tmp_path=tmp_path)) as pool:
        forced = await Copier(pool).copy(source, target, force=True)
    assert forced.stats.blobs_uploaded == 0
    assert _blob_puts(plain_registry, mark) == []


async def test_shared_blob_is_uploaded_once_then_mounted(
    source_registry: LocalRegistry, token_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    factory = ImageFactory(ns)
    base = factory.layer("shared-base", 64 * 1024)
    first = factory.image("one", layers=[base])
    second = factory.image("two", layers=[base])
    _seed(source_registry, {f"{ns}/one": {"v1": first}, f"{ns}/two": {"v1": second}})
    mark = token_registry.log_mark()
    async with RegistryPool(_store(token_registry, tmp_path=tmp_path)) as pool:
        copier = Copier(pool)
        a = await copier.copy(
            parse_reference(f"{source_registry.host}/{ns}/one:v1"),
            parse_reference(f"{token_registry.host}/{ns}/one:v1"),
        )
        b = await copier.copy(
            parse_reference(f"{source_registry.host}/{ns}/two:v1"),
            parse_reference(f"{token_registry.host}/{ns}/two:v1"),
        )
    assert a.stats.blobs_uploaded == 3
    assert a.stats.blobs_mounted == 0
    assert b.stats.blobs_mounted == 1
    assert b.stats.blobs_uploaded == 2
    logged = token_registry.requests(mark)
    shared_hex = base.digest.partition(":")[2]  # the logged URIs are percent-encoded
    shared_puts = [r for r in logged if r.method == "PUT" and shared_hex in r.uri]
    shared_mounts = [
        r
        for r in logged
        if r.method == "POST" and "mount=" in r.uri and shared_hex in r.uri and r.status == 201
    ]
    assert len(shared_puts) == 1
    assert len(shared_mounts) == 1
    assert skopeo.manifest_digest(f"{token_registry.host}/{ns}/two:v1", CREDS) == second.digest


async def test_copy_within_one_registry_mounts_from_the_source(
    plain_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    image = ImageFactory(ns).image("inside", layer_size=32 * 1024)
    _seed(plain_registry, {f"{ns}/origin": {"v1": image}})
    mark = plain_registry.log_mark()
    async with RegistryPool(_store(tmp_path=tmp_path)) as pool:
        result = await Copier(pool).copy(
            parse_reference(f"{plain_registry.host}/{ns}/origin:v1"),
            parse_reference(f"{plain_registry.host}/{ns}/copy:v1"),
        )
    assert result.stats.blobs_mounted == len(image.blobs)
    assert _blob_puts(plain_registry, mark) == []
    assert skopeo.manifest_digest(f"{plain_registry.host}/{ns}/copy:v1") == image.digest


async def test_platform_filter_makes_a_new_index_with_its_attestations(
    source_registry: LocalRegistry, plain_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    image = ImageFactory(ns).index(
        "multi", ("linux/amd64", "linux/arm64", "linux/s390x"), attestations=True
    )
    _seed(source_registry, {f"{ns}/multi": {"v1": image}})
    async with RegistryPool(_store(tmp_path=tmp_path)) as pool:
        result = await Copier(pool).copy(
            parse_reference(f"{source_registry.host}/{ns}/multi:v1"),
            parse_reference(f"{plain_registry.host}/{ns}/multi:v1"),
            platforms=PlatformFilter.parse(["linux/arm64"]),
        )
    assert result.filtered
    assert result.source_digest == image.digest
    assert result.digest != image.digest
    assert result.platforms == ("linux/arm64",)
    raw = skopeo.inspect_raw(f"{plain_registry.host}/{ns}/multi:v1")
    import hashlib
    import json

    assert "sha256:" + hashlib.sha256(raw).hexdigest() == result.digest
    entries = json.loads(raw)["manifests"]
    platforms = sorted(f"{e['platform']['os']}/{e['platform']['architecture']}" for e in entries)
    assert platforms == ["linux/arm64", "unknown/unknown"]
    skopeo.copy_to_oci(f"{plain_registry.host}/{ns}/multi:v1", tmp_path / "oci")


async def test_source_with_basic_auth(
    basic_registry: LocalRegistry, plain_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    image = ImageFactory(ns).image("private")
    _seed(basic_registry, {f"{ns}/private": {"v1": image}}, creds=True)
    async with RegistryPool(_store(basic_registry, tmp_path=tmp_path)) as pool:
        result = await Copier(pool).copy(
            parse_reference(f"{basic_registry.host}/{ns}/private:v1"),
            parse_reference(f"{plain_registry.host}/{ns}/private:v1"),
        )
    assert result.digest == image.digest
    assert skopeo.manifest_digest(f"{plain_registry.host}/{ns}/private:v1") == image.digest


async def test_wrong_password_is_a_clear_error_without_the_secret(
    basic_registry: LocalRegistry, plain_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    store = CredentialStore(
        {basic_registry.host: Credential(CREDS[0], "wrong-password-xyz")},
        docker_config=tmp_path / "none.json",
    )
    async with RegistryPool(store) as pool:
        with pytest.raises(CredentialsRefusedError) as caught:
            await Copier(pool).copy(
                parse_reference(f"{basic_registry.host}/{ns}/private:v1"),
                parse_reference(f"{plain_registry.host}/{ns}/private:v1"),
            )
    assert caught.value.status == 401
    assert "wrong-password-xyz" not in str(caught.value)
    assert f"{basic_registry.host}: credentials refused for user '{CREDS[0]}'" in str(caught.value)
    # The refusal is the registry's: the request it answered names the reference.
    assert isinstance(caught.value.__cause__, RegistryError)
    assert f"{basic_registry.host}/{ns}/private" in str(caught.value.__cause__)


async def test_missing_source_image_names_the_reference(
    source_registry: LocalRegistry, plain_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    async with RegistryPool(_store(tmp_path=tmp_path)) as pool:
        with pytest.raises(RegistryError) as caught:
            await Copier(pool).copy(
                parse_reference(f"{source_registry.host}/{ns}/nothing:v1"),
                parse_reference(f"{plain_registry.host}/{ns}/nothing:v1"),
            )
    assert caught.value.status == 404
    assert caught.value.codes & {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}
    assert f"{ns}/nothing:v1" in str(caught.value)


async def test_listing_pages_through_a_small_catalog(
    source_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    factory = ImageFactory(ns)
    names = [f"{ns}/paged-{i}" for i in range(7)]
    _seed(source_registry, {name: {"v1": factory.image(name)} for name in names})
    async with RegistryPool(_store(tmp_path=tmp_path)) as pool:
        client = pool.client(source_registry.host)
        mark = source_registry.log_mark()
        catalog = await client.catalog(page_size=None)
        pages = [r for r in source_registry.requests(mark) if r.uri.startswith("/v2/_catalog")]
        tags = await client.tags(names[0])
    assert set(names) <= set(catalog)
    assert len(pages) >= 3  # maxentries is 3: the catalog came in several pages
    assert tags == ["v1"]
