"""parse_reference and friends: the distribution/reference grammar, Docker Hub normalisation."""

from __future__ import annotations

import dataclasses

import pytest

from mirrorbot.errors import InvalidReferenceError
from mirrorbot.reference import (
    DOCKER_HUB,
    Reference,
    is_loopback_host,
    looks_like_host,
    normalize_registry,
    parse_reference,
    split_registry,
    upstream_name,
    validate_digest,
    validate_repository,
    validate_tag,
)

SHA256 = "sha256:" + "0123456789abcdef" * 4
OTHER_SHA256 = "sha256:" + "f" * 64
SHA512 = "sha512:" + "ab" * 64


# --- valid references ---------------------------------------------------------------------

VALID = [
    # (input, registry, repository, tag, digest)
    ("busybox", "docker.io", "library/busybox", "latest", None),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
    ("user/app", "docker.io", "user/app", "latest", None),
    ("user/app:v1", "docker.io", "user/app", "v1", None),
    ("docker.io/busybox", "docker.io", "library/busybox", "latest", None),
    ("docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest", None),
    ("index.docker.io/x", "docker.io", "library/x", "latest", None),
    ("index.docker.io/user/app:t", "docker.io", "user/app", "t", None),
    ("registry-1.docker.io/user/app", "docker.io", "user/app", "latest", None),
    ("Docker.IO/user/app", "docker.io", "user/app", "latest", None),
    ("ghcr.io/owner/repo:tag", "ghcr.io", "owner/repo", "tag", None),
    ("ghcr.io/owner/repo/more/deeper:tag", "ghcr.io", "owner/repo/more/deeper", "tag", None),
    ("quay.io/a/b", "quay.io", "a/b", "latest", None),
    ("example.com/single", "example.com", "single", "latest", None),
    ("localhost/x", "localhost", "x", "latest", None),
    # No '/': the first component is never a registry, even with a dot (as Docker reads it).
    ("ghcr.io", "docker.io", "library/ghcr.io", "latest", None),
    ("localhost", "docker.io", "library/localhost", "latest", None),
    ("localhost:5000", "docker.io", "library/localhost", "5000", None),
    ("localhost:5000/x", "localhost:5000", "x", "latest", None),
    ("localhost:5000/x:5000", "localhost:5000", "x", "5000", None),
    ("127.0.0.1:5000/a/b:t", "127.0.0.1:5000", "a/b", "t", None),
    ("host:5000/a", "host:5000", "a", "latest", None),
    ("[::1]:5000/a/b", "[::1]:5000", "a/b", "latest", None),
    ("[2001:db8::1]/a", "[2001:db8::1]", "a", "latest", None),
    ("my-registry.example.com:443/t/a", "my-registry.example.com:443", "t/a", "latest", None),
    (f"busybox@{SHA256}", "docker.io", "library/busybox", None, SHA256),
    (f"ghcr.io/o/r@{SHA256}", "ghcr.io", "o/r", None, SHA256),
    (f"ghcr.io/o/r:v1@{SHA256}", "ghcr.io", "o/r", "v1", SHA256),
    (f"localhost:5000/x:t@{SHA256}", "localhost:5000", "x", "t", SHA256),
    (f"ghcr.io/o/r@{SHA512}", "ghcr.io", "o/r", None, SHA512),
    # Separators inside path components.
    ("a.b/c_d/e__f/g-h/i--j/k.l", "a.b", "c_d/e__f/g-h/i--j/k.l", "latest", None),
    # Tag characters: upper case, digits, '_', '.', '-' (not leading '.' or '-').
    ("busybox:V1.2_3-rc.4", "docker.io", "library/busybox", "V1.2_3-rc.4", None),
    ("busybox:_underscore", "docker.io", "library/busybox", "_underscore", None),
    ("busybox:" + "t" * 128, "docker.io", "library/busybox", "t" * 128, None),
]


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), VALID)
def test_parse_valid(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_reference(text)
    assert ref == Reference(registry, repository, tag, digest)


@pytest.mark.parametrize("text", [row[0] for row in VALID])
def test_str_round_trips(text: str) -> None:
    ref = parse_reference(text)
    again = parse_reference(str(ref))
    assert again == ref
    # str() is fully qualified and stable: a second round is a fixed point.
    assert str(again) == str(ref)
    assert str(ref).startswith(ref.registry + "/")


@pytest.mark.parametrize("text", [row[0] for row in VALID])
def test_round_trips_without_default_tag(text: str) -> None:
    ref = parse_reference(text, default_tag=None)
    assert parse_reference(str(ref), default_tag=None) == ref


def test_default_tag_none_keeps_reference_bare() -> None:
    ref = parse_reference("ghcr.io/o/r", default_tag=None)
    assert ref.tag is None
    assert ref.digest is None
    assert str(ref) == "ghcr.io/o/r"


def test_default_tag_is_configurable_and_explicit_tag_wins() -> None:
    assert parse_reference("ghcr.io/o/r", default_tag="stable").tag == "stable"
    assert parse_reference("ghcr.io/o/r:v2", default_tag="stable").tag == "v2"


def test_digest_only_gets_no_default_tag() -> None:
    ref = parse_reference(f"ghcr.io/o/r@{SHA256}")
    assert ref.tag is None
    assert ref.digest == SHA256


def test_reference_is_frozen() -> None:
    ref = parse_reference("busybox")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "other"  # type: ignore[misc]


def test_equal_references_hash_equal() -> None:
    assert {parse_reference("busybox"), parse_reference("docker.io/library/busybox:latest")} == {
        Reference("docker.io", "library/busybox", "latest")
    }


# --- invalid references -------------------------------------------------------------------

INVALID = [
    ("", "empty"),
    (" ", "whitespace only"),
    (" busybox", "leading space"),
    ("busybox ", "trailing space"),
    ("busybox\n", "trailing newline"),
    ("bu sybox", "inner space"),
    ("busy\tbox", "tab"),
    ("busy\x00box", "NUL"),
    ("busy\x1bbox", "escape"),
    ("busy\x7fbox", "DEL"),
    ("Busybox", "uppercase repository"),
    ("ghcr.io/Owner/repo", "uppercase path component"),
    ("User/app", "uppercase first component (no dot: a Hub path)"),
    ("busybox:", "empty tag"),
    ("busybox:" + "t" * 129, "tag of 129 characters"),
    ("busybox:.hidden", "tag starting with '.'"),
    ("busybox:-dash", "tag starting with '-'"),
    ("busybox:a/b", "slash in tag is a path, and ':' in a component"),
    ("busybox:t!", "punctuation in tag"),
    ("busybox:café", "non-ASCII tag"),
    ("busybox:\u0661\u0662", "non-ASCII digits in tag"),
    ("busybox@", "empty digest"),
    ("busybox@sha256:abc", "short hex"),
    ("busybox@sha256:" + "A" * 64, "uppercase hex"),
    ("busybox@sha256:" + "0" * 65, "too long hex"),
    ("busybox@sha256:" + "g" * 64, "non-hex"),
    ("busybox@sha512:" + "a" * 64, "sha512 with 64 hex"),
    ("busybox@md5:" + "a" * 32, "unknown algorithm"),
    ("busybox@" + "a" * 64, "digest without algorithm"),
    (f"busybox@{SHA256}@{SHA256}", "two digests"),
    (f"busybox@{SHA256}:tag", "tag after digest"),
    ("../x", "parent directory as registry"),
    ("./x", "current directory as registry"),
    ("a/../b", "parent directory component"),
    ("a/./b", "dot component"),
    ("a//b", "empty component"),
    ("/x", "leading slash"),
    ("x/", "trailing slash"),
    ("ghcr.io/", "registry only"),
    ("-a/b", "component starting with '-'"),
    ("a-/b", "component ending with '-'"),
    ("a/b_", "component ending with '_'"),
    ("a/b___c", "three underscores"),
    ("a/b..c", "two dots"),
    ("ghcr.io:/x", "empty port"),
    ("ghcr.io:port/x", "non-numeric port"),
    ("-ghcr.io/x", "host starting with '-'"),
    ("gh_cr.io/x", "underscore in host"),
    ("[::1/x", "unclosed IPv6 bracket"),
    (":tag", "no repository"),
    (f"@{SHA256}", "digest without repository"),
    ("ghcr.io/" + "a" * 250, "name over 255 characters"),
    ("a" * 256, "Hub name over 255 characters once normalised"),
]


@pytest.mark.parametrize(("text", "why"), INVALID, ids=[row[1] for row in INVALID])
def test_parse_invalid(text: str, why: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference(text)
    # The error names the whole input, whichever part of it is wrong.
    assert info.value.value == text
    assert info.value.reason
    assert repr(text) in str(info.value)


def test_invalid_reference_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="lowercase"):
        parse_reference("Busybox")


def test_bad_tag_error_names_whole_reference() -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference("ghcr.io/o/r:-bad")
    assert info.value.value == "ghcr.io/o/r:-bad"
    assert "tags are" in info.value.reason


def test_bad_digest_error_names_whole_reference() -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference("ghcr.io/o/r@md5:" + "a" * 32)
    assert info.value.value == "ghcr.io/o/r@md5:" + "a" * 32
    assert "md5" in info.value.reason


def test_name_length_limit_is_inclusive_at_255() -> None:
    registry = "ghcr.io"
    repository = "a" * (255 - len(registry) - 1)
    ref = parse_reference(f"{registry}/{repository}")
    assert len(ref.name) == 255
    with pytest.raises(InvalidReferenceError, match="255"):
        parse_reference(f"{registry}/{repository}a")


def test_hub_name_length_counts_normalised_name() -> None:
    # docker.io/library/ adds 18 characters to a one-component Hub name.
    fits = "a" * (255 - len("docker.io/library/"))
    assert parse_reference(fits).name == f"docker.io/library/{fits}"
    with pytest.raises(InvalidReferenceError):
        parse_reference(fits + "a")


# --- the validators on their own -----------------------------------------------------------


@pytest.mark.parametrize("tag", ["latest", "1", "V1.0", "a_b-c.d", "_", "9" * 128])
def test_validate_tag_accepts(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize(
    "tag", ["", ".a", "-a", "a b", "a:b", "a/b", "a@b", "9" * 129, "é", "a\u00b2", "a\n"]
)
def test_validate_tag_rejects(tag: str) -> None:
    with pytest.raises(InvalidReferenceError):
        validate_tag(tag)


@pytest.mark.parametrize("digest", [SHA256, OTHER_SHA256, SHA512])
def test_validate_digest_accepts(digest: str) -> None:
    assert validate_digest(digest) == digest


@pytest.mark.parametrize(
    ("digest", "reason"),
    [
        ("sha256:" + "a" * 63, "64 lowercase hex"),
        ("sha256:" + "A" * 64, "64 lowercase hex"),
        ("sha512:" + "a" * 127, "128 lowercase hex"),
        ("sha384:" + "a" * 96, "unsupported digest algorithm"),
        ("SHA256:" + "a" * 64, "sha256:<64 hex>"),
        ("sha256", "sha256:<64 hex>"),
        (":" + "a" * 64, "sha256:<64 hex>"),
        ("sha256:", "sha256:<64 hex>"),
        ("sha256:" + "a" * 64 + "/../x", "sha256:<64 hex>"),
    ],
)
def test_validate_digest_rejects(digest: str, reason: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        validate_digest(digest)
    assert reason in info.value.reason


@pytest.mark.parametrize("path", ["a", "library/busybox", "a/b/c/d", "a0.b_c__d-e--f", "0"])
def test_validate_repository_accepts(path: str) -> None:
    assert validate_repository(path) == path


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        ("A", "lowercase"),
        ("a/B", "lowercase"),
        ("a//b", "components"),
        ("a/", "components"),
        ("../a", "components"),
        ("a" * 256, "longer than 255"),
    ],
)
def test_validate_repository_rejects(path: str, reason: str) -> None:
    with pytest.raises(InvalidReferenceError, match=reason):
        validate_repository(path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("busybox", (DOCKER_HUB, "busybox")),
        ("user/app", (DOCKER_HUB, "user/app")),
        ("ghcr.io/o/r", ("ghcr.io", "o/r")),
        ("localhost/x", ("localhost", "x")),
        ("host:5000/x", ("host:5000", "x")),
        ("[::1]/x", ("[::1]", "x")),
        ("index.docker.io/x", (DOCKER_HUB, "x")),
        ("localhostx/y", (DOCKER_HUB, "localhostx/y")),
    ],
)
def test_split_registry(value: str, expected: tuple[str, str]) -> None:
    assert split_registry(value) == expected


@pytest.mark.parametrize(
    ("parts", "name"),
    [
        (("gcr.io", "google-containers", "pause"), "gcr.io/google-containers/pause"),
        (("registry.k8s.io", "", "pause"), "registry.k8s.io/pause"),
        (("registry.k8s.io", ""), "registry.k8s.io"),
        (("[::1]:5000", "team"), "[::1]:5000/team"),
    ],
)
def test_upstream_name_drops_the_empty_namespace_of_a_registry_root(
    parts: tuple[str, ...], name: str
) -> None:
    assert upstream_name(*parts) == name


@pytest.mark.parametrize(
    ("component", "host"),
    [
        ("[::1]:5000", True),
        ("[::1]", True),
        ("[fe80::1]", True),
        ("localhost", True),
        ("ghcr.io", True),
        ("host:5000", True),
        ("library", False),
        ("localhostx", False),
        ("", False),
    ],
)
def test_looks_like_host_is_dockers_rule(component: str, host: bool) -> None:
    """One rule for every caller: the reference parser, config sources, issue requests."""
    assert looks_like_host(component) is host


def test_an_ipv6_registry_with_a_port_is_a_registry_everywhere() -> None:
    from mirrorbot.config import split_source
    from mirrorbot.integrations.github.issueform import normalise_namespace

    assert split_registry("[::1]:5000/team/app") == ("[::1]:5000", "team/app")
    assert parse_reference("[::1]:5000/team/app:1").registry == "[::1]:5000"
    assert split_source("[::1]:5000/team") == ("[::1]:5000", "team")
    assert split_source("[::1]:5000") == ("[::1]:5000", "")
    assert normalise_namespace("http://[::1]:5000/team/") == ("[::1]:5000", "team")


@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        ("docker.io", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("INDEX.DOCKER.IO", "docker.io"),
        ("ghcr.io", "ghcr.io"),
        ("docker.io:443", "docker.io:443"),
        ("mirror.docker.io", "mirror.docker.io"),
    ],
)
def test_normalize_registry(registry: str, expected: str) -> None:
    assert normalize_registry(registry) == expected


# --- Reference behaviour ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (Reference("ghcr.io", "o/r", "v1", None), "ghcr.io/o/r:v1"),
        (Reference("ghcr.io", "o/r", None, SHA256), f"ghcr.io/o/r@{SHA256}"),
        (Reference("ghcr.io", "o/r", "v1", SHA256), f"ghcr.io/o/r:v1@{SHA256}"),
        (Reference("ghcr.io", "o/r"), "ghcr.io/o/r"),
        (Reference("localhost:5000", "x", "t"), "localhost:5000/x:t"),
    ],
)
def test_str(ref: Reference, expected: str) -> None:
    assert str(ref) == expected


def test_name() -> None:
    assert parse_reference("busybox:1").name == "docker.io/library/busybox"


@pytest.mark.parametrize(
    ("ref", "identifier"),
    [
        (Reference("r.io", "a", "v1", None), "v1"),
        (Reference("r.io", "a", None, SHA256), SHA256),
        (Reference("r.io", "a", "v1", SHA256), SHA256),  # the digest wins: it is exact
        (Reference("r.io", "a", None, None), "latest"),
    ],
)
def test_identifier(ref: Reference, identifier: str) -> None:
    assert ref.identifier == identifier


def test_with_tag_replaces_tag_and_drops_digest() -> None:
    ref = parse_reference(f"ghcr.io/o/r:v1@{SHA256}")
    moved = ref.with_tag("v2")
    assert moved == Reference("ghcr.io", "o/r", "v2", None)
    assert ref.tag == "v1"  # the original is untouched


def test_with_digest_replaces_digest_and_drops_tag() -> None:
    ref = parse_reference("ghcr.io/o/r:v1")
    pinned = ref.with_digest(OTHER_SHA256)
    assert pinned == Reference("ghcr.io", "o/r", None, OTHER_SHA256)
    assert str(pinned) == f"ghcr.io/o/r@{OTHER_SHA256}"


@pytest.mark.parametrize("tag", ["", "-x", ".x", "x" * 129, "a b"])
def test_with_tag_validates(tag: str) -> None:
    with pytest.raises(InvalidReferenceError):
        parse_reference("ghcr.io/o/r").with_tag(tag)


@pytest.mark.parametrize("digest", ["", "sha256:abc", "md5:" + "a" * 32, "sha256:" + "A" * 64])
def test_with_digest_validates(digest: str) -> None:
    with pytest.raises(InvalidReferenceError):
        parse_reference("ghcr.io/o/r").with_digest(digest)


# --- loopback hosts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("registry", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("LOCALHOST:5000", True),
        ("127.0.0.1", True),
        ("127.0.0.1:5000", True),
        ("127.5.5.5", True),
        ("127.255.255.254:80", True),
        ("[::1]", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("example.com", False),
        ("example.com:5000", False),
        ("10.0.0.1", False),
        ("10.0.0.1:5000", False),
        ("128.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 - a host string under test, not a bind
        ("[2001:db8::1]:5000", False),
        ("localhost.example.com", False),
        ("mylocalhost", False),
        ("127.0.0.1.nip.io", False),
        ("docker.io", False),
        ("", False),
    ],
)
def test_is_loopback_host(registry: str, loopback: bool) -> None:
    assert is_loopback_host(registry) is loopback
