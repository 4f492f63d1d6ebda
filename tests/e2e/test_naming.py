"""Upstream → mirror names: the gcrxio pattern, invalid renders, collisions."""

from __future__ import annotations

import pytest

from mirrorbot.domain.naming import (
    check_collisions,
    check_template,
    find_collisions,
    mirror_repository,
    registry_component,
)
from mirrorbot.errors import ConfigError, NameCollisionError


def render(
    template: str = "{repo}",
    repo: str = "pause",
    *,
    registry: str = "gcr.io",
    path: str = "google-containers",
    separator: str = "_",
    namespace: str = "gcrxio",
) -> str:
    return mirror_repository(
        template,
        mirror_namespace=namespace,
        source_registry=registry,
        source_path=path,
        repo=repo,
        separator=separator,
    )


def test_gcrxio_flat_names() -> None:
    assert render() == "gcrxio/pause"
    assert render(repo="etcd/backup") == "gcrxio/etcd_backup"


@pytest.mark.parametrize(
    ("template", "separator", "expected"),
    [
        ("{namespace}-{repo}", "_", "gcrxio/google-containers-pause"),
        ("{namespace}_{repo}", "_", "gcrxio/google-containers_pause"),
        ("{registry}_{namespace}_{repo}", "_", "gcrxio/gcr-io_google-containers_pause"),
        ("{namespace}/{repo}", "__", "gcrxio/google-containers__pause"),
        ("{namespace}/{repo}", "-", "gcrxio/google-containers-pause"),
        ("{namespace}/{repo}", ".", "gcrxio/google-containers.pause"),
        ("{namespace}/{repo}", "/", "gcrxio/google-containers/pause"),
        ("k8s-{repo}", "_", "gcrxio/k8s-pause"),
    ],
)
def test_templates_and_separators(template: str, separator: str, expected: str) -> None:
    assert render(template, separator=separator) == expected


def test_nested_repo_keeps_nesting_only_with_slash_separator() -> None:
    assert render(repo="etcd/backup", separator="/") == "gcrxio/etcd/backup"
    assert render("{namespace}-{repo}", "a/b/c", separator="-") == "gcrxio/google-containers-a-b-c"


def test_nested_upstream_namespace_is_flattened() -> None:
    assert (
        render("{namespace}_{repo}", registry="us-docker.pkg.dev", path="proj/repo")
        == "gcrxio/proj_repo_pause"
    )


@pytest.mark.parametrize(
    ("registry", "component"),
    [
        ("gcr.io", "gcr-io"),
        ("localhost:5000", "localhost-5000"),
        ("us-docker.pkg.dev", "us-docker-pkg-dev"),
        ("[::1]:5000", "1-5000"),
        ("Quay.IO", "quay-io"),
    ],
)
def test_registry_placeholder_is_one_component(registry: str, component: str) -> None:
    assert registry_component(registry) == component
    assert (
        render("{registry}_{repo}", registry=registry, separator="/") == f"gcrxio/{component}_pause"
    )


def test_empty_namespace_renders_empty() -> None:
    assert render("{namespace}{repo}", registry="registry.k8s.io", path="") == "gcrxio/pause"


@pytest.mark.parametrize(
    ("template", "separator", "expected"),
    [
        ("{namespace}/{repo}", "_", "gcrxio/pause"),
        ("{namespace}_{repo}", "_", "gcrxio/pause"),
        ("{namespace}-{repo}", "-", "gcrxio/pause"),
        ("{repo}.{namespace}", ".", "gcrxio/pause"),
        ("{registry}/{namespace}/{repo}", "_", "gcrxio/registry-k8s-io_pause"),
        ("{registry}/{namespace}/{repo}", "-", "gcrxio/registry-k8s-io-pause"),
        ("{registry}/{namespace}/{repo}", ".", "gcrxio/registry-k8s-io.pause"),
        ("{registry}/{namespace}/{repo}", "/", "gcrxio/registry-k8s-io/pause"),
        ("k8s-{namespace}-{repo}", "_", "gcrxio/k8s-pause"),
    ],
)
def test_namespace_of_a_registry_root_renders_valid(
    template: str, separator: str, expected: str
) -> None:
    """registry.k8s.io has no namespace path: ``{namespace}`` takes one separator along."""
    assert render(template, registry="registry.k8s.io", path="", separator=separator) == expected
    nested = render(template, "coredns/coredns", registry="registry.k8s.io", path="")
    assert nested.endswith("coredns_coredns")


@pytest.mark.parametrize(
    ("template", "repo", "path", "fragment"),
    [
        ("{image}", "pause", "ns", "unknown placeholder {image}"),
        ("{0}", "pause", "ns", "unknown placeholder {0}"),
        ("{repo.name}", "pause", "ns", "unknown placeholder"),
        ("{repo!r}", "pause", "ns", "no format spec or conversion"),
        ("{repo:>9}", "pause", "ns", "no format spec or conversion"),
        ("{repo", "pause", "ns", "malformed"),
        ("{namespace}", "pause", "ns", "must contain {repo}"),
        ("Mirror-{repo}", "pause", "ns", "must be lowercase"),
        ("{repo}-", "pause", "ns", "not a valid repository name"),
        ("{namespace}_{repo}_", "pause", "", "'gcrxio/pause_'"),
        ("{repo}{{x}}", "pause", "ns", "not a valid repository name"),
    ],
)
def test_invalid_renders(template: str, repo: str, path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        render(template, repo, path=path)
    assert fragment in caught.value.message


def test_invalid_render_names_the_upstream() -> None:
    with pytest.raises(ConfigError, match=r"renders gcr\.io/google-containers/pause as"):
        render("X{repo}")


def test_invalid_mirror_namespace_or_separator() -> None:
    with pytest.raises(ConfigError, match="not a valid repository name"):
        render(namespace="")
    with pytest.raises(ConfigError, match="separator ':'"):
        render(separator=":")


def test_too_long_name() -> None:
    with pytest.raises(ConfigError, match="longer than 255"):
        render(repo="a" * 250)


def test_check_template_reports_placeholders() -> None:
    assert check_template("{registry}-{namespace}-{repo}") == {"registry", "namespace", "repo"}
    assert check_template("x{repo}") == {"repo"}


def _pairs(template: str) -> list[tuple[str, str]]:
    upstreams = [("gcr.io", "a", "pause"), ("quay.io", "b", "pause"), ("quay.io", "b", "etcd")]
    return [
        (
            f"{registry}/{path}/{repo}",
            mirror_repository(
                template,
                mirror_namespace="gcrxio",
                source_registry=registry,
                source_path=path,
                repo=repo,
                separator="_",
            ),
        )
        for registry, path, repo in upstreams
    ]


def test_collision_across_namespaces() -> None:
    assert find_collisions(_pairs("{repo}")) == [
        ("gcr.io/a/pause", "quay.io/b/pause", "gcrxio/pause")
    ]
    with pytest.raises(NameCollisionError) as caught:
        check_collisions(_pairs("{repo}"))
    error = caught.value
    assert isinstance(error, ConfigError)
    assert (error.upstream_a, error.upstream_b, error.mirror) == (
        "gcr.io/a/pause",
        "quay.io/b/pause",
        "gcrxio/pause",
    )
    assert "gcr.io/a/pause" in str(error)
    assert "quay.io/b/pause" in str(error)
    assert "gcrxio/pause" in str(error)


def test_namespace_in_template_avoids_the_collision() -> None:
    assert find_collisions(_pairs("{namespace}_{repo}")) == []
    check_collisions(_pairs("{namespace}_{repo}"))


def test_separator_collision_within_a_namespace() -> None:
    pairs = [("r.io/ns/etcd/backup", "m/etcd_backup"), ("r.io/ns/etcd_backup", "m/etcd_backup")]
    assert find_collisions(pairs) == [
        ("r.io/ns/etcd/backup", "r.io/ns/etcd_backup", "m/etcd_backup")
    ]


def test_same_upstream_twice_is_not_a_collision() -> None:
    assert find_collisions([("a/x", "m/x"), ("a/x", "m/x")]) == []


def test_every_extra_claimer_is_reported_once() -> None:
    pairs = [("a/x", "m/x"), ("b/x", "m/x"), ("c/x", "m/x"), ("b/x", "m/x")]
    assert find_collisions(pairs) == [("a/x", "b/x", "m/x"), ("a/x", "c/x", "m/x")]
