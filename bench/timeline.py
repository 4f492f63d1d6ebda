"""Where a run's time goes: the client's and each registry's CPU, window by window.

    .venv/bin/python bench/timeline.py [--scenario cold|big] [--tool mirrorbot|skopeo]
                                       [--tree DIR] [--runs 1] [--window 0.25]

A ratio says how two tools compare; a timeline says what bounds one of them.
Every ``--window`` seconds it prints the CPU the client (with its children, such
as git), the target registry and the upstream registry spent per second of wall
time, and their total against the machine's cores. A total near the core count
means the run is CPU-bound on this machine. A registry near 1.0 means it is
working on a single stream as fast as it can (the 1 GiB copy). A low total
means the run is waiting on something else.

``--scenario cold`` runs a cold ``sync`` of the 16 x 7 corpus into a fresh target.
``--scenario big`` runs a ``copy`` of the 1 GiB image, and also prints the MiB per
second landing in the target's upload file and when its first and last bytes
arrived. ``--tree DIR`` puts a copy of the code first on ``PYTHONPATH``, as
``ab.py`` does. Sampling reads ``/proc`` 20 times a second, so nothing here is
measured under a profiler.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpus import FULL, CorpusBuilder, MiB, push_big_image
from run import (
    MIRROR_NAMESPACE,
    NAMESPACE,
    base_env,
    big_copy_command,
    drop_world,
    log,
    make_world,
    prime,
    quiesce,
    settle,
)

from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder

TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.05


def cpu_s(pid: int) -> float:
    """CPU seconds of a process and its waited-for children (git, for the client)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return sum(int(value) for value in fields[11:15]) / TICKS


def upload_bytes(storage: Path) -> int:
    """The largest upload in progress in a registry's storage (the big layer's)."""
    sizes = [0]
    for data in storage.glob("docker/registry/v2/repositories/*/*/_uploads/*/data"):
        try:
            sizes.append(data.stat().st_size)
        except OSError:
            continue
    return max(sizes)


def sample(
    command: list[str],
    env: dict[str, str],
    cwd: Path,
    target: LocalRegistry,
    upstream: LocalRegistry,
    window: float,
    watch_upload: bool,
) -> None:
    """Run ``command`` and print its timeline."""
    started = time.perf_counter()
    target_0, upstream_0 = cpu_s(target.pid), cpu_s(upstream.pid)
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    rows: list[tuple[float, float, float, float, int]] = []
    client = 0.0
    while process.poll() is None:
        client = max(client, cpu_s(process.pid))  # 0 once the process is gone
        rows.append(
            (
                time.perf_counter() - started,
                client,
                cpu_s(target.pid) - target_0,
                cpu_s(upstream.pid) - upstream_0,
                upload_bytes(target.storage) if watch_upload else 0,
            )
        )
        time.sleep(SAMPLE_S)
    wall = time.perf_counter() - started
    settle(upstream, target)
    print(
        f"exit {process.returncode}, wall {wall:.2f} s; CPU (s): client ≥ {client:.2f}, "
        f"target {cpu_s(target.pid) - target_0:.2f}, upstream {cpu_s(upstream.pid) - upstream_0:.2f}"
    )
    if watch_upload:
        first = next((row[0] for row in rows if row[4] > 0), None)
        last = next((row[0] for row in rows if row[4] == rows[-1][4] and row[4] > 0), None)

        def at(moment: float | None) -> str:
            return "never" if moment is None else f"{moment:.2f} s"

        print(f"first byte in the target at {at(first)}, all bytes at {at(last)}")
    print("    t (s)  client  target  upstream  total" + ("  MiB/s" if watch_upload else ""))
    previous = (0.0, 0.0, 0.0, 0.0, 0)
    for row in rows:
        span = row[0] - previous[0]
        if span < window:
            continue
        rates = [(row[i] - previous[i]) / span for i in (1, 2, 3)]
        line = (
            f"{row[0]:9.2f}  {rates[0]:6.2f}  {rates[1]:6.2f}  {rates[2]:8.2f}  {sum(rates):5.2f}"
        )
        if watch_upload:
            line += f"  {(row[4] - previous[4]) / MiB / span:5.0f}"
        print(line)
        previous = row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("cold", "big"), default="cold")
    parser.add_argument("--tool", choices=("mirrorbot", "skopeo"), default="mirrorbot")
    parser.add_argument("--tree", type=Path, help="a directory holding a mirrorbot package")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--window", type=float, default=0.25, help="seconds per printed line")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mirrorbot-timeline-") as scratch:
        root = Path(scratch)
        with LocalRegistry(root / "upstream", name="upstream") as upstream:
            if args.scenario == "cold":
                corpus = CorpusBuilder(
                    dataclasses.replace(FULL, repositories=16, tags=7), NAMESPACE
                ).corpus()
                with Seeder(upstream.url) as seeder:
                    seeder.push_all(corpus.images)
                prime(upstream, corpus.blob_homes())
            else:
                push_big_image(upstream.url, "big/image", "v1", FULL.big_layer)
            for run in range(args.runs):
                log(f"{args.tool} {args.scenario} run {run + 1}")
                if args.scenario == "cold":
                    world = make_world(args.tool, f"t{run}", root, upstream, sorted(corpus.images))
                    target, command, home = world.target, world.command(), world.home
                else:
                    target = LocalRegistry(root / f"big-{run}", name=f"big-{run}").start()
                    destination = f"{target.host}/{MIRROR_NAMESPACE}/image"
                    command = big_copy_command(
                        args.tool, f"{upstream.host}/big/image:v1", destination
                    )
                    home = root / f"home-{run}"
                env = base_env(home)
                if args.tree is not None:
                    env["PYTHONPATH"] = str(args.tree.resolve())
                quiesce(upstream, target)
                try:
                    sample(
                        command, env, root, target, upstream, args.window, args.scenario == "big"
                    )
                finally:
                    if args.scenario == "cold":
                        drop_world(world)
                    else:
                        target.stop()
                        shutil.rmtree(target.storage, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
