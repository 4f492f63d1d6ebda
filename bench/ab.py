"""Interleaved A/B of mirrorbot's cold sync: which of two code trees spends less client CPU.

    .venv/bin/python bench/ab.py --variant A=/tmp/tree-a --variant B=/tmp/tree-b \\
                                 [--pairs 3] [--repositories 16] [--tags 7] [--profile DIR]

Each variant is a directory holding a ``mirrorbot`` package (a copy of the tree to
test, e.g. ``git archive HEAD mirrorbot | tar -x -C /tmp/tree-a``); it is put first
on ``PYTHONPATH`` of ``python -m mirrorbot sync``. One upstream is seeded and
primed once; every run then syncs into its own fresh, empty target registry and
state repository, the variants alternating who goes first in each round. The
machine is shared: compare CPU seconds (user + system, from ``wait4``), not wall.
``--profile DIR`` runs each variant once more under cProfile and writes
``DIR/<variant>.prof``; with ``--py-spy BIN`` sampled by py-spy instead (not a
dependency: ``pip install --target /tmp/pyspy py-spy``), ``DIR/<variant>.txt``
in collapsed-stack form. ``--callgrind`` runs every sync under valgrind's
callgrind and reports the instructions mirrorbot's process executed (git's
children not included): repeatable to well under 1 % whatever else the machine
does, where CPU seconds wobble by ±15 % — the figure to decide a small change by
(each run takes ~50 times as long); with ``--profile DIR`` its per-function
counts go to ``DIR/<variant>.callgrind`` (``callgrind_annotate``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from corpus import FULL, CorpusBuilder
from measure import RegistryCpu, run_measured, traffic, write_bytecode
from run import (
    MIRRORBOT_AGENTS,
    NAMESPACE,
    base_env,
    drop_world,
    log,
    make_world,
    prime,
    quiesce,
    settle,
)

from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder


def cold_sync(
    name: str,
    tree: Path,
    tag: str,
    root: Path,
    upstream: LocalRegistry,
    repositories: list[str],
    profile: Path | None = None,
    py_spy: str | None = None,
    callgrind: bool = False,
) -> dict[str, Any]:
    world = make_world("mirrorbot", tag, root, upstream, repositories)
    try:
        quiesce(upstream, world.target)
        up_mark, target_mark = upstream.log_mark(), world.target.log_mark()
        registries = RegistryCpu({"target": world.target.pid, "upstream": upstream.pid}).start()
        command = [sys.executable]
        if callgrind:
            out = str(profile.with_suffix(".callgrind")) if profile is not None else "/dev/null"
            command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command]
        if profile is not None and py_spy is not None:
            # Sampled, not traced: cProfile inflates small Python functions several times over.
            sampler = [py_spy, "record", "--format", "raw", "--rate", "250", "--subprocesses"]
            command = [*sampler, "--output", str(profile), "--", sys.executable]
        elif profile is not None and not callgrind:
            command += ["-m", "cProfile", "-o", str(profile)]
        command += ["-m", "mirrorbot", "sync", "--config", str(world.config)]
        env = base_env(world.home) | {"PYTHONPATH": str(tree)}
        run = run_measured(command, env=env, cwd=root, stdout_path=root / f"{tag}.out")
        settle(upstream, world.target)
        registries.stop()
        if run.returncode != 0:
            raise SystemExit(f"{name}: exit {run.returncode}\n{run.stderr_tail}")
        requests = (
            traffic(world.target, target_mark, MIRRORBOT_AGENTS).requests
            + traffic(upstream, up_mark, MIRRORBOT_AGENTS).requests
        )
        figures = {
            "variant": name,
            "cpu_s": round(run.cpu_s, 3),
            "user_s": round(run.user_s, 3),
            "system_s": round(run.system_s, 3),
            "wall_s": round(run.wall_s, 3),
            "requests": requests,
            "registries_cpu_s": registries.spent,
        }
        if callgrind:
            stderr = (root / f"{tag}.stderr").read_text(errors="replace")
            collected = re.search(r"Collected : (\d+)", stderr)
            figures["instructions"] = int(collected.group(1)) if collected else None
        log(
            f"{name}: CPU {run.cpu_s:.2f}s (user {run.user_s:.2f}s, system {run.system_s:.2f}s) "
            f"wall {run.wall_s:.2f}s {requests} requests"
            + (f" {figures['instructions']:,} instructions" if callgrind else "")
        )
        return figures
    finally:
        drop_world(world)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", required=True, help="NAME=DIR")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--repositories", type=int, default=16)
    parser.add_argument("--tags", type=int, default=7)
    parser.add_argument("--profile", type=Path, help="also one cProfile run per variant here")
    parser.add_argument(
        "--py-spy",
        metavar="BIN",
        help="profile with this py-spy binary (collapsed stacks, DIR/<variant>.txt) instead",
    )
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="run each sync under valgrind's callgrind and report instructions executed",
    )
    parser.add_argument("--out", type=Path, help="the runs as JSON")
    args = parser.parse_args(argv)
    variants = [
        (name, Path(tree).resolve()) for name, tree in (spec.split("=", 1) for spec in args.variant)
    ]
    for _, tree in variants:
        write_bytecode(tree / "mirrorbot")  # as installed: no compiling in a measured run
    scale = dataclasses.replace(FULL, repositories=args.repositories, tags=args.tags)
    corpus = CorpusBuilder(scale, NAMESPACE).corpus()
    repositories = sorted(corpus.images)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mirrorbot-ab-") as scratch:
        root = Path(scratch)
        with LocalRegistry(root / "upstream", name="upstream") as upstream:
            with Seeder(upstream.url) as seeder:
                seeder.push_all(corpus.images)
            prime(upstream, corpus.blob_homes())
            for round_ in range(args.pairs):
                order = variants if round_ % 2 == 0 else variants[::-1]
                for name, tree in order:
                    runs.append(
                        cold_sync(
                            name,
                            tree,
                            f"{name}-{round_}",
                            root,
                            upstream,
                            repositories,
                            callgrind=args.callgrind,
                        )
                    )
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                for name, tree in variants:
                    cold_sync(
                        name,
                        tree,
                        f"{name}-profile",
                        root,
                        upstream,
                        repositories,
                        profile=(
                            args.profile / f"{name}.{'txt' if args.py_spy else 'prof'}"
                        ).resolve(),
                        py_spy=args.py_spy,
                        callgrind=args.callgrind,
                    )
    for name, _ in variants:
        mine = [run for run in runs if run["variant"] == name]
        if not mine:
            continue
        cpu = [run["cpu_s"] for run in mine]
        user = statistics.median(run["user_s"] for run in mine)
        system = statistics.median(run["system_s"] for run in mine)
        print(
            f"{name}: CPU median {statistics.median(cpu):.2f}s "
            f"(user {user:.2f}s, system {system:.2f}s), runs {cpu}"
        )
        counted = [run["instructions"] for run in mine if run.get("instructions")]
        if counted:
            print(f"{name}: instructions median {statistics.median(counted):,.0f}, runs {counted}")
    if args.out is not None:
        args.out.write_text(json.dumps(runs, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
