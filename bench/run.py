"""mirrorbot vs skopeo, side by side on real registries: the one entry point of ``bench/``.

    .venv/bin/python bench/run.py [--quick] [--out bench/results/latest.json]
                                  [--repeat N] [--workdir DIR] [--strict]

Scenarios (see bench/README.md for what each figure means):

1. cold sync, 2. no-op sync, 3. incremental sync — ``mirrorbot sync`` against
   ``skopeo sync --all`` on the same upstream namespace, each tool into its own
   fresh Distribution registry;
4. one big image — ``mirrorbot copy`` against ``skopeo copy --all`` of an image
   with a 1 GiB layer: wall time and peak RSS;
5. listing scale — ``mirrorbot plan --json`` against a generated gcr-style
   namespace of 2,000 repositories x 50 tags: wall, CPU and where it goes.

Everything runs on loopback; registries' storage is deleted after use. The
exit code is 0 when the bench completed, whatever the targets say
(``--strict``: 1 when a target fails).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from corpus import (
    FULL,
    QUICK,
    SEEDER_AGENT,
    Corpus,
    CorpusBuilder,
    MiB,
    Scale,
    push_big_image,
)
from measure import (
    ProcessRun,
    RegistryCpu,
    Traffic,
    agents,
    run_measured,
    tag_digest,
    traffic,
    write_bytecode,
)

import mirrorbot
from mirrorbot import __version__ as mirrorbot_version
from mirrorbot.demo.corpus import Image
from mirrorbot.demo.registry import LocalRegistry, stop_process
from mirrorbot.demo.run import demo_config
from mirrorbot.demo.seed import Seeder

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NAMESPACE = "bench"
MIRROR_NAMESPACE = "mirror"
MIRRORBOT_AGENTS = ("mirrorbot/",)
# skopeo sends "skopeo/<version>"; Go's default client agent is counted too, in case a
# request of skopeo's ever goes out without it.
SKOPEO_AGENTS = ("skopeo/", "Go-http-client/")
TOOLS = ("mirrorbot", "skopeo")
GiB = 1024 * MiB


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def quiesce(*registries: LocalRegistry) -> None:
    """Before a measured run: nothing left over from the previous one competes with it.

    Registries' logs stop growing, and dirty pages are written back: the kernel
    flushing the last run's hundreds of MB (or the 1 GiB seed) would otherwise
    land on whichever tool runs next.
    """
    settle(*registries)
    os.sync()


def prime(registry: LocalRegistry, blobs: dict[str, str]) -> None:
    """Read every blob (digest -> a repository holding it) once, before anything is measured.

    A registry's first read of freshly pushed data is slower (seen: +0.5 s for the
    1 GiB layer); whichever tool ran first would pay for it. Sent as the seeder, so
    never counted as either tool's traffic.
    """
    with httpx.Client(
        base_url=registry.url,
        timeout=httpx.Timeout(600.0),
        headers={"User-Agent": SEEDER_AGENT},
    ) as http:
        for digest, repository in blobs.items():
            with http.stream("GET", f"/v2/{repository}/blobs/{digest}") as response:
                response.raise_for_status()
                for _ in response.iter_raw(1024 * 1024):
                    pass


def settle(*registries: LocalRegistry) -> None:
    """Wait until the registries' logs stop growing: every answered request is logged."""
    for registry in registries:
        previous = -1
        for _ in range(50):
            mark = registry.log_mark()
            if mark == previous:
                break
            previous = mark
            time.sleep(0.05)


def git_init_bare(path: Path) -> None:
    subprocess.run(
        ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)], check=True
    )


def base_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "run").mkdir(exist_ok=True)
    (home / "run").chmod(0o700)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_RUNTIME_DIR": str(home / "run"),
        "LANG": "C.UTF-8",
    }


def mirrorbot_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mirrorbot", *args]


def mirrorbot_config(source: str, mirror: str, state_remote: Path, strategy: str) -> str:
    return demo_config(
        source,
        mirror,
        state_remote,
        mirror_namespace=MIRROR_NAMESPACE,
        strategy=strategy,
        generated_by="bench/run.py",
    )


def skopeo_yaml(upstream: LocalRegistry, repositories: list[str]) -> str:
    """skopeo cannot list a namespace: name every repository, all tags (``[]``)."""
    lines = [f'"{upstream.host}":', "  tls-verify: false", "  images:"]
    lines += [f"    {repository}: []" for repository in repositories]
    return "\n".join(lines) + "\n"


@dataclass
class ToolWorld:
    """One tool's side of the sync scenarios: its own target registry and home."""

    name: str
    agents: tuple[str, ...]
    target: LocalRegistry
    home: Path
    config: Path

    def command(self) -> list[str]:
        if self.name == "mirrorbot":
            # Pushing to the local bare repository, as the nightly job does. Not --no-push:
            # a clone-based state repo is reset to its remote's branch when opened, so an
            # unpushed commit is dropped by the next run, which then redoes its work.
            return mirrorbot_command("sync", "--config", str(self.config))
        return [
            "skopeo",
            "sync",
            "--all",
            "--preserve-digests",
            "--src",
            "yaml",
            "--dest",
            "docker",
            "--dest-tls-verify=false",
            str(self.config),
            f"{self.target.host}/{MIRROR_NAMESPACE}",
        ]


def run_figures(run: ProcessRun) -> dict[str, Any]:
    return {
        "exit_code": run.returncode,
        "wall_s": round(run.wall_s, 3),
        "cpu_s": round(run.cpu_s, 3),
        "peak_rss_mb": round(run.peak_rss_bytes / MiB, 1),
        "max_rss_mb": round(run.max_rss_bytes / MiB, 1),
    }


def cpu_figures(
    run: ProcessRun, to_target: Traffic, to_upstream: Traffic, registries: RegistryCpu
) -> dict[str, Any]:
    """Client CPU per request and per GiB moved, each registry's CPU, and the registry floor.

    The floor is the registries' CPU over every core: on this machine no client could
    finish in less wall time, however little CPU of its own it used.
    """
    requests = to_target.requests + to_upstream.requests
    moved = max(to_upstream.bytes_served, to_target.bytes_uploaded)
    return {
        "cpu_per_request_ms": round(run.cpu_s / requests * 1000, 3) if requests else None,
        "cpu_per_gib_s": round(run.cpu_s / (moved / GiB), 3) if moved >= MiB else None,
        "target_registry_cpu_s": registries.spent.get("target"),
        "upstream_registry_cpu_s": registries.spent.get("upstream"),
        "registry_floor_s": registries.floor_s(),
    }


def measure_sync(
    world: ToolWorld, upstream: LocalRegistry, scenario: str, workdir: Path
) -> dict[str, Any]:
    quiesce(upstream, world.target)
    up_mark, target_mark = upstream.log_mark(), world.target.log_mark()
    stored_before = world.target.storage_bytes()
    registries = RegistryCpu({"target": world.target.pid, "upstream": upstream.pid}).start()
    run = run_measured(
        world.command(),
        env=base_env(world.home),
        cwd=workdir,
        stdout_path=workdir / f"{world.name}-{scenario}.out",
    )
    settle(upstream, world.target)
    registries.stop()
    if run.returncode != 0:
        log(f"{world.name} {scenario}: exit {run.returncode}\n{run.stderr_tail}")
    to_target = traffic(world.target, target_mark, world.agents)
    to_upstream = traffic(upstream, up_mark, world.agents)
    others = {
        agent: count
        for agent, count in agents(world.target, target_mark).items()
        if not agent.startswith(world.agents)
    }
    figures = run_figures(run)
    figures.update(
        {
            "target": to_target.as_json(),
            "upstream": to_upstream.as_json(),
            "target_storage_growth": world.target.storage_bytes() - stored_before,
            "uploaded_digests": sorted(set(to_target.uploaded_digests)),
            "unattributed_target_requests": others,
            **cpu_figures(run, to_target, to_upstream, registries),
        }
    )
    log(
        f"{world.name:9} {scenario:11} {run.wall_s:7.2f}s  CPU {run.cpu_s:6.2f}s  "
        f"registries {registries.spent}  target {to_target.requests:5} req  "
        f"upstream {to_upstream.requests:5} req  uploaded {to_target.blob_bytes_uploaded / MiB:8.1f} MiB"
    )
    return figures


def ratio(a: float | int | None, b: float | int | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


# -- scenarios ---------------------------------------------------------------------


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time, carrying every run's wall time beside its own."""
    ordered = sorted(runs, key=lambda run: run["wall_s"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["wall_s_runs"] = [run["wall_s"] for run in runs]
    chosen["cpu_s_runs"] = [run["cpu_s"] for run in runs]
    chosen["registry_floor_s_runs"] = [run.get("registry_floor_s") for run in runs]
    return chosen


def paired_ratios(runs: dict[str, list[dict[str, Any]]]) -> list[float | None]:
    """mirrorbot / skopeo wall time per repetition: the two runs of a pair ran back to back."""
    return [
        ratio(mine["wall_s"], theirs["wall_s"])
        for mine, theirs in zip(runs["mirrorbot"], runs["skopeo"], strict=True)
    ]


def median(values: list[float | None]) -> float | None:
    present = sorted(value for value in values if value is not None)
    return present[(len(present) - 1) // 2] if present else None


def tool_order(repetition: int) -> tuple[str, ...]:
    """Alternate who goes first, so that a drift in machine load hits both tools alike."""
    return TOOLS if repetition % 2 == 0 else TOOLS[::-1]


def make_world(
    name: str, tag: str, root: Path, upstream: LocalRegistry, repositories: list[str]
) -> ToolWorld:
    """A fresh, empty target registry, home and config for one tool."""
    target = LocalRegistry(root / f"target-{name}-{tag}", name=f"{name}-{tag}").start()
    home = root / f"home-{name}-{tag}"
    config = root / f"{name}-{tag}.yaml"
    if name == "mirrorbot":
        remote = root / f"state-{tag}.git"
        git_init_bare(remote)
        config.write_text(
            mirrorbot_config(f"{upstream.host}/{NAMESPACE}", target.host, remote, "catalog")
        )
        return ToolWorld(name, MIRRORBOT_AGENTS, target, home, config)
    config.write_text(skopeo_yaml(upstream, repositories))
    return ToolWorld(name, SKOPEO_AGENTS, target, home, config)


def drop_world(world: ToolWorld) -> None:
    world.target.stop()
    shutil.rmtree(world.target.storage, ignore_errors=True)


def sync_scenarios(scale: Scale, root: Path, repeats: int) -> dict[str, Any]:
    """Cold, no-op and incremental sync for both tools on one shared upstream.

    Cold and no-op run ``repeats`` times, each time into fresh empty targets,
    the tools alternating who goes first; the median run by wall time is
    reported. The last repetition's targets then take the incremental sync.
    """
    builder = CorpusBuilder(scale, NAMESPACE)
    started = time.perf_counter()
    corpus = builder.corpus()
    log(
        f"corpus: {len(corpus.images)} repositories x {scale.tags} tags, "
        f"{corpus.unique_blob_bytes() / MiB:.1f} MiB of unique blobs, "
        f"{corpus.index_share():.0%} indexes ({time.perf_counter() - started:.1f}s to build)"
    )
    results: dict[str, Any] = {
        "corpus": {
            "repositories": len(corpus.images),
            "tags": corpus.tag_count,
            "unique_blobs": len(corpus.blob_sizes()),
            "unique_blob_bytes": corpus.unique_blob_bytes(),
            "manifest_bytes": sum(corpus.manifest_sizes().values()),
            "index_share": round(corpus.index_share(), 3),
        },
        "repeats": repeats,
    }
    repositories = sorted(corpus.images)
    with LocalRegistry(root / "upstream", name="upstream") as upstream:
        started = time.perf_counter()
        with Seeder(upstream.url) as seeder:
            seeder.push_all(corpus.images)
        results["corpus"]["seed_s"] = round(time.perf_counter() - started, 2)
        log(f"seeded upstream {upstream.host} in {results['corpus']['seed_s']}s")
        prime(upstream, corpus.blob_homes())

        runs: dict[str, dict[str, list[dict[str, Any]]]] = {
            scenario: {name: [] for name in TOOLS} for scenario in ("cold", "noop")
        }
        worlds: dict[str, ToolWorld] = {}
        try:
            for repetition in range(repeats):
                last = repetition == repeats - 1
                for name in tool_order(repetition):
                    world = make_world(name, str(repetition), root, upstream, repositories)
                    worlds[name] = world
                    for scenario in ("cold", "noop"):
                        runs[scenario][name].append(
                            measure_sync(world, upstream, f"{scenario}-{repetition}", root)
                        )
                    if not last:
                        drop_world(world)
            for scenario in ("cold", "noop"):
                results[scenario] = {name: median_run(runs[scenario][name]) for name in TOOLS}
                results[scenario]["paired_wall_ratios"] = paired_ratios(runs[scenario])

            changes = builder.incremental(corpus)
            with Seeder(upstream.url) as seeder:
                seeder.push_all(changes)
            changed_blobs = {
                blob.digest
                for tags in changes.values()
                for image in tags.values()
                for blob in image.blobs
            }
            novel: dict[str, int] = {}
            for repository, tags in changes.items():
                known = corpus.repository_blobs(repository)
                for image in tags.values():
                    for blob in image.blobs:
                        if blob.digest not in known:
                            novel[blob.digest] = blob.size
            results["incremental"] = {
                name: measure_sync(worlds[name], upstream, "incremental", root) for name in TOOLS
            }
            results["incremental"]["change"] = {
                "new_tags": sum(1 for tags in changes.values() for tag in tags if tag != "latest"),
                "retagged": sum(1 for tags in changes.values() for tag in tags if tag == "latest"),
                "novel_blobs": len(novel),
                "novel_blob_bytes": sum(novel.values()),
            }
            for name in TOOLS:
                figures = results["incremental"][name]
                uploaded = set(figures["uploaded_digests"])
                figures["uploaded_outside_changed_images"] = len(uploaded - changed_blobs)
                figures["novel_blobs_not_uploaded"] = len(set(novel) - uploaded)
            results["verified"] = verify_targets(corpus, changes, worlds)
        finally:
            for world in worlds.values():
                drop_world(world)
    shutil.rmtree(root / "upstream" / "storage", ignore_errors=True)
    return results


def verify_targets(
    corpus: Corpus, changes: dict[str, dict[str, Image]], worlds: dict[str, ToolWorld]
) -> dict[str, Any]:
    """Both targets must end with every tag at upstream's digest (read from storage, no requests)."""
    expected: dict[tuple[str, str], str] = {}
    for source in (corpus.images, changes):
        for repository, tags in source.items():
            for tag, image in tags.items():
                expected[(repository, tag)] = image.digest
    found: dict[str, Any] = {}
    for name, world in worlds.items():
        wrong = []
        for (repository, tag), digest in expected.items():
            target_repository = f"{MIRROR_NAMESPACE}/{repository.rsplit('/', 1)[-1]}"
            link = (
                world.target.storage
                / "docker/registry/v2/repositories"
                / target_repository
                / "_manifests/tags"
                / tag
                / "current/link"
            )
            try:
                actual = link.read_text().strip()
            except OSError:
                actual = None
            if actual != digest:
                wrong.append(f"{target_repository}:{tag}")
        found[name] = {"tags_checked": len(expected), "tags_wrong": len(wrong), "wrong": wrong[:10]}
    return found


def big_copy_command(name: str, source: str, destination: str) -> list[str]:
    if name == "mirrorbot":
        return mirrorbot_command("copy", source, destination)
    return [
        "skopeo",
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{source}",
        f"docker://{destination}:v1",
    ]


def big_copy(
    name: str, upstream: LocalRegistry, manifest_digest: str, root: Path, label: str
) -> dict[str, Any]:
    """One ``copy`` of the big image by one tool, into a fresh target; its figures."""
    source = f"{upstream.host}/big/image:v1"
    prefixes = MIRRORBOT_AGENTS if name == "mirrorbot" else SKOPEO_AGENTS
    with LocalRegistry(root / f"big-{name}-{label}", name=f"big-{name}") as target:
        quiesce(upstream, target)
        up_mark, target_mark = upstream.log_mark(), target.log_mark()
        registries = RegistryCpu({"target": target.pid, "upstream": upstream.pid}).start()
        run = run_measured(
            big_copy_command(name, source, f"{target.host}/{MIRROR_NAMESPACE}/image"),
            env=base_env(root / f"home-big-{name}-{label}"),
            cwd=root,
            stdout_path=root / f"big-{name}-{label}.out",
        )
        settle(upstream, target)
        registries.stop()
        if run.returncode != 0:
            log(f"{name} big copy {label}: exit {run.returncode}\n{run.stderr_tail}")
        figures = run_figures(run)
        to_target = traffic(target, target_mark, prefixes)
        to_upstream = traffic(upstream, up_mark, prefixes)
        figures["target"] = to_target.as_json()
        figures["upstream"] = to_upstream.as_json()
        figures.update(cpu_figures(run, to_target, to_upstream, registries))
        figures["copied"] = tag_digest(target, f"{MIRROR_NAMESPACE}/image", "v1") == manifest_digest
        log(
            f"{name:9} big copy {label:7} {run.wall_s:7.2f}s  "
            f"peak RSS {run.peak_rss_bytes / MiB:7.1f} MiB"
        )
    shutil.rmtree(target.storage, ignore_errors=True)
    return figures


def big_image_scenario(scale: Scale, root: Path, repeats: int) -> dict[str, Any]:
    """``copy`` of one image with a huge layer, into a fresh target per tool and repetition."""
    results: dict[str, Any] = {"repeats": repeats}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in TOOLS}
    with LocalRegistry(root / "big-upstream", name="big-upstream") as upstream:
        started = time.perf_counter()
        pushed = push_big_image(upstream.url, "big/image", "v1", scale.big_layer)
        results["layer_bytes"] = pushed["layer_bytes"]
        results["seed_s"] = round(time.perf_counter() - started, 2)
        log(
            f"big image: {pushed['layer_bytes'] / MiB:.0f} MiB layer pushed in {results['seed_s']}s"
        )
        digest = pushed["manifest_digest"]
        # One unmeasured copy per tool first (it also primes the upstream's read of the
        # layer): over several full runs the scenario's first copy was 1-2.5 s slower than
        # the rest, and the alternating order always put mirrorbot there.
        results["warmup_wall_s"] = {
            name: big_copy(name, upstream, digest, root, "warm-up")["wall_s"] for name in TOOLS
        }
        for repetition in range(repeats):
            for name in tool_order(repetition):
                runs[name].append(big_copy(name, upstream, digest, root, str(repetition)))
    shutil.rmtree(root / "big-upstream" / "storage", ignore_errors=True)
    results["paired_wall_ratios"] = paired_ratios(runs)
    for name in TOOLS:
        chosen = median_run(runs[name])
        chosen["peak_rss_mb_runs"] = [run["peak_rss_mb"] for run in runs[name]]
        chosen["peak_rss_mb_max"] = max(chosen["peak_rss_mb_runs"])
        results[name] = chosen
    return results


@contextlib.contextmanager
def gcr_front(scale: Scale, workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    log_path = workdir / "gcrfront.log"
    with log_path.open("wb") as errors:
        process = subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "gcrfront.py"),
                "--namespace",
                "big",
                "--repositories",
                str(scale.listing_repositories),
                "--tags",
                str(scale.listing_tags),
            ],
            stdout=subprocess.PIPE,
            stderr=errors,
            stdin=subprocess.DEVNULL,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise RuntimeError(f"gcr front did not start: {log_path.read_text()}")
        yield f"127.0.0.1:{int(line.split()[1])}", process
    finally:
        stop_process(process)


def front_stats(host: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"http://{host}/_bench/stats", timeout=10).json()
    return stats


def listing_scenario(scale: Scale, root: Path) -> dict[str, Any]:
    workdir = root / "listing"
    workdir.mkdir()
    results: dict[str, Any] = {
        "repositories": scale.listing_repositories,
        "tags": scale.listing_repositories * scale.listing_tags,
    }
    with gcr_front(scale, workdir) as (host, _):
        remote = workdir / "state.git"
        git_init_bare(remote)
        config = workdir / "mirrorbot.yaml"
        # The mirror is never contacted by a plan; the front would refuse writes anyway.
        config.write_text(mirrorbot_config(f"{host}/big", host, remote, "gcr"))
        env = base_env(workdir / "home")
        run = run_measured(
            mirrorbot_command("plan", "--json", "--config", str(config)),
            env=env,
            cwd=workdir,
            stdout_path=workdir / "plan.json",
        )
        stats = front_stats(host)
        if run.returncode != 0:
            log(f"mirrorbot plan: exit {run.returncode}\n{run.stderr_tail}")
        try:
            document = json.loads(run.stdout_path.read_text())
            items = sum(len(ns["items"]) for ns in document["namespaces"])
        except (ValueError, KeyError, TypeError):
            items = -1
        figures = run_figures(run)
        figures.update(
            {
                "items_planned": items,
                "cpu_share": round(run.cpu_s / run.wall_s, 3) if run.wall_s else None,
                "front_requests": stats["requests"],
                "max_in_flight": stats["max_in_flight"],
                # Less the bench's own stats request.
                "connections": stats["connections"] - 1,
                "max_open_connections": stats["max_open_connections"],
            }
        )
        results["plan_cli"] = figures
        log(
            f"mirrorbot plan --json: {items} items in {run.wall_s:.2f}s wall, {run.cpu_s:.2f}s CPU, "
            f"{sum(stats['requests'].values())} front requests, {stats['max_in_flight']} at once"
        )
        profile_out = workdir / "profile.json"
        profile = run_measured(
            [sys.executable, str(BENCH / "profile_plan.py"), str(config), str(profile_out)],
            env={**env, "PYTHONPATH": str(ROOT)},
            cwd=workdir,
            stdout_path=workdir / "profile.out",
        )
        if profile.returncode == 0:
            results["in_process"] = json.loads(profile_out.read_text())
        else:
            log(f"profile_plan: exit {profile.returncode}\n{profile.stderr_tail}")
            results["in_process"] = {"error": profile.stderr_tail[-1000:]}
    shutil.rmtree(workdir / "home", ignore_errors=True)
    return results


# -- figures, targets, table -------------------------------------------------------


CPU_FIGURES = (
    "cpu_per_request_ms",
    "cpu_per_gib_s",
    "target_registry_cpu_s",
    "upstream_registry_cpu_s",
    "registry_floor_s",
)


def flat_figures(results: dict[str, Any]) -> dict[str, float | int | None]:
    figures: dict[str, float | int | None] = {}
    corpus = results["sync"]["corpus"]
    figures["corpus.unique_blob_bytes"] = corpus["unique_blob_bytes"]
    figures["corpus.tags"] = corpus["tags"]
    for scenario in ("cold", "noop", "incremental"):
        for tool in TOOLS:
            f = results["sync"][scenario][tool]
            prefix = f"{scenario}.{tool}"
            figures[f"{prefix}.wall_s"] = f["wall_s"]
            figures[f"{prefix}.cpu_s"] = f["cpu_s"]
            figures[f"{prefix}.exit_code"] = f["exit_code"]
            figures[f"{prefix}.target_requests"] = f["target"]["requests"]
            figures[f"{prefix}.upstream_requests"] = f["upstream"]["requests"]
            figures[f"{prefix}.bytes_uploaded"] = f["target"]["bytes_uploaded"]
            figures[f"{prefix}.blob_bytes_uploaded"] = f["target"]["blob_bytes_uploaded"]
            figures[f"{prefix}.blobs_uploaded"] = f["target"]["blobs_uploaded"]
            figures[f"{prefix}.blobs_mounted"] = f["target"]["blobs_mounted"]
            figures[f"{prefix}.target_storage_growth"] = f["target_storage_growth"]
            figures[f"{prefix}.upstream_bytes_read"] = f["upstream"]["bytes_served"]
            for key in CPU_FIGURES:
                figures[f"{prefix}.{key}"] = f[key]
        for key in ("wall_s", "cpu_s", "target_requests", "upstream_requests", "bytes_uploaded"):
            figures[f"{scenario}.ratio.{key}"] = ratio(
                figures[f"{scenario}.mirrorbot.{key}"], figures[f"{scenario}.skopeo.{key}"]
            )
        if scenario != "incremental":
            figures[f"{scenario}.ratio.wall_s_paired_median"] = median(
                results["sync"][scenario]["paired_wall_ratios"]
            )
    change = results["sync"]["incremental"]["change"]
    figures["incremental.change.novel_blobs"] = change["novel_blobs"]
    for tool in TOOLS:
        f = results["sync"]["incremental"][tool]
        figures[f"incremental.{tool}.uploaded_outside_changed_images"] = f[
            "uploaded_outside_changed_images"
        ]
        figures[f"incremental.{tool}.novel_blobs_not_uploaded"] = f["novel_blobs_not_uploaded"]
    for tool in TOOLS:
        big = results["big_image"][tool]
        figures[f"big.{tool}.wall_s"] = big["wall_s"]
        figures[f"big.{tool}.peak_rss_mb"] = big["peak_rss_mb"]
        figures[f"big.{tool}.peak_rss_mb_max"] = big["peak_rss_mb_max"]
        figures[f"big.{tool}.max_rss_mb"] = big["max_rss_mb"]
        figures[f"big.{tool}.exit_code"] = big["exit_code"]
        figures[f"big.{tool}.cpu_s"] = big["cpu_s"]
        for key in CPU_FIGURES:
            figures[f"big.{tool}.{key}"] = big[key]
    figures["big.ratio.wall_s"] = ratio(
        figures["big.mirrorbot.wall_s"], figures["big.skopeo.wall_s"]
    )
    figures["big.ratio.cpu_s"] = ratio(figures["big.mirrorbot.cpu_s"], figures["big.skopeo.cpu_s"])
    figures["big.ratio.wall_s_paired_median"] = median(results["big_image"]["paired_wall_ratios"])
    figures["big.ratio.peak_rss"] = ratio(
        figures["big.mirrorbot.peak_rss_mb"], figures["big.skopeo.peak_rss_mb"]
    )
    listing = results["listing"]
    cli = listing["plan_cli"]
    figures["listing.tags"] = listing["tags"]
    figures["listing.items_planned"] = cli["items_planned"]
    figures["listing.plan_wall_s"] = cli["wall_s"]
    figures["listing.plan_cpu_s"] = cli["cpu_s"]
    figures["listing.cpu_share"] = cli["cpu_share"]
    figures["listing.max_in_flight"] = cli["max_in_flight"]
    figures["listing.connections"] = cli["connections"]
    figures["listing.max_open_connections"] = cli["max_open_connections"]
    figures["listing.front_requests"] = sum(cli["front_requests"].values())
    stages = listing.get("in_process", {}).get("timed", {}).get("stages", {})
    for stage, key in (
        ("listing", "listing"),
        ("planning", "planner"),
        ("render --json", "render"),
        ("asyncio.run teardown", "teardown"),
    ):
        figures[f"listing.{key}_wall_s"] = (
            round(stages[stage]["wall_s"], 3) if stage in stages else None
        )
        figures[f"listing.{key}_cpu_s"] = (
            round(stages[stage]["cpu_s"], 3) if stage in stages else None
        )
    return figures


def check_targets(results: dict[str, Any], figures: dict[str, Any]) -> list[dict[str, Any]]:
    sync = results["sync"]
    unique = sync["corpus"]["unique_blob_bytes"]
    cold_bytes = figures["cold.mirrorbot.blob_bytes_uploaded"]
    incremental = sync["incremental"]["mirrorbot"]
    big_layer = f"{results['big_image']['layer_bytes'] / MiB:.0f} MiB"
    targets: list[dict[str, Any]] = []

    def target(figure: str, wanted: str, value: Any, passed: bool) -> None:
        targets.append({"figure": figure, "target": wanted, "value": value, "pass": bool(passed)})

    def at_most(value: float | None, limit: float) -> bool:
        return value is not None and value <= limit

    all_ok = all(
        figures[f"{s}.{t}.exit_code"] == 0 for s in ("cold", "noop", "incremental") for t in TOOLS
    ) and all(sync["verified"][t]["tags_wrong"] == 0 for t in TOOLS)
    target("every run exited 0 and both mirrors match upstream", "yes", all_ok, all_ok)
    value = figures["cold.ratio.wall_s"]
    target("cold sync wall time, mirrorbot / skopeo", "<= 0.5", value, at_most(value, 0.5))
    value = ratio(cold_bytes, unique)
    target(
        "cold: blob bytes uploaded to the target / unique blob bytes",
        "<= 1.0",
        value,
        at_most(value, 1.0),
    )
    value = figures["cold.ratio.cpu_s"]
    target(
        "cold sync client CPU, mirrorbot / skopeo (issue 16)", "<= 0.5", value, at_most(value, 0.5)
    )
    value = figures["cold.ratio.target_requests"]
    target("cold: requests to the target, mirrorbot / skopeo", "<= 0.7", value, at_most(value, 0.7))
    value = figures["noop.mirrorbot.target_requests"]
    target("no-op: requests to the target (mirrorbot)", "0", value, value == 0)
    value = figures["noop.ratio.wall_s"]
    target("no-op sync wall time, mirrorbot / skopeo", "<= 0.1", value, at_most(value, 0.1))
    outside = incremental["uploaded_outside_changed_images"]
    duplicates = incremental["target"]["blobs_uploaded"] - len(incremental["uploaded_digests"])
    value = (
        f"{incremental['target']['blobs_uploaded']} uploaded, {outside} outside the changed images, "
        f"{duplicates} twice"
    )
    target(
        "incremental: blobs uploaded",
        "only those of the new/changed images",
        value,
        outside == 0 and duplicates == 0,
    )
    value = figures["big.mirrorbot.peak_rss_mb_max"]
    target(
        f"{big_layer} layer: peak RSS of mirrorbot copy, worst run (MiB)",
        "<= 150",
        value,
        at_most(value, 150),
    )
    value = figures["big.ratio.wall_s"]
    target(
        f"{big_layer} layer: wall time, mirrorbot / skopeo copy",
        "<= 1.0",
        value,
        at_most(value, 1.0),
    )
    # httpx opens another connection only when every open one is busy: more than one open at
    # once means requests were outstanding together. (Requests in flight *at the front* stay
    # low when the client is CPU-bound: it cannot issue them faster than the front answers.)
    concurrent = figures["listing.max_open_connections"]
    planned = figures["listing.items_planned"] == figures["listing.tags"]
    target(
        "listing scale: every tag planned; listing concurrent (connections open at once)",
        "all planned, > 1",
        f"{figures['listing.items_planned']} planned, {concurrent} at once",
        planned and concurrent is not None and concurrent > 1,
    )
    value = figures["listing.planner_cpu_s"]
    target("listing scale: planner CPU time (s)", "< 1", value, value is not None and value < 1)
    return targets


def human_bytes(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{value / MiB:.1f} MiB"


def cpu_rows(row: Any, m: dict[str, Any], s: dict[str, Any]) -> None:
    """The client's CPU against skopeo's, and the registries' CPU beside the wall time."""
    row(
        "",
        "registry floor (s): registries' CPU / cores",
        m["registry_floor_s"],
        s["registry_floor_s"],
    )
    row("", "client CPU time (s)", m["cpu_s"], s["cpu_s"], ratio(m["cpu_s"], s["cpu_s"]))
    row(
        "",
        "client CPU per request (ms)",
        m["cpu_per_request_ms"],
        s["cpu_per_request_ms"],
        ratio(m["cpu_per_request_ms"], s["cpu_per_request_ms"]),
    )
    row(
        "",
        "client CPU per GiB moved (s)",
        m["cpu_per_gib_s"],
        s["cpu_per_gib_s"],
        ratio(m["cpu_per_gib_s"], s["cpu_per_gib_s"]),
    )
    row("", "target registry CPU (s)", m["target_registry_cpu_s"], s["target_registry_cpu_s"])
    row("", "upstream registry CPU (s)", m["upstream_registry_cpu_s"], s["upstream_registry_cpu_s"])


def render_table(
    results: dict[str, Any], figures: dict[str, Any], targets: list[dict[str, Any]]
) -> str:
    rows: list[tuple[str, str, str, str, str]] = []

    def row(scenario: str, label: str, a: Any, b: Any, r: Any = "") -> None:
        rows.append((scenario, label, str(a), str(b), "" if r is None else str(r)))

    for scenario, title in (
        ("cold", "cold sync"),
        ("noop", "no-op sync"),
        ("incremental", "incremental"),
    ):
        m = results["sync"][scenario]["mirrorbot"]
        s = results["sync"][scenario]["skopeo"]
        row(title, "wall time (s)", m["wall_s"], s["wall_s"], ratio(m["wall_s"], s["wall_s"]))
        if scenario != "incremental":
            pairs = results["sync"][scenario]["paired_wall_ratios"]
            row(
                "",
                "wall time, every run (s)",
                " ".join(f"{x:.2f}" for x in m["wall_s_runs"]),
                " ".join(f"{x:.2f}" for x in s["wall_s_runs"]),
                "pairs " + " ".join(str(x) for x in pairs),
            )
        cpu_rows(row, m, s)
        row(
            "",
            "requests to target",
            m["target"]["requests"],
            s["target"]["requests"],
            ratio(m["target"]["requests"], s["target"]["requests"]),
        )
        row(
            "",
            "requests to upstream",
            m["upstream"]["requests"],
            s["upstream"]["requests"],
            ratio(m["upstream"]["requests"], s["upstream"]["requests"]),
        )
        row(
            "",
            "bytes uploaded (log)",
            human_bytes(m["target"]["bytes_uploaded"]),
            human_bytes(s["target"]["bytes_uploaded"]),
            ratio(m["target"]["bytes_uploaded"], s["target"]["bytes_uploaded"]),
        )
        row(
            "",
            "target storage growth",
            human_bytes(m["target_storage_growth"]),
            human_bytes(s["target_storage_growth"]),
        )
        row(
            "",
            "bytes read from upstream",
            human_bytes(m["upstream"]["bytes_served"]),
            human_bytes(s["upstream"]["bytes_served"]),
        )
        row(
            "",
            "blobs uploaded / mounted",
            f"{m['target']['blobs_uploaded']} / {m['target']['blobs_mounted']}",
            f"{s['target']['blobs_uploaded']} / {s['target']['blobs_mounted']}",
        )
    big = results["big_image"]
    row(
        f"big image ({big['layer_bytes'] / MiB:.0f} MiB)",
        "wall time (s)",
        big["mirrorbot"]["wall_s"],
        big["skopeo"]["wall_s"],
        figures["big.ratio.wall_s"],
    )
    row(
        "",
        "wall time, every run (s)",
        " ".join(f"{x:.2f}" for x in big["mirrorbot"]["wall_s_runs"]),
        " ".join(f"{x:.2f}" for x in big["skopeo"]["wall_s_runs"]),
        "pairs " + " ".join(str(x) for x in big["paired_wall_ratios"]),
    )
    row(
        "",
        "peak RSS, process tree (MiB)",
        big["mirrorbot"]["peak_rss_mb"],
        big["skopeo"]["peak_rss_mb"],
        figures["big.ratio.peak_rss"],
    )
    row(
        "",
        "peak RSS, worst run (MiB)",
        big["mirrorbot"]["peak_rss_mb_max"],
        big["skopeo"]["peak_rss_mb_max"],
    )
    row(
        "", "ru_maxrss, GNU time (MiB)", big["mirrorbot"]["max_rss_mb"], big["skopeo"]["max_rss_mb"]
    )
    cpu_rows(row, big["mirrorbot"], big["skopeo"])
    listing = results["listing"]
    row(
        f"listing ({listing['repositories']} repos x {listing['tags'] // max(listing['repositories'], 1)} tags)",
        "plan --json wall (s)",
        figures["listing.plan_wall_s"],
        "-",
    )
    row(
        "",
        "plan --json CPU (s) / share of wall",
        f"{figures['listing.plan_cpu_s']} / {figures['listing.cpu_share']}",
        "-",
    )
    row(
        "",
        "stage listing wall / CPU (s)",
        f"{figures['listing.listing_wall_s']} / {figures['listing.listing_cpu_s']}",
        "-",
    )
    row(
        "",
        "stage planning wall / CPU (s)",
        f"{figures['listing.planner_wall_s']} / {figures['listing.planner_cpu_s']}",
        "-",
    )
    row(
        "",
        "stage render --json wall / CPU (s)",
        f"{figures['listing.render_wall_s']} / {figures['listing.render_cpu_s']}",
        "-",
    )
    row(
        "",
        "asyncio.run teardown wall / CPU (s)",
        f"{figures['listing.teardown_wall_s']} / {figures['listing.teardown_cpu_s']}",
        "-",
    )
    row(
        "",
        "front requests / most at once",
        f"{figures['listing.front_requests']} / {figures['listing.max_in_flight']}",
        "-",
    )
    row(
        "",
        "connections / most open at once",
        f"{figures['listing.connections']} / {figures['listing.max_open_connections']}",
        "-",
    )

    header = ("scenario", "figure", "mirrorbot", "skopeo", "mb/skopeo")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(r)
        )
        for r in [header, *rows]
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("")
    lines.extend(render_breakdown(results))
    lines.append("")
    lines.append("targets (issue 5):")
    for t in targets:
        lines.append(
            f"  {'PASS' if t['pass'] else 'FAIL'}  {t['figure']}: {t['value']} (target {t['target']})"
        )
    return "\n".join(lines)


def render_breakdown(results: dict[str, Any]) -> list[str]:
    """Cold sync: requests to each registry by method and by endpoint, tool against tool."""
    cold = results["sync"]["cold"]
    lines: list[str] = []
    for registry in ("target", "upstream"):
        for key, title in (("by_method", "method"), ("by_kind", "endpoint")):
            found = {tool: cold[tool][registry][key] for tool in TOOLS}
            names = sorted(set(found["mirrorbot"]) | set(found["skopeo"]))
            width = max([len(name) for name in names] + [24])
            lines.append(f"cold sync, requests to the {registry} by {title}:")
            lines.append(f"  {'':{width}}  {'mirrorbot':>9}  {'skopeo':>9}")
            for name in names:
                lines.append(
                    f"  {name:{width}}  {found['mirrorbot'].get(name, 0):>9}  "
                    f"{found['skopeo'].get(name, 0):>9}"
                )
    return lines


def versions() -> dict[str, str]:
    def first_line(command: list[str]) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
        except OSError as exc:
            return f"unavailable: {exc}"
        return (
            (done.stdout or done.stderr).strip().splitlines()[0]
            if (done.stdout or done.stderr)
            else ""
        )

    return {
        "mirrorbot": mirrorbot_version,
        "skopeo": first_line(["skopeo", "--version"]),
        "docker-registry": first_line(["docker-registry", "--version"]),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="mirrorbot vs skopeo on loopback registries.")
    parser.add_argument("--quick", action="store_true", help="a few MB instead of a few hundred")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "latest.json")
    parser.add_argument(
        "--workdir", type=Path, help="keep scratch files here (default: a temp dir)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument(
        "--repeat",
        type=int,
        help="runs per tool of cold/no-op sync and big copy; the median is reported "
        "(default 3, with --quick 1)",
    )
    parser.add_argument("--repositories", type=int, help="repositories in the corpus")
    parser.add_argument(
        "--tags", type=int, help="tags per repository, latest included (at least 2)"
    )
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    if args.repositories is not None:
        scale = dataclasses.replace(scale, repositories=max(3, args.repositories))
    if args.tags is not None:
        scale = dataclasses.replace(scale, tags=max(2, args.tags))
    repeats = max(1, args.repeat or (1 if args.quick else 3))
    write_bytecode(Path(mirrorbot.__file__).parent)  # as installed: no compiling in a run
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mirrorbot-bench-") as scratch:
        root = args.workdir or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        results: dict[str, Any] = {}
        results["sync"] = sync_scenarios(scale, root, repeats)
        results["big_image"] = big_image_scenario(scale, root, repeats)
        results["listing"] = listing_scenario(scale, root)
    figures = flat_figures(results)
    targets = check_targets(results, figures)
    document = {
        "meta": {
            "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "quick": args.quick,
            "scale": dataclasses.asdict(scale),
            "repeats": repeats,
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                # Other work on a shared machine shows here: read ratios with it in mind.
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
            },
            "versions": versions(),
            "duration_s": round(time.perf_counter() - started, 1),
        },
        "figures": figures,
        "targets": targets,
        "results": results,
    }
    table = render_table(results, figures, targets)
    print(table)
    print(f"\nbench took {document['meta']['duration_s']}s; results in {args.out}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    if args.strict and not all(t["pass"] for t in targets):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
