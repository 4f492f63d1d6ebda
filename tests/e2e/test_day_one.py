"""The first real nightly: the shipped ``mirrorbot.yaml`` plans, and an empty namespace fails.

The shipped file is planned with ``mirrorbot plan`` against loopback
stand-ins for its three registries, holding repositories with the same names
as upstream: a gcr front (gcr.io/google-containers), the real registry itself
(registry.k8s.io: images at the root) and a Quay-API front (quay.io/coreos),
all over one real Distribution registry. Only the hosts are rewritten.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirrorbot.config import load_config
from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from mirrorbot.domain.naming import find_collisions
from tests.support.fronts import GcrFront
from tests.support.quay_front import QuayFront
from tests.support.world import World, git, seeded_remote, write_config

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "mirrorbot.yaml"
ENV = {"DOCKERHUB_USERNAME": "someone", "DOCKERHUB_TOKEN": "not-a-real-token"}
EMPTY_LINE = "lists no repositories: check the name or set `list:`"

# Upstream names, as the real registries hold them.
GCR = ("pause", "kube-apiserver", "kube-proxy", "etcd")
K8S = ("pause", "kube-apiserver", "kube-proxy", "coredns/coredns")
QUAY = ("etcd", "flannel", "kube-proxy")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """One real registry holding all three stand-ins' repositories (root ones included)."""
    registry = LocalRegistry(tmp_path_factory.mktemp("day-one"), name="day-one")
    registry.start()
    try:
        f = ImageFactory("day-one")
        base = f.layer("base", 1024)
        corpus = {f"google-containers/{name}": {"3.9": f.image(f"gcr-{name}")} for name in GCR}
        corpus |= {name: {"v1.28.0": f.image(f"k8s-{name}", layers=[base])} for name in K8S}
        corpus |= {
            f"coreos/{name}": {"v3.5.9": f.image(f"quay-{name}"), "v3.6.0-rc1": f.image("rc")}
            for name in QUAY
        }
        with Seeder(registry.url) as seeder:
            seeder.push_all(corpus)
        yield registry
    finally:
        registry.stop()


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the shipped mirrorbot.yaml changed shape: {old!r}"
    return text.replace(old, new)


def test_the_shipped_names_cannot_collide_across_its_registries() -> None:
    """The same repository names under all three real hosts: every mirror name distinct."""
    config = load_config(SHIPPED, ENV)
    claims = []
    for ns in config.namespace_plans():
        names = {"gcr": GCR, "images": K8S, "quay": QUAY}[ns.strategy]
        claims += [(ns.upstream(name), ns.mirror_repository(name)) for name in names]
    assert find_collisions(claims) == []
    targets = dict(claims)
    assert targets["registry.k8s.io/pause"] == "gcrxio/registry-k8s-io_pause"
    assert targets["gcr.io/google-containers/pause"] == "gcrxio/gcr-io_google-containers_pause"
    assert targets["quay.io/coreos/etcd"] == "gcrxio/quay-io_coreos_etcd"


def test_the_shipped_config_plans_every_namespace(
    tmp_path: Path, upstream: LocalRegistry, plain_registry: LocalRegistry
) -> None:
    remote = seeded_remote(tmp_path, "fork.git")
    checkout = tmp_path / "fork"
    git("clone", str(remote), str(checkout), cwd=tmp_path)
    with GcrFront(upstream) as gcr, QuayFront(upstream, page_size=2) as quay:
        text = SHIPPED.read_text()
        text = _replace_once(text, "source: gcr.io/", f"source: {gcr.host}/")
        text = _replace_once(text, "source: registry.k8s.io\n", f"source: {upstream.host}\n")
        text = _replace_once(text, "source: quay.io/", f"source: {quay.host}/")
        text = _replace_once(text, "registry: docker.io ", f"registry: {plain_registry.host} ")
        config = checkout / "mirrorbot.yaml"
        config.write_text(text)

        planned = _plan(config, tmp_path)
        assert planned.returncode == 0, planned.stdout + planned.stderr
        document = json.loads(planned.stdout)
        assert document["errors"] == []
        by_source = {ns["source"]: ns for ns in document["namespaces"]}
        assert set(by_source) == {
            f"{gcr.host}/google-containers",
            upstream.host,
            f"{quay.host}/coreos",
        }
        images = {
            source: sorted({item["image"] for item in ns["items"]})
            for source, ns in by_source.items()
        }
        assert images[f"{gcr.host}/google-containers"] == sorted(GCR)
        assert images[upstream.host] == sorted(K8S)
        assert images[f"{quay.host}/coreos"] == sorted(QUAY)
        quay_tags = {item["tag"] for item in by_source[f"{quay.host}/coreos"]["items"]}
        assert quay_tags == {"v3.5.9"}  # the include regex: releases only
        targets = [item["target"] for ns in document["namespaces"] for item in ns["items"]]
        assert len(targets) == len(set(targets))
        assert (
            f"{plain_registry.host}/gcrxio/{_component(upstream.host)}_coredns_coredns:v1.28.0"
            in targets
        )
        assert quay.api_requests, "quay.io was not listed through its API"

        # The name the file shipped with before: pause lands twice on gcrxio/pause; every
        # image that would share a name fails (exit 1), naming both upstreams.
        config.write_text(
            _replace_once(text, 'name: "{registry}/{namespace}/{repo}"', 'name: "{repo}"')
        )
        collided = _plan(config, tmp_path)
    assert collided.returncode == 1, collided.stdout + collided.stderr
    assert (
        "/google-containers/pause: not mirrored: "
        f"{plain_registry.host}/gcrxio/pause is also the mirror of "
    ) in collided.stderr


def _component(host: str) -> str:
    return host.replace(".", "-").replace(":", "-")


def _plan(config: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("MIRRORBOT_", "GITHUB_"))
    }
    environment |= ENV | {"HOME": str(tmp_path / "home")}
    return subprocess.run(
        [sys.executable, "-m", "mirrorbot", "plan", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )


# -- a namespace that lists nothing ----------------------------------------------


def test_a_namespace_that_lists_nothing_fails_and_the_others_are_committed(world: World) -> None:
    world.seed("pause", "3.9", ImageFactory(world.ns).image("pause"))
    typo = f"{world.upstream.host}/{world.ns}-typo"
    write_config(world, extra_namespace=f"  - source: {typo}\n    list: catalog\n")
    line = f"{typo}: {EMPTY_LINE}"

    synced = world.run("sync")
    assert synced.returncode == 1, synced.stdout + synced.stderr
    assert line in synced.stdout + synced.stderr
    assert f"{typo}: {typo}" not in synced.stdout + synced.stderr  # named once per line
    assert "pause" in world.state()["images"]  # type: ignore[operator]
    assert world.remote_file("state/CHANGELOG.md").count("- new: ") == 1

    planned = world.run("plan")
    assert planned.returncode == 1
    assert line in planned.stdout + planned.stderr
    as_json = world.run("plan", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["errors"] == [line]
