"""image-syncer rule files: every documented form, its errors, and a real run with state."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mirrorbot.config import yamlio
from mirrorbot.config.imagesyncer import credential_for, load_auth, load_rules, parse_rules
from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.demo.seed import Seeder
from mirrorbot.engine.registry.media import Platform, PlatformFilter
from mirrorbot.errors import ConfigError
from tests.conftest import CREDS
from tests.support import skopeo
from tests.support.world import World, git

DIGEST = "sha256:" + "1" * 64
OTHER = "sha256:" + "2" * 64


def rules(document: dict[str, object], **kwargs: object):  # type: ignore[no-untyped-def]
    return parse_rules(document, **kwargs)  # type: ignore[arg-type]


def test_every_documented_rule_form() -> None:
    parsed = rules(
        {
            "quay.io/coreos/kube-rbac-proxy": "quay.io/ruohe/kube-rbac-proxy",
            "quay.io/coreos/kube-rbac-proxy:v1.0": "quay.io/ruohe/kube-rbac-proxy",
            "quay.io/coreos/kube-rbac-proxy:v1.0,v2.0": "quay.io/ruohe/kube-rbac-proxy",
            f"quay.io/coreos/kube-rbac-proxy@{DIGEST}": "quay.io/ruohe/kube-rbac-proxy",
            "quay.io/coreos/kube-rbac-proxy:v1.1": [
                "quay.io/ruohe/kube-rbac-proxy1",
                "quay.io/ruohe/kube-rbac-proxy2",
            ],
            "quay.io/coreos/kube-rbac-proxy:/a+/": "quay.io/ruohe/kube-rbac-proxy",
            "quay.io/coreos/etcd:v3.5,v3.4": "quay.io/ruohe/etcd:stable,old",
            "quay.io/coreos/flannel": "",
        },
        default=("registry.example", "mirror"),
    )
    assert [r.all_tags for r in parsed] == [True, False, False, False, False, False, False, True]
    assert parsed[1].tags == ("v1.0",)
    assert parsed[2].tags == ("v1.0", "v2.0")
    assert parsed[3].digest == DIGEST
    assert [str(d.repository) for d in parsed[4].destinations] == [
        "quay.io/ruohe/kube-rbac-proxy1",
        "quay.io/ruohe/kube-rbac-proxy2",
    ]
    assert parsed[5].regex is not None
    assert parsed[5].regex.pattern == "a+"
    assert parsed[6].destinations[0].tags == ("stable", "old")
    assert str(parsed[7].destinations[0].repository) == "registry.example/mirror/flannel"


@pytest.mark.hostile("image-syncer rules")
@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({f"quay.io/a/b@{DIGEST}": f"quay.io/c/d@{OTHER}"}, "digest mismatch"),
        ({"quay.io/a/b:v1,v2": "quay.io/c/d:x"}, "tag count mismatch: 2 source tag"),
        ({"quay.io/a/b": "quay.io/c/d:x"}, "tag count mismatch"),
        ({"quay.io/a/b:/x/": "quay.io/c/d:x"}, "tag count mismatch"),
        ({"quay.io/a/b": ""}, "default registry and namespace"),
        ({"busybox": "quay.io/c/d"}, "registry/namespace/repository"),
        ({"quay.io/A/b": "quay.io/c/d"}, "lowercase"),
        ({"quay.io/a/b:/(?=v)\\w+/": "quay.io/c/d"}, "look-ahead `(?=…)` is not supported"),
        ({"quay.io/a/b:/(v)\\1/": "quay.io/c/d"}, "backreference `\\1` is not supported"),
        ({"quay.io/a/b:/v\\d++/": "quay.io/c/d"}, "possessive quantifier"),
        ({"quay.io/a/b:/(/": "quay.io/c/d"}, "invalid regex '(': missing )"),
        ({"quay.io/a/b:v1": 42}, "destinations are strings"),
        ({"quay.io/a/b:bad tag": "quay.io/c/d"}, "tag"),
        ({"quay.io/a/b:v1": "quay.io/c/d:/x/"}, "regular expression"),
    ],
)
def test_rule_errors_name_the_rule(document: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        rules(document)
    assert next(iter(document)) in str(caught.value)


def test_auth_longest_match_and_environment(tmp_path: Path) -> None:
    auth = tmp_path / "auth.yaml"
    auth.write_text(
        "quay.io:\n  username: everyone\n  password: ${QUAY_PASSWORD}\n"
        "quay.io/coreos:\n  username: coreos\n  password: $COREOS_PASSWORD\n  insecure: true\n"
    )
    entries = load_auth(auth, {"QUAY_PASSWORD": "p1", "COREOS_PASSWORD": "p2"})
    chosen = credential_for(entries, "quay.io", "coreos/etcd")
    assert chosen is not None
    assert chosen.credential.username == "coreos"
    assert chosen.insecure
    fallback = credential_for(entries, "quay.io", "other/etcd")
    assert fallback is not None
    assert fallback.credential.password == "p1"
    assert credential_for(entries, "ghcr.io", "x/y") is None
    auth.write_text("quay.io:\n  user: x\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_auth(auth, {})


def _run(
    world: World,
    checkout: Path,
    *args: str,
    env: dict[str, str] | None = None,
    command: tuple[str, ...] = ("rules",),
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    environment = world.environment(env)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mirrorbot",
            *command,
            "--images",
            "images.yaml",
            "--auth",
            "auth.yaml",
            "--config",
            "no-mirrorbot.yaml",
            *args,
        ],
        cwd=checkout,
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_image_syncer_files_run_with_state_and_changelog(world: World) -> None:
    f = ImageFactory(world.ns)
    up = world.upstream.host
    down = world.mirror.host
    multi = f.index("multi", ("linux/amd64", "linux/arm64"))
    pinned = f.image("pinned")
    world.seed("app", "v1", multi)
    world.seed("app", "v2", f.image("app-v2"))
    world.seed("app", "alpha1", f.image("app-alpha1"))
    world.seed("app", "alpha2", f.image("app-alpha2"))
    world.seed("tool", "1.0", pinned)
    world.seed("lib", "2.0", f.image("lib"))
    checkout = world.tmp / "checkout"
    git("clone", str(world.remote), str(checkout), cwd=world.tmp)
    m = world.mirror_ns
    (checkout / "images.yaml").write_text(
        f"""\
{up}/{world.ns}/app:v1,v2: {down}/{m}/app
{up}/{world.ns}/app:/alpha\\d/:
  - {down}/{m}/app-alphas
  - {down}/{m}-second/app-alphas
{up}/{world.ns}/app:v1: {down}/{m}/app-stable:stable
{up}/{world.ns}/tool@{pinned.digest}: {down}/{m}/tool
{up}/{world.ns}/lib: ""
"""
    )
    (checkout / "auth.yaml").write_text(
        f"{down}:\n  username: ${{MIRROR_USER}}\n  password: ${{MIRROR_PASSWORD}}\n"
    )
    env = {"DEFAULT_REGISTRY": down, "DEFAULT_NAMESPACE": f"{m}-default"}
    first = _run(world, checkout, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert CREDS[1] not in first.stdout + first.stderr
    expectations = {
        f"{m}/app:v1": multi.digest,
        f"{m}/app-stable:stable": multi.digest,
        f"{m}/app-alphas:alpha1": None,
        f"{m}-second/app-alphas:alpha2": None,
        f"{m}-default/lib:2.0": None,
    }
    for reference, digest in expectations.items():
        found = skopeo.manifest_digest(f"{down}/{reference}", CREDS)
        if digest is not None:
            assert found == digest, reference
    assert skopeo.manifest_digest(f"{down}/{m}/tool@{pinned.digest}", CREDS) == pinned.digest
    # State: the upstream namespace, once per mirror namespace.
    git("pull", "-q", cwd=checkout)
    state_dir = checkout / "state" / up
    files = sorted(p.name for p in state_dir.iterdir())
    # One file per (upstream namespace, destination repository); the digest rule has no tag to record.
    assert files == sorted(
        f"{world.ns}@{down}+{target.replace('/', '+')}.json"
        for target in (
            f"{m}/app",
            f"{m}/app-alphas",
            f"{m}-second/app-alphas",
            f"{m}/app-stable",
            f"{m}-default/lib",
        )
    )
    lib_state = json.loads((state_dir / f"{world.ns}@{down}+{m}-default+lib.json").read_text())
    assert lib_state["mirror"] == f"{down}/{m}-default/lib"
    assert lib_state["images"]["lib"]["tags"]["2.0"]["digest"]
    changelog = (checkout / "state" / "CHANGELOG.md").read_text()
    assert f"`{up}/{world.ns}/app:v1` → `{down}/{m}/app-stable:stable`" in changelog
    assert changelog.count("- new: ") == 8  # v1, v2, alpha1 and alpha2 to two places, stable, lib
    # Second run: nothing new, no commit.
    head = git("rev-parse", "origin/main", cwd=checkout).strip()
    second = _run(world, checkout, env=env)
    assert second.returncode == 0, second.stderr
    git("fetch", "-q", cwd=checkout)
    assert git("rev-parse", "origin/main", cwd=checkout).strip() == head


def test_os_and_arch_filters_map_to_a_platform_filter(world: World) -> None:
    f = ImageFactory(world.ns)
    multi = f.index("filtered", ("linux/amd64", "linux/arm64", "windows/amd64"))
    world.seed("filtered", "v1", multi)
    checkout = world.tmp / "checkout"
    git("clone", str(world.remote), str(checkout), cwd=world.tmp)
    (checkout / "images.yaml").write_text(
        f"{world.upstream.host}/{world.ns}/filtered:v1: {world.mirror.host}/{world.mirror_ns}/filtered\n"
    )
    (checkout / "auth.yaml").write_text(
        f"{world.mirror.host}:\n  username: ${{MIRROR_USER}}\n  password: ${{MIRROR_PASSWORD}}\n"
    )
    result = _run(world, checkout, "--os", "linux", "--arch", "arm64,amd64")
    assert result.returncode == 0, result.stdout + result.stderr
    raw = skopeo.inspect_raw(f"{world.mirror.host}/{world.mirror_ns}/filtered:v1", CREDS)
    platforms = sorted(
        f"{m['platform']['os']}/{m['platform']['architecture']}"
        for m in json.loads(raw)["manifests"]
    )
    assert platforms == ["linux/amd64", "linux/arm64"]


def test_rule_errors_exit_2(world: World) -> None:
    checkout = world.tmp / "checkout"
    git("clone", str(world.remote), str(checkout), cwd=world.tmp)
    (checkout / "images.yaml").write_text(f"quay.io/a/b@{DIGEST}: quay.io/c/d@{OTHER}\n")
    (checkout / "auth.yaml").write_text("{}\n")
    result = _run(world, checkout)
    assert result.returncode == 2
    assert "digest mismatch" in result.stderr
    assert "images.yaml" in result.stderr
    assert os.listdir(checkout / ".git")  # untouched repository


def _one_rule(world: World) -> Path:
    f = ImageFactory(world.ns)
    world.seed("app", "v1", f.image("app-1"))
    checkout = world.tmp / "checkout"
    git("clone", str(world.remote), str(checkout), cwd=world.tmp)
    (checkout / "images.yaml").write_text(
        f"{world.upstream.host}/{world.ns}/app:v1: {world.mirror.host}/{world.mirror_ns}/app\n"
    )
    (checkout / "auth.yaml").write_text(
        f"{world.mirror.host}:\n  username: ${{MIRROR_USER}}\n  password: ${{MIRROR_PASSWORD}}\n"
    )
    return checkout


def test_sync_images_is_a_deprecated_alias_of_rules(world: World) -> None:
    checkout = _one_rule(world)
    result = _run(world, checkout, command=("sync",))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "`sync --images` is deprecated; use `mirrorbot rules --images`" in result.stderr
    assert "- new: " in world.remote_file("state/CHANGELOG.md")
    assert "duration 0.0 s" not in result.stdout


@pytest.mark.parametrize(
    "flag", [("--namespace", "x"), ("--image", "x"), ("--shard", "1/2"), ("--output", "o")]
)
def test_sync_images_refuses_sync_only_flags(world: World, flag: tuple[str, str]) -> None:
    checkout = _one_rule(world)
    result = _run(world, checkout, *flag, command=("sync",))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{flag[0]} does not apply to image-syncer rules" in result.stderr


@pytest.mark.parametrize(
    "flag",
    [
        ("--force",),
        ("--proc", "3"),
        ("--retries", "1"),
        ("--os", "linux"),
        ("--arch", "arm64"),
        ("--auth", "a.yaml"),
    ],
)
def test_rules_only_flags_are_refused_by_plain_sync(world: World, flag: tuple[str, ...]) -> None:
    result = world.run("sync", *flag)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{flag[0]} applies to image-syncer rules only (mirrorbot rules)" in result.stderr
    assert git("rev-list", "--count", "main", cwd=world.remote).strip() == "1"


REDOS = "\\w*\\w*\\w*\\w*\\w*\\w*\\w*\\w*\\w*\\w*!"  # hours per 128-character tag in Python's re


@pytest.mark.hostile("tag regexes")
def test_backtracking_rule_regex_runs_in_linear_time(world: World) -> None:
    f = ImageFactory(world.ns)
    up = world.upstream.host
    down = world.mirror.host
    world.seed("app", "a" * 128, f.image("long"))
    world.seed("app", "v1", f.image("v1"))
    checkout = world.tmp / "checkout"
    git("clone", str(world.remote), str(checkout), cwd=world.tmp)
    (checkout / "images.yaml").write_text(
        f"{up}/{world.ns}/app:/{REDOS}/: {down}/{world.mirror_ns}/never\n"
        f"{up}/{world.ns}/app:/v\\d+|{REDOS}/: {down}/{world.mirror_ns}/app\n"
    )
    (checkout / "auth.yaml").write_text(
        f"{down}:\n  username: ${{MIRROR_USER}}\n  password: ${{MIRROR_PASSWORD}}\n"
    )
    # Bounded: with a backtracking engine this run would spin for hours.
    result = _run(world, checkout, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert skopeo.manifest_digest(f"{down}/{world.mirror_ns}/app:v1", CREDS)
    git("pull", "-q", cwd=checkout)
    (state,) = (checkout / "state" / up).iterdir()
    assert sorted(json.loads(state.read_text())["images"]["app"]["tags"]) == ["v1"]


@pytest.mark.parametrize(
    ("regex", "named"),
    [
        ("(?!rc)v.*", "negative look-ahead `(?!…)` is not supported: tag regexes use RE2 syntax"),
        ("(v)\\d+\\1", "backreference `\\1` is not supported: tag regexes use RE2 syntax"),
    ],
)
def test_rule_regex_re2_lacks_exits_2_naming_it(world: World, regex: str, named: str) -> None:
    checkout = world.tmp / "checkout"
    git("clone", str(world.remote), str(checkout), cwd=world.tmp)
    (checkout / "images.yaml").write_text(f"quay.io/a/b:/{regex}/: quay.io/c/d\n")
    (checkout / "auth.yaml").write_text("{}\n")
    result = _run(world, checkout)
    assert result.returncode == 2, result.stdout + result.stderr
    assert named in result.stderr
    assert "images.yaml" in result.stderr


# image-syncer's own example files (AliyunContainerService/image-syncer, example/images.yaml and
# example/auth.yaml, and the README's images.json forms), with loopback hosts put in.
SYNCER_IMAGES_EXAMPLE = """\
quay.io/coreos/kube-rbac-proxy: quay.io/ruohe/kube-rbac-proxy

quay.io/coreos/kube-rbac-proxy:v1.0: quay.io/ruohe/kube-rbac-proxy

quay.io/coreos/kube-rbac-proxy:v1.0,v2.0: quay.io/ruohe/kube-rbac-proxy
"""
SYNCER_AUTH_EXAMPLE = """\
quay.io:
  username: xxx
  password: xxxxxxxxx
  insecure: true
registry.cn-beijing.aliyuncs.com:
  username: xxx
  password: xxxxxxxxx
docker.io:
  username: xxx
  password: xxxxxxxxxx
quay.io/coreos:
  username: abc
  password: xxxxxxxxx
  insecure: true
"""


def test_image_syncer_example_files_parse(tmp_path: Path) -> None:
    images = tmp_path / "images.yaml"
    images.write_text(SYNCER_IMAGES_EXAMPLE)
    parsed = load_rules(images)
    assert [r.all_tags for r in parsed] == [True, False, False]
    assert parsed[2].tags == ("v1.0", "v2.0")
    auth = tmp_path / "auth.yaml"
    auth.write_text(SYNCER_AUTH_EXAMPLE)
    entries = load_auth(auth, {})
    chosen = credential_for(entries, "quay.io", "coreos/kube-rbac-proxy")
    assert chosen is not None
    assert chosen.credential.username == "abc"
    assert chosen.insecure


def test_registry_repository_form_without_namespace() -> None:
    """The README's ``registry/repository:tag``: no namespace on either side."""
    (rule,) = rules({"127.0.0.1:5000/app:v1": "127.0.0.1:5001/copy"})
    assert (rule.source.registry, rule.source.repository, rule.tags) == (
        "127.0.0.1:5000",
        "app",
        ("v1",),
    )
    assert rule.destinations[0].repository.repository == "copy"
    with pytest.raises(ConfigError, match="needs a registry"):
        rules({"app:v1": "127.0.0.1:5001/copy"})


def test_unset_auth_variable_is_empty_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """image-syncer expands an unset ``$env`` to "": one warning naming it, not a failed run."""
    auth = tmp_path / "auth.yaml"
    auth.write_text(
        "quay.io:\n  username: ${QUAY_USER}\n  password: $QUAY_PASSWORD\n"
        "quay.io/coreos:\n  username: abc\n  password: pre$FIX\n"
    )
    with caplog.at_level(logging.WARNING, logger="mirrorbot.imagesyncer"):
        entries = load_auth(auth, {"QUAY_USER": "u"})
    quay = credential_for(entries, "quay.io", "other/x")
    assert quay is not None
    assert (quay.credential.username, quay.credential.password) == ("u", "")
    coreos = credential_for(entries, "quay.io", "coreos/x")
    assert coreos is not None
    assert coreos.credential.password == "pre"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "quay.io.password: environment variable QUAY_PASSWORD is not set" in lines[0]
    # Inside a longer value a bare $NAME may be a literal password's tail: not printed.
    assert "quay.io/coreos.password: environment variable a $NAME is not set" in lines[1]
    assert "FIX" not in lines[1]
    caplog.clear()
    auth.write_text("quay.io:\n  username: u\n  password: a$$b\n")
    with caplog.at_level(logging.WARNING, logger="mirrorbot.imagesyncer"):
        (entry,) = load_auth(auth, {})
    assert entry.credential.password == "a$b"
    assert [r.getMessage() for r in caplog.records] == [
        "quay.io.password: `$$` is a literal `$` in mirrorbot; "
        "image-syncer would expand it to nothing"
    ]


def test_arch_variant_syntax() -> None:
    """image-syncer's example/platform.yaml: ``arch: [arm:v7, amd64]``."""
    wanted = PlatformFilter.from_lists(["linux"], ["arm:v7", "amd64"])
    assert wanted.matches(Platform("linux", "arm", "v7"))
    assert not wanted.matches(Platform("linux", "arm", "v6"))
    assert wanted.matches(Platform("linux", "amd64"))
    assert PlatformFilter.from_lists([], ["arm/v6"]).matches(Platform("linux", "arm", "v6"))


def _checkout(world: World, images: str) -> Path:
    checkout = world.tmp / "checkout"
    git("clone", str(world.remote), str(checkout), cwd=world.tmp)
    (checkout / "images.yaml").write_text(images)
    (checkout / "auth.yaml").write_text(
        f"{world.mirror.host}:\n  username: ${{MIRROR_USER}}\n  password: ${{MIRROR_PASSWORD}}\n"
        f"{world.upstream.host}:\n  username: ${{UPSTREAM_USER_UNSET}}\n"
        "  password: ${UPSTREAM_PASSWORD_UNSET}\n"
    )
    return checkout


def test_image_syncer_semantics_on_real_registries(world: World) -> None:
    """Unanchored regex, registry/repository, duplicates once, --registry/--namespace,
    unset auth variables, --force without false updates, readable error lines, and find
    with no mirrorbot.yaml."""
    f = ImageFactory(world.ns)
    up, down, m = world.upstream.host, world.mirror.host, world.mirror_ns
    for tag in ("alpha", "banana", "v1"):
        world.seed("app", tag, f.image(f"app-{tag}"))
    solo = f.image("solo")
    with Seeder(world.upstream.url) as seeder:
        seeder.push(world.ns, "v1", solo)  # registry/repository: no namespace
    checkout = _checkout(
        world,
        f"""\
{up}/{world.ns}/app:/a+/: {down}/{m}/app
{up}/{world.ns}/app:banana: {down}/{m}/app
{up}/{world.ns}/app:nope: {down}/{m}/app
{up}/{world.ns}:v1: {down}/{m}-solo
{up}/{world.ns}/app:v1: ""
""",
    )
    flags = ("--registry", down, "--namespace", f"{m}-default")
    first = _run(world, checkout, *flags)
    assert first.returncode == 1, first.stdout + first.stderr  # app:nope fails, the rest is done
    err = first.stderr
    # banana is named by two rules: copied and counted once.
    assert re.search(r"tags new \(copied\)\s+4\n", first.stdout), first.stdout
    # The report says what ran: rules, which have no namespaces to count.
    assert "mirrorbot rules" in first.stdout, first.stdout
    assert "mirrorbot sync" not in first.stdout
    assert "namespaces" not in first.stdout
    assert "UPSTREAM_PASSWORD_UNSET is not set; it expands to an empty value" in err
    # The failed pair is named as source → target, never as a Python tuple.
    assert f"{up}/{world.ns}/app:nope → {down}/{m}/app:nope" in err
    assert "RulePair(" not in err
    assert "('" not in err
    for tag in ("alpha", "banana"):  # /a+/ matches anywhere, as Go's regexp.MatchString
        assert skopeo.manifest_digest(f"{down}/{m}/app:{tag}", CREDS), tag
    assert skopeo.manifest_digest(f"{down}/{m}-solo:v1", CREDS) == solo.digest
    solo_state = json.loads(world.remote_file(f"state/{up}/_root@{down}+{m}-solo.json"))
    assert solo_state["images"][world.ns]["tags"]["v1"]["digest"] == solo.digest
    assert skopeo.manifest_digest(f"{down}/{m}-default/app:v1", CREDS)
    changelog = world.remote_file("state/CHANGELOG.md")
    # banana is named by two rules: one copy, one line.
    assert changelog.count(f"`{up}/{world.ns}/app:banana`") == 1, changelog
    assert f"{down}/{m}/app:v1`" not in changelog  # v1 has no `a`: the regex is not /^a+$/ either
    assert changelog.count("- new: ") == 4, changelog  # alpha, banana, solo:v1, default app:v1
    # --force pushes again but the digests are the same: no "updated" claim, no commit.
    head = git("rev-parse", "main", cwd=world.remote).strip()
    (checkout / "images.yaml").write_text(f"{up}/{world.ns}/app:/a+/: {down}/{m}/app\n")
    git("pull", "-q", cwd=checkout)
    forced = _run(world, checkout, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert re.search(r"tags updated \(copied\)\s+0\n", forced.stdout), forced.stdout
    assert git("rev-parse", "main", cwd=world.remote).strip() == head
    assert "- updated: " not in world.remote_file("state/CHANGELOG.md")
    # find and verify read state/ of the checkout: no mirrorbot.yaml needed.
    assert not (checkout / "mirrorbot.yaml").exists()
    found = _bare(world, checkout, "find", "banana")
    assert found.returncode == 0, found.stdout + found.stderr
    assert f"{down}/{m}/app:banana" in found.stdout
    verified = _bare(world, checkout, "verify", "--auth", "auth.yaml")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verified 4 tags: 0 drifted" in verified.stdout
    repair = _bare(world, checkout, "verify", "--repair")
    assert repair.returncode == 2
    assert "--repair needs a mirrorbot.yaml" in repair.stderr


def _bare(world: World, checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``mirrorbot ARGS`` in the checkout, with no --config (mirrorbot.yaml does not exist)."""
    return subprocess.run(
        [sys.executable, "-m", "mirrorbot", *args],
        cwd=checkout,
        capture_output=True,
        text=True,
        env=world.environment(),
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_platform_filters_skip_rather_than_fail(world: World) -> None:
    """--arch/--os: a single image of another platform and an index with none are skipped."""
    f = ImageFactory(world.ns)
    up, down, m = world.upstream.host, world.mirror.host, world.mirror_ns
    world.seed("single", "v1", f.image("single", platform="linux/amd64"))
    world.seed("multi", "v1", f.index("multi", ("linux/amd64", "linux/arm64")))
    world.seed("arm", "v1", f.index("arm", ("linux/arm/v6", "linux/arm/v7", "linux/amd64")))
    checkout = _checkout(
        world,
        f"{up}/{world.ns}/single:v1: {down}/{m}/single\n"
        f"{up}/{world.ns}/multi:v1: {down}/{m}/multi\n"
        f"{up}/{world.ns}/arm:v1: {down}/{m}/arm\n",
    )
    result = _run(world, checkout, "--os", "linux", "--arch", "arm:v7")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert f"skipped {up}/{world.ns}/single:v1 → {down}/{m}/single:v1" in out
    assert "its platform linux/amd64 is not wanted" in out
    assert f"skipped {up}/{world.ns}/multi:v1 → {down}/{m}/multi:v1" in out
    assert "no manifest for platforms linux/arm/v7" in out
    for absent in (f"{down}/{m}/single:v1", f"{down}/{m}/multi:v1"):
        with pytest.raises(subprocess.CalledProcessError):
            skopeo.inspect_raw(absent, CREDS)
    raw = json.loads(skopeo.inspect_raw(f"{down}/{m}/arm:v1", CREDS))
    assert [
        (e["platform"]["architecture"], e["platform"].get("variant")) for e in raw["manifests"]
    ] == [("arm", "v7")]


def test_os_version_is_refused_not_silently_unmatched(world: World) -> None:
    """example/platform.yaml's ``windows:10.0.17763.1999``: mirrorbot does not compare OS versions."""
    checkout = _one_rule(world)
    result = _run(world, checkout, "--os", "linux,windows:10.0.17763.1999")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--os windows:10.0.17763.1999: OS versions are not supported" in result.stderr


# --------------------------------------------------------------------------- hostile rule files


def _laughs(last: str) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join([*lines, last]) + "\n"


@pytest.mark.hostile("image-syncer rules")
def test_alias_bomb_in_a_rule_file_is_one_config_error(tmp_path: Path) -> None:
    images = tmp_path / "images.yaml"
    images.write_text(_laughs("quay.io/a/b: *a9"))
    with pytest.raises(ConfigError) as caught:
        load_rules(images)
    assert str(caught.value) == (
        f"{images}:2: YAML aliases (*a0) are not supported: write the value out"
    )
    auth = tmp_path / "auth.yaml"
    auth.write_text(_laughs("quay.io: *a9"))
    with pytest.raises(ConfigError, match=r"auth\.yaml:2: YAML aliases"):
        load_auth(auth, {})


@pytest.mark.hostile("image-syncer rules")
def test_too_many_nodes_in_a_rule_file_is_one_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yamlio, "MAX_NODES", 50)  # the real 100,000 takes seconds to reach
    images = tmp_path / "images.yaml"
    images.write_text("quay.io/a/b:v1: [" + "quay.io/c/d," * 60 + "]\n")
    with pytest.raises(ConfigError, match="more than 50 YAML nodes") as caught:
        load_rules(images)
    assert caught.value.path == str(images)
    assert "\n" not in str(caught.value)


@pytest.mark.hostile("image-syncer rules")
def test_deeply_nested_rule_files_are_config_errors(tmp_path: Path) -> None:
    for name in ("images.yaml", "images.json"):
        path = tmp_path / name
        path.write_text('{"quay.io/a/b": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
        with pytest.raises(ConfigError, match="nested") as caught:
            load_rules(path)
        assert caught.value.path == str(path)


def test_rule_file_alias_bomb_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "images.yaml").write_text(_laughs("quay.io/a/b: *a9"))
    (tmp_path / "auth.yaml").write_text("{}\n")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "mirrorbot", "rules", "--images", "images.yaml"),
            *("--auth", "auth.yaml", "--config", "no-mirrorbot.yaml"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == (
        "error: images.yaml:2: YAML aliases (*a0) are not supported: write the value out\n"
    )


def test_rule_and_auth_errors_in_files_name_the_line(tmp_path: Path) -> None:
    images = tmp_path / "images.yaml"
    images.write_text("# rules\nquay.io/a/b: quay.io/c/d\n\nquay.io/a/b:v1,v2: quay.io/c/d:x\n")
    with pytest.raises(ConfigError) as caught:
        load_rules(images)
    assert str(caught.value) == (
        f"{images}:4: quay.io/a/b:v1,v2: tag count mismatch: "
        "2 source tag(s) but 1 destination tag(s)"
    )
    auth = tmp_path / "auth.yaml"
    auth.write_text("quay.io:\n  username: a\nghcr.io/x/:\n  user: b\n")
    with pytest.raises(ConfigError) as caught:
        load_auth(auth, {})
    assert str(caught.value) == f"{auth}:3: ghcr.io/x: unknown keys ['user']"
