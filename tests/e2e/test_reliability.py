"""Never lose or lie: faults, crashes, bad content and secrets, end to end (issue 6).

Every scenario runs the real ``mirrorbot`` command line against real
Distribution registries on loopback, with misbehaviour injected by test
fronts (``tests/support/faults.py``), and checks the result with independent
referees: skopeo (straight to the real registries, never through a front),
the registries' own storage and logs, and the git remote.

Seeded and bounded: fault schedules and kill delays come from
``random.Random(SEED)``; waits are conditions polled with a deadline. The
delays drawn for kills and the stalls inside ``FaultProxy`` are the faults
being simulated, not synchronisation. Figures go to ``tests/RELIABILITY.md``
through the ``reliability`` fixture.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mirrorbot.demo.corpus import Image, ImageFactory, signature_tag
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from tests.conftest import CREDS, PASSWORD, USER
from tests.support import skopeo
from tests.support.faults import FAULT_KINDS, CorruptFront, FaultProxy
from tests.support.git_http import GitHttpServer
from tests.support.hostile import RefusingPort
from tests.support.reliability import Recorder
from tests.support.world import World, git, make_world

SEED = 20261123
GITHUB_TOKEN = "ghp_R3liabilityT0kenNeverToBeSeen0123456789"
READ_TIMEOUT = 1.0  # seconds; a stall must outlast it
STALL = READ_TIMEOUT + 1.5
FAST_NETWORK = {"connect_timeout": 2, "read_timeout": READ_TIMEOUT}
Corpus = dict[str, dict[str, Image]]


# -- worlds, configs and referees -------------------------------------------------------


def configure(
    world: World,
    *,
    upstream: str,
    mirror: str,
    network: dict[str, Any] | None = None,
    state_repo: str | None = None,
    upstream_credentials: bool = False,
    images: list[str] | None = None,
) -> None:
    """A config for ``world`` with explicit hosts (fronts or real registries).

    Listing is by catalog, or by an explicit ``images`` list (no catalog paging)."""
    settings = "".join(f"  {key}: {value}\n" for key, value in (network or {}).items())
    registries = (
        f"  {mirror}:\n    username: ${{MIRROR_USER}}\n    password: ${{MIRROR_PASSWORD}}\n"
    )
    if upstream_credentials:
        registries += (
            f"  {upstream}:\n    username: ${{UPSTREAM_USER}}\n"
            "    password: ${UPSTREAM_PASSWORD}\n"
        )
    listing = (
        f"    list: images\n    images: {json.dumps(images)}\n" if images else "    list: catalog\n"
    )
    world.config.write_text(
        f"""\
mirror:
  registry: {mirror}
  namespace: {world.mirror_ns}
state:
  repo: {state_repo or world.remote}
  path: state
namespaces:
  - source: {upstream}/{world.ns}
{listing}registries:
{registries}"""
        + (f"network:\n{settings}" if settings else "")
    )


def seed_all(world: World, images: Corpus) -> None:
    for repository, tags in images.items():
        for tag, image in tags.items():
            world.seed(repository, tag, image)


def remote_state(world: World, upstream: str) -> dict[str, Any]:
    """The state file in the git remote, or an empty one if nothing was ever recorded."""
    try:
        text = world.remote_file(f"state/{upstream}/{world.ns}.json")
    except subprocess.CalledProcessError:
        return {"images": {}}
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def recorded(state: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    """``{(image, tag): (target repository, digest)}`` from a state document."""
    return {
        (image, tag): (entry["target"], record["digest"])
        for image, entry in state["images"].items()
        for tag, record in entry["tags"].items()
    }


def expected_tags(images: Corpus) -> dict[tuple[str, str], str]:
    return {
        (repo, tag): image.digest for repo, tags in images.items() for tag, image in tags.items()
    }


def changelog_lines(world: World) -> list[str]:
    try:
        text = world.remote_file("state/CHANGELOG.md")
    except subprocess.CalledProcessError:
        return []
    return [line for line in text.splitlines() if line.startswith("- ")]


_ENTRY = re.compile(
    r"^- (?P<kind>new|updated): `(?P<upstream>[^`]+)` → `[^`]+` \((?P<digest>sha256:[0-9a-f]+)"
)


def check_changelog(world: World, upstream: str, state: dict[str, Any]) -> None:
    """No duplicated line; every recorded tag in exactly one ``new`` line, none extra;
    the last entry of each tag names the digest state records (nothing lost)."""
    lines = changelog_lines(world)
    duplicated = [line for line, count in Counter(lines).items() if count > 1]
    assert not duplicated, f"duplicated CHANGELOG entries: {duplicated}"
    new: Counter[str] = Counter()
    last: dict[str, str] = {}
    for line in lines:
        match = _ENTRY.match(line)
        assert match, f"unparsable CHANGELOG entry: {line}"
        if match["kind"] == "new":
            new[match["upstream"]] += 1
        last[match["upstream"]] = match["digest"]
    tags = {
        f"{upstream}/{world.ns}/{image}:{tag}": digest
        for (image, tag), (_, digest) in recorded(state).items()
    }
    assert {ref for ref, count in new.items() if count != 1} == set(), new
    assert set(new) == set(tags), (
        f"lost: {sorted(set(tags) - set(new))}; extra: {sorted(set(new) - set(tags))}"
    )
    for reference, digest in tags.items():
        assert digest.startswith(last[reference]), (reference, digest, last[reference])


def real_reference(target: str, tag: str, fronted: str, real: LocalRegistry) -> str:
    """The mirror reference on the real registry, whatever front state names."""
    return f"{real.host}{target.removeprefix(fronted)}:{tag}"


def skopeo_disagreements(state: dict[str, Any], fronted: str, real: LocalRegistry) -> list[str]:
    """Recorded tags whose digest skopeo does not find in the mirror (straight, no front)."""
    problems = []
    for (_, tag), (target, digest) in recorded(state).items():
        reference = real_reference(target, tag, fronted, real)
        try:
            found = skopeo.manifest_digest(reference, CREDS)
        except subprocess.CalledProcessError as exc:
            problems.append(f"{reference}: skopeo cannot find it ({exc.stderr.decode()[-200:]})")
            continue
        if found != digest:
            problems.append(f"{reference}: mirror has {found}, state records {digest}")
    return problems


def storage_tags(registry: LocalRegistry, namespace: str) -> dict[tuple[str, str], str]:
    """``{(repository below namespace, tag): digest}`` read from the registry's own storage."""
    root = registry.storage / "docker/registry/v2/repositories" / namespace
    found = {}
    # Walked while the registry writes: upload folders come and go, so they are never
    # entered, and a folder that vanishes mid-walk is skipped (os.walk's default).
    for directory, folders, _ in os.walk(root):
        folders[:] = [name for name in folders if name not in ("_uploads", "_layers")]
        here = Path(directory)
        if here.name != "tags" or here.parent.name != "_manifests":
            continue
        repository = str(here.parent.parent.relative_to(root))
        for tag in folders:
            try:
                found[(repository, tag)] = (here / tag / "current" / "link").read_text().strip()
            except FileNotFoundError:
                continue  # a tag being written: not there yet
    return found


def mirror_has_repository_tags(world: World, repository: str) -> list[str]:
    """Tags skopeo lists for a mirror repository; [] when the repository does not exist."""
    try:
        return skopeo.list_tags(f"{world.mirror.host}/{world.mirror_ns}/{repository}", CREDS)
    except subprocess.CalledProcessError as exc:
        if b"404 (Not Found)" in exc.stderr or b"NAME_UNKNOWN" in exc.stderr:
            return []
        raise


def report_row(output: str, label: str) -> int:
    match = re.search(rf"^\s*{re.escape(label)}\s+(\d+)\s*$", output, re.MULTILINE)
    assert match, f"no {label!r} row in the report:\n{output}"
    return int(match[1])


def described(result: subprocess.CompletedProcess[str], *proxies: FaultProxy) -> str:
    faults = "; ".join(f"{p.host}: {dict(p.injected)}" for p in proxies)
    return f"exit {result.returncode}\nfaults: {faults}\n{result.stdout}\n{result.stderr}"


def fault_corpus(ns: str) -> Corpus:
    """A handful of repositories: an index with attestations and its signature, OCI and
    Docker images, a manifest list, a nested path, shared layers spanning several chunks."""
    f = ImageFactory(ns)
    base = f.layer("base", 300_000)
    pause = f.index("pause-3.9", layers=[base], attestations=True)
    return {
        "pause": {
            "3.9": pause,
            "latest": pause,
            signature_tag(pause.digest): f.signature(pause, "pause"),
        },
        "etcd": {"3.5.9": f.image("etcd", layers=[base], oci=True, layer_size=150_000)},
        "etcd/backup": {"v1": f.image("backup")},
        "coredns": {"v1.11": f.index("coredns", oci=False)},
        "kube-proxy": {
            "v1.28": f.index("kube-proxy", ("linux/amd64", "linux/arm64", "linux/arm/v7"))
        },
    }


@pytest.fixture
def fronts() -> Iterator[list[Any]]:
    """Fronts started by a test, stopped at its end whatever happens."""
    started: list[Any] = []
    try:
        yield started
    finally:
        for front in started:
            front.stop()


# -- faults ---------------------------------------------------------------------------


@pytest.mark.slow(seconds=15)
def test_full_sync_through_10_percent_faults_on_both_sides(
    world: World, fronts: list[Any], reliability: Recorder
) -> None:
    images = fault_corpus(world.ns)
    seed_all(world, images)
    up = FaultProxy(world.upstream, rate=0.10, seed=SEED, stall_seconds=STALL).start()
    down = FaultProxy(world.mirror, rate=0.10, seed=SEED + 1, stall_seconds=STALL).start()
    fronts.extend([up, down])
    configure(world, upstream=up.host, mirror=down.host, network=FAST_NETWORK)

    result = world.run("sync")
    verify = world.run("verify")  # still through the faults: verify must retry too
    reliability.faults(
        "full sync + verify, corpus of 5 repositories / 7 tags",
        rate=0.10,
        injected={"upstream": up.injected, "mirror": down.injected},
        proxied=up.proxied + down.proxied,
        exit_code=result.returncode,
    )
    assert result.returncode == 0, described(result, up, down)
    assert verify.returncode == 0, described(verify, up, down)
    assert "0 drifted" in verify.stdout
    assert up.total_injected >= 3, up.injected
    assert down.total_injected >= 3, down.injected
    assert set(up.injected) | set(down.injected) == set(FAULT_KINDS)

    state = remote_state(world, up.host)
    assert {key: digest for key, (_, digest) in recorded(state).items()} == expected_tags(images)
    assert skopeo_disagreements(state, down.host, world.mirror) == []
    # Every blob of the index with attestations, pulled straight from the mirror and verified.
    index = skopeo.copy_to_oci(
        f"{world.mirror.host}/{world.mirror_ns}/pause:3.9", world.tmp / "oci", CREDS
    )
    assert index["manifests"][0]["digest"] == images["pause"]["3.9"].digest
    check_changelog(world, up.host, state)


@pytest.mark.slow(seconds=25)
def test_30_percent_faults_never_record_what_the_mirror_lacks(
    world: World, fronts: list[Any], reliability: Recorder
) -> None:
    f = ImageFactory(world.ns)
    images: Corpus = {
        "app": {"v1": f.image("app-1"), "v2": f.index("app-2", attestations=True)},
        "lib": {"v1": f.image("lib-1", oci=True)},
        "tools/cli": {"v1": f.image("cli-1")},
    }
    seed_all(world, images)
    up = FaultProxy(world.upstream, rate=0.30, seed=SEED + 2, stall_seconds=STALL).start()
    down = FaultProxy(world.mirror, rate=0.30, seed=SEED + 3, stall_seconds=STALL).start()
    fronts.extend([up, down])
    configure(world, upstream=up.host, mirror=down.host, network=FAST_NETWORK)

    faulty = world.run("sync")
    reliability.faults(
        "sync at 30%, then a clean rerun",
        rate=0.30,
        injected={"upstream": up.injected, "mirror": down.injected},
        proxied=up.proxied + down.proxied,
        exit_code=faulty.returncode,
    )
    assert faulty.returncode in (0, 1), described(faulty, up, down)
    state = remote_state(world, up.host)
    assert skopeo_disagreements(state, down.host, world.mirror) == [], described(faulty, up, down)
    assert up.total_injected + down.total_injected >= 5, described(faulty, up, down)

    # Faults off, same hosts (state names them): the rerun completes the job.
    up.rate = down.rate = 0.0
    clean = world.run("sync")
    assert clean.returncode == 0, described(clean, up, down)
    verify = world.run("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    state = remote_state(world, up.host)
    assert {key: digest for key, (_, digest) in recorded(state).items()} == expected_tags(images)
    assert skopeo_disagreements(state, down.host, world.mirror) == []
    check_changelog(world, up.host, state)
    # Whatever its exit code, the faulty run ended in an orderly way: no unhandled exception
    # (a crash loses every success of the run, since nothing is committed).
    assert "Traceback" not in faulty.stderr, described(faulty, up, down)


def test_a_manifest_push_whose_answer_was_lost_is_checked_not_repeated(
    world: World, fronts: list[Any], reliability: Recorder
) -> None:
    f = ImageFactory(world.ns)
    images: Corpus = {
        "app": {"v1": f.image("app-1"), "v2": f.index("app-2", attestations=True)},
        "lib": {"v1": f.image("lib-1", oci=True)},
    }
    seed_all(world, images)
    # Half the manifest pushes land, then their answer is lost (the connection closes).
    down = FaultProxy(
        world.mirror,
        rate=0.5,
        seed=SEED + 4,
        kinds=("cut",),
        only=lambda method, path: method == "PUT" and "/manifests/" in path,
    ).start()
    fronts.append(down)
    configure(world, upstream=world.upstream.host, mirror=down.host, network=FAST_NETWORK)
    mark = world.mirror.log_mark()

    result = world.run("sync")
    reliability.faults(
        "manifest pushes that landed, then lost their answer",
        rate=0.5,
        injected={"mirror": down.injected},
        proxied=down.proxied,
        exit_code=result.returncode,
        scope="manifest PUTs",
    )
    assert result.returncode == 0, described(result, down)
    assert down.injected["cut"] >= 2, down.injected
    landed = Counter(
        r.uri
        for r in world.mirror.requests(mark)
        if r.method == "PUT" and "/manifests/" in r.uri and r.status in (200, 201)
    )
    # A push that may have landed is checked (HEAD) before it is retried: never pushed twice.
    assert {uri: n for uri, n in landed.items() if n > 1} == {}
    state = remote_state(world, world.upstream.host)
    assert {key: digest for key, (_, digest) in recorded(state).items()} == expected_tags(images)
    assert skopeo_disagreements(state, down.host, world.mirror) == []


def _first_blob_downloads(count: int) -> Any:
    """An ``only`` predicate for FaultProxy: the first ``count`` blob GETs, nothing else."""
    left = [count]

    def chosen(method: str, path: str) -> bool:
        if method == "GET" and "/blobs/sha256:" in path and left[0] > 0:
            left[0] -= 1
            return True
        return False

    return chosen


@pytest.mark.slow(seconds=10)
@pytest.mark.parametrize("kind", ["cut", "stall"])
def test_a_blob_download_cut_or_stalled_midway_is_retried(
    world: World, fronts: list[Any], reliability: Recorder, kind: str
) -> None:
    """Deterministic: the first blob downloads of a sync (upstream), then of a
    ``verify --deep`` (mirror), are cut halfway / stalled past the read timeout."""
    f = ImageFactory(world.ns)
    images: Corpus = {
        "app": {"v1": f.image("app-1", layer_size=100_000)},
        "lib": {"v1": f.image("lib-1", oci=True)},
        "multi": {"v1": f.index("multi-1", attestations=True)},
    }
    seed_all(world, images)
    up = FaultProxy(
        world.upstream,
        rate=1.0,
        seed=SEED,
        kinds=(kind,),
        stall_seconds=STALL,
        only=_first_blob_downloads(2),
    ).start()
    down = FaultProxy(
        world.mirror, rate=1.0, seed=SEED, kinds=(kind,), stall_seconds=STALL, only=lambda *_: False
    ).start()
    fronts.extend([up, down])
    configure(world, upstream=up.host, mirror=down.host, network=FAST_NETWORK)

    result = world.run("sync")
    down.only = _first_blob_downloads(2)
    deep = world.run("verify", "--deep")
    reliability.faults(
        f"first blob downloads {kind} (sync, then verify --deep)",
        rate=1.0,
        injected={"upstream": up.injected, "mirror": down.injected},
        proxied=up.proxied + down.proxied,
        exit_code=result.returncode,
        scope="the first 2 blob GETs per side",
    )
    assert result.returncode == 0, described(result, up, down)
    assert up.injected[kind] == 2
    state = remote_state(world, up.host)
    assert {key: digest for key, (_, digest) in recorded(state).items()} == expected_tags(images)
    assert down.injected[kind] == 2
    assert deep.returncode == 0, described(deep, up, down)
    assert "0 drifted" in deep.stdout


@pytest.mark.parametrize("mode", ["bytes", "truncate", "digest-header"])
def test_a_registry_serving_bad_content_is_refused(
    world: World, fronts: list[Any], reliability: Recorder, mode: str
) -> None:
    f = ImageFactory(world.ns)
    good = f.image("good")
    other = f.index("other", attestations=True)
    bad = f.image("bad", layer_size=100_000)
    world.seed("good", "v1", good)
    world.seed("other", "v1", other)
    world.seed("bad", "v1", bad)
    own_layer = bad.blobs[-1].digest
    front = CorruptFront(
        world.upstream,
        mode,  # type: ignore[arg-type]
        digest=own_layer,
        repository=f"{world.ns}/bad",
    ).start()
    fronts.append(front)
    configure(world, upstream=front.host, mirror=world.mirror.host)
    mark = world.mirror.log_mark()

    result = world.run("sync")
    reliability.hostile("registry answers (manifests, bodies, headers)")
    assert front.lies >= 1
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{front.host}/{world.ns}/bad:v1" in result.stdout
    state = remote_state(world, front.host)
    assert set(state["images"]) == {"good", "other"}
    assert {key: d for key, (_, d) in recorded(state).items()} == {
        ("good", "v1"): good.digest,
        ("other", "v1"): other.digest,
    }
    # Nothing pushed for it: no manifest PUT reached the mirror's repository, no tag,
    # and the blob it lied about is not in the mirror's repository.
    pushes = [
        r.uri
        for r in world.mirror.requests(mark)
        if r.method == "PUT" and r.uri.startswith(f"/v2/{world.mirror_ns}/bad/manifests/")
    ]
    assert pushes == []
    assert mirror_has_repository_tags(world, "bad") == []
    layer_link = (
        world.mirror.storage
        / "docker/registry/v2/repositories"
        / world.mirror_ns
        / "bad/_layers/sha256"
        / own_layer.partition(":")[2]
    )
    assert not layer_link.exists()
    assert skopeo_disagreements(state, world.mirror.host, world.mirror) == []


@pytest.mark.slow(seconds=10)
@pytest.mark.parametrize("dead", ["refused", "503"])
def test_a_dead_mirror_fails_fast_with_one_message(
    world: World, fronts: list[Any], dead: str
) -> None:
    f = ImageFactory(world.ns)
    one, two = f.image("one"), f.index("two")
    with Seeder(world.upstream.url) as seeder:
        for number in range(40):
            seeder.push(f"{world.ns}/app-{number % 4}", f"v{number}", one if number % 2 else two)
    if dead == "refused":
        refusing = RefusingPort()  # held for the test: nothing can listen there meanwhile
        fronts.append(refusing)
        host = refusing.host
    else:
        proxy = FaultProxy(world.mirror, rate=1.0, seed=SEED, kinds=("503",)).start()
        fronts.append(proxy)
        host = proxy.host
    configure(
        world,
        upstream=world.upstream.host,
        mirror=host,
        network={**FAST_NETWORK, "retries": 3, "circuit_breaker": 3},
    )
    started = time.monotonic()
    result = world.run("sync")
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert elapsed < 30, f"took {elapsed:.1f} s"
    assert "is down" in output, output
    # One clear message, not one per image: the 40 failures must not each repeat it.
    excerpt = "\n".join(line[:160] for line in output.splitlines()[:16])
    said = output.count("is down")
    assert said <= 2, f"'is down' said {said} times for 40 images:\n{excerpt}\n…"
    naming_host = [line for line in output.splitlines() if host in line]
    assert len(naming_host) <= 12, f"{len(naming_host)} lines name {host}:\n{excerpt}\n…"
    if dead == "503":
        assert len(proxy.requests) <= 40, f"{len(proxy.requests)} requests to a dead registry"
    assert git("rev-list", "--count", "main", cwd=world.remote).strip() == "1"


# -- crashes -------------------------------------------------------------------------


def _kill_group(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGKILL)  # the run and the git processes it started
    process.wait(timeout=30)


@pytest.mark.slow(seconds=170)
def test_sigkill_at_random_moments_then_a_clean_run(
    world: World, fronts: list[Any], reliability: Recorder
) -> None:
    rng = random.Random(SEED)  # noqa: S311 - a seeded schedule of kills, not crypto
    f = ImageFactory(world.ns)
    repositories = ["app", "lib", "tools/cli"]
    upstream: dict[tuple[str, str], str] = {}

    def add(repository: str, tag: str, key: str) -> None:
        image = f.image(key) if rng.random() < 0.6 else f.index(key, attestations=True)
        world.seed(repository, tag, image)
        upstream[(repository, tag)] = image.digest

    for repository in repositories:
        add(repository, "v0", f"{repository}-v0")
        add(repository, "latest", f"{repository}-latest-0")
    # Most of a run's time should go to copying and publishing, where there is state to
    # lose: an explicit listing (no paging through the session registry's catalog) and a
    # slow link upstream (30 ms per request) that stretches the copies.
    slow = FaultProxy(world.upstream, rate=0.0, seed=SEED, latency=0.03).start()
    fronts.append(slow)
    # The state remote is served as GitHub serves it, by another process tree: a kill of
    # the run's process group must not kill the remote's own receive-pack (with a plain
    # path remote it runs in the run's group and a kill mid-push leaves the remote's
    # refs/heads/main.lock behind, which no real remote would).
    remote = GitHttpServer(world.remote.parent, GITHUB_TOKEN).start()
    fronts.append(remote)
    token = {"GITHUB_TOKEN": GITHUB_TOKEN}
    configure(
        world,
        upstream=slow.host,
        mirror=world.mirror.host,
        images=repositories,
        state_repo=f"{remote.url}/{world.remote.name}",
    )
    # Kill moments: between "the interpreter is up" and "a run with work is over". A kill
    # during Python's own start-up cannot lose anything, so it is not worth a cycle.
    started = time.monotonic()
    world.run("sync", "--help", env=token)
    start_up = time.monotonic() - started
    started = time.monotonic()
    first = world.run("sync", env=token)
    window = time.monotonic() - started
    assert first.returncode == 0, first.stdout + first.stderr

    runs = 20
    figures = reliability.kills(
        runs=runs,
        start_up=start_up,
        window=window,
        delivered=0,
        published=0,
        unrecorded=0,
        survived=0,
        tags=0,
    )
    for cycle in range(1, runs + 1):
        # Upstream moves between kills: new tags, and now and then a retagged latest.
        for number in range(rng.randint(2, 4)):
            repository = rng.choice(repositories)
            add(repository, f"v{cycle}.{number}", f"{repository}-{cycle}.{number}")
        if cycle % 4 == 0:
            repository = rng.choice(repositories)
            add(repository, "latest", f"{repository}-latest-{cycle}")
        commits = git("rev-list", "--count", "main", cwd=world.remote)
        mark = world.mirror.log_mark()
        process = subprocess.Popen(
            world.command("sync"),
            env=world.environment(token),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )
        try:
            process.wait(timeout=rng.uniform(start_up, window))  # the moment of the crash
        except subprocess.TimeoutExpired:
            _kill_group(process)
            figures["delivered"] += 1
            # Where did it land? After publishing (the remote moved), or while copying
            # (the mirror had received uploads that no state records yet)?
            if git("rev-list", "--count", "main", cwd=world.remote) != commits:
                figures["published"] += 1
            elif any(r.method in ("PUT", "POST") for r in world.mirror.requests(mark)):
                figures["unrecorded"] += 1

        started = time.monotonic()
        clean = world.run("sync", env=token)
        window = max(window, time.monotonic() - started)  # the longest run seen is "typical"
        assert clean.returncode == 0, f"cycle {cycle}: {clean.stdout}{clean.stderr}"
        state = remote_state(world, slow.host)
        assert {k: d for k, (_, d) in recorded(state).items()} == upstream, f"cycle {cycle}"
        in_mirror = storage_tags(world.mirror, world.mirror_ns)
        for (image, tag), (_, digest) in recorded(state).items():
            assert in_mirror.get((image.replace("/", "_"), tag)) == digest, (cycle, image, tag)
        verify = world.run("verify", env=token)
        assert verify.returncode == 0, f"cycle {cycle}: {verify.stdout}{verify.stderr}"
        check_changelog(world, slow.host, state)
        figures["survived"] += 1
        figures["tags"] = len(upstream)
        figures["window"] = window

    assert (
        skopeo_disagreements(remote_state(world, slow.host), world.mirror.host, world.mirror) == []
    )


@pytest.mark.slow(seconds=14)
def test_locks_left_by_a_run_killed_inside_git_do_not_block_the_next(
    world: World, reliability: Recorder
) -> None:
    """A SIGKILL during ``git commit``/``checkout``/``fetch`` leaves ``*.lock`` files in
    the cached state clone; every later run must still complete (found by the random
    kills above; here each lock is placed deterministically)."""
    f = ImageFactory(world.ns)
    world.seed("app", "v0", f.image("app-0"))
    assert world.run("sync").returncode == 0
    [clone] = (world.tmp / "home/.cache/mirrorbot/state-repos").iterdir()
    locks = [
        "index.lock",
        "HEAD.lock",
        "refs/heads/main.lock",
        "refs/remotes/origin/main.lock",
        "packed-refs.lock",
        "config.lock",
    ]
    blocked = []
    for number, lock in enumerate(locks, start=1):
        world.seed("app", f"v{number}", f.image(f"app-{number}"))
        (clone / ".git" / lock).write_text("")  # what git leaves when killed mid-update
        result = world.run("sync")
        if result.returncode != 0:
            blocked.append(f".git/{lock}: exit {result.returncode}: {result.stderr.strip()[-300:]}")
            (clone / ".git" / lock).unlink(missing_ok=True)  # unblock, to try the next one
    reliability.leftovers(tried=[f".git/{lock}" for lock in locks], blocking=blocked)
    assert blocked == [], "\n".join(blocked)
    state = remote_state(world, world.upstream.host)
    assert len(recorded(state)) == len(locks) + 1
    check_changelog(world, world.upstream.host, state)


def _wait_for(condition: Any, timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)  # polling a condition with a deadline
        delay = min(delay * 2, 0.05)


@pytest.mark.parametrize(
    ("signum", "exit_code"), [(signal.SIGTERM, 1), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
@pytest.mark.slow(seconds=16)
def test_sigterm_stops_cleanly_and_records_what_completed(
    world: World,
    fronts: list[Any],
    reliability: Recorder,
    signum: signal.Signals,
    exit_code: int,
) -> None:
    """SIGTERM (CI's cancel) and SIGINT (Ctrl-C) stop starting copies, finish the ones in
    flight and publish them; SIGTERM exits 1, Ctrl-C 130 (interrupted)."""
    f = ImageFactory(world.ns)
    images: Corpus = {}
    for n in range(20):
        images.setdefault(f"app-{n % 5}", {})[f"v{n}"] = f.image(f"app-{n}", layer_size=4096)
    seed_all(world, images)
    # A slow link upstream makes the run last a few seconds: there is a middle to stop in.
    slow = FaultProxy(world.upstream, rate=0.0, seed=SEED, latency=0.1).start()
    fronts.append(slow)
    configure(
        world,
        upstream=slow.host,
        mirror=world.mirror.host,
        network={**FAST_NETWORK, "read_timeout": 10, "image_concurrency": 2},
    )
    total = sum(len(tags) for tags in images.values())
    grace = 15.0

    process = subprocess.Popen(
        world.command("sync"),
        env=world.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:

        def some_landed() -> dict[tuple[str, str], str] | None:
            landed = storage_tags(world.mirror, world.mirror_ns)
            return landed if len(landed) >= 3 or process.poll() is not None else None

        at_signal = _wait_for(some_landed, 60, "three tags in the mirror")
        assert process.poll() is None, "the run finished before it could be stopped"
        signalled = time.monotonic()
        process.send_signal(signum)
        try:
            stdout, stderr = process.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            pytest.fail(f"still running {grace} s after {signum.name}:\n{stdout}\n{stderr}")
        exit_seconds = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    state = remote_state(world, slow.host)
    done = recorded(state)
    output = stdout + stderr
    reported = report_row(stdout, "tags new (copied)") if "tags new (copied)" in stdout else -1
    figures = {
        "signal": signum.name,
        "total": total,
        "in_mirror_at_signal": len(at_signal),
        "exit": process.returncode,
        "exit_seconds": exit_seconds,
        "grace": grace,
        "reported": reported,
        "recorded": len(done),
        "rest": total - len(done),
    }
    reliability.sigterm(**figures)
    assert exit_seconds < grace
    assert process.returncode == exit_code, output
    assert reported == len(done), output
    assert 0 < len(done) < total, output
    # Everything that had landed when the signal came was finished and recorded...
    assert {(repo.replace("/", "_"), tag) for repo, tag in done} >= set(at_signal), output
    # ...and everything recorded is in the mirror with its digest.
    assert skopeo_disagreements(state, world.mirror.host, world.mirror) == []
    check_changelog(world, slow.host, state)

    rest = world.run("sync")
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert report_row(rest.stdout, "tags new (copied)") == total - len(done)
    state = remote_state(world, slow.host)
    assert {k: d for k, (_, d) in recorded(state).items()} == expected_tags(images)
    assert skopeo_disagreements(state, world.mirror.host, world.mirror) == []
    check_changelog(world, slow.host, state)


# -- secrets --------------------------------------------------------------------------

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")


def test_no_secret_in_any_output_of_a_verbose_run(
    tmp_path: Path,
    basic_registry: LocalRegistry,
    token_registry: LocalRegistry,
    ns: str,
    reliability: Recorder,
) -> None:
    world = make_world(tmp_path, basic_registry, token_registry, ns)
    f = ImageFactory(ns)
    broken = f.image("broken", layer_size=4096)
    with Seeder(basic_registry.url, CREDS) as seeder:
        seeder.push(f"{ns}/pause", "3.9", f.index("pause", attestations=True))
        seeder.push(f"{ns}/app", "v1", f.image("app"))
        seeder.push(f"{ns}/broken", "v1", broken)
    # A failing image too, so that error paths print what they print.
    layer = broken.blobs[-1].digest.partition(":")[2]
    (
        basic_registry.storage / "docker/registry/v2/blobs/sha256" / layer[:2] / layer / "data"
    ).unlink()
    server = GitHttpServer(tmp_path, GITHUB_TOKEN).start()
    try:
        configure(
            world,
            upstream=basic_registry.host,
            mirror=token_registry.host,
            state_repo=f"{server.url}/{world.remote.name}",
            upstream_credentials=True,
        )
        summary = tmp_path / "step-summary.md"
        env = {
            "GITHUB_TOKEN": GITHUB_TOKEN,
            "GITHUB_STEP_SUMMARY": str(summary),
            "UPSTREAM_USER": USER,
            "UPSTREAM_PASSWORD": PASSWORD,
        }
        runs = {
            "sync": world.run("sync", "--verbose", env=env),
            "sync again": world.run("sync", "--verbose", env=env),
            "plan": world.run("plan", "--verbose", env=env),
            "verify": world.run("verify", "--verbose", env=env),
        }
    finally:
        server.stop()
    assert runs["sync"].returncode == 1, runs["sync"].stdout + runs["sync"].stderr
    assert f"{ns}/broken:v1" in runs["sync"].stdout
    assert runs["verify"].returncode == 0, runs["verify"].stdout + runs["verify"].stderr
    # The token was really used, as a header, for the git remote.
    assert any(a and a.lower().startswith("basic ") for a in server.authorizations)

    places: dict[str, bytes] = {}
    for name, completed in runs.items():
        places[f"{name}: stdout"] = completed.stdout.encode()
        places[f"{name}: stderr"] = completed.stderr.encode()
    places["$GITHUB_STEP_SUMMARY"] = summary.read_bytes()
    for root in (tmp_path / "home", world.remote):  # the state clone (.git included), the remote
        for path in root.rglob("*"):
            if path.is_file():
                places[str(path.relative_to(tmp_path))] = path.read_bytes()
    places["git log -p --all (remote)"] = git("log", "-p", "--all", cwd=world.remote).encode()
    [clone] = (tmp_path / "home/.cache/mirrorbot/state-repos").iterdir()
    places["git log -p --all (clone)"] = git("log", "-p", "--all", cwd=clone).encode()
    places["state, CHANGELOG, index (clone)"] = b"".join(
        path.read_bytes() for path in (clone / "state").rglob("*") if path.is_file()
    )

    secrets = {
        "registry password": PASSWORD,
        "basic user:password": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "git basic header": base64.b64encode(f"x-access-token:{GITHUB_TOKEN}".encode()).decode(),
    }
    leaked = [
        f"{label} in {place}"
        for place, data in places.items()
        for label, secret in secrets.items()
        if secret.encode() in data
    ]
    leaked += [
        f"a bearer token (JWT) in {place}"
        for place, data in places.items()
        if _JWT.search(data.decode("utf-8", "replace"))
    ]
    reliability.secrets(
        secrets=len(secrets) + 1,
        places=len(places),
        leaked=leaked,
        what="sync twice, plan, verify: stdout, stderr, $GITHUB_STEP_SUMMARY, every file of "
        "the state clone and the bare remote, `git log -p --all` of both",
    )
    assert leaked == []
    assert len(places) > 20  # the clone and the remote were really searched
