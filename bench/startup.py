"""Start-up cost (issue 16): ``mirrorbot --version`` and a no-op ``sync``, in CPU seconds.

A no-op sync's floor is not mirrorbot's logic but what every run pays before and
around it: the interpreter, imports, typer's parsing, the state clone. This script
separates those from the requests and git calls the run must make:

- ``--version``: wall and CPU of the console entry point (median of N runs);
- no-op ``sync`` against two local Distribution registries (the demo's sample
  namespace, state in a bare repository), after one cold run: wall, the process's
  own CPU (``RUSAGE_SELF``, so git's CPU is not in it), git's CPU
  (``RUSAGE_CHILDREN``) and ours around each git call (spawning it, reading its
  output), the CPU spent while at least one request was in flight, and what is
  left: "CPU beyond requests and git" (the issue's ≤ 0.3 s target).

    .venv/bin/python bench/startup.py [--runs N] [--profile FILE] [--importtime FILE]

``--profile FILE`` writes a cProfile of one more no-op run (open with ``python -m pstats``),
``--importtime FILE`` the ``-X importtime`` lines of one more.

mirrorbot's bytecode caches are written first, as an installed package has them (pip
compiles at install): in a source tree with ``PYTHONDONTWRITEBYTECODE=1`` and no
``__pycache__``, every run would compile mirrorbot's ~100 modules again (≈ +0.1 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import write_bytecode

import mirrorbot
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.run import demo_config, push_sample

NAMESPACE = "google-containers"

# Runs mirrorbot in this interpreter and writes its own CPU figures at exit. Request
# CPU is the process time while one request or more is in flight (the union of the
# intervals, so concurrent requests are not counted twice); it is an upper bound.
_WRAPPER = """
import atexit, json, os, resource, sys, time
from mirrorbot.__main__ import run  # first: what the entry point refuses to import stays out
from mirrorbot.collector import collector_paused
with collector_paused(freeze=True):  # as a command's `with loading():` imports them
    import git.cmd
    import httpx

_inflight = 0
_started = 0.0
_request_cpu = 0.0
_requests = 0
_send = httpx.AsyncClient.send

async def _counted(self, *args, **kwargs):
    global _inflight, _started, _request_cpu, _requests
    if _inflight == 0:
        _started = time.process_time()
    _inflight += 1
    _requests += 1
    try:
        return await _send(self, *args, **kwargs)
    finally:
        _inflight -= 1
        if _inflight == 0:
            _request_cpu += time.process_time() - _started

httpx.AsyncClient.send = _counted

_git_calls = 0
_git_side = 0.0
_execute = git.cmd.Git.execute

def _timed(self, *args, **kwargs):
    global _git_calls, _git_side
    _git_calls += 1
    started = time.process_time()
    try:
        return _execute(self, *args, **kwargs)
    finally:
        _git_side += time.process_time() - started

git.cmd.Git.execute = _timed

def _report():
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.environ["STARTUP_REPORT"], "w") as handle:
        json.dump({
            "cpu": own.ru_utime + own.ru_stime,
            "git_cpu": children.ru_utime + children.ru_stime,
            "request_cpu": _request_cpu,
            "requests": _requests,
            "git_calls": _git_calls,
            "git_side_cpu": _git_side,
            "modules": len(sys.modules),
        }, handle)

atexit.register(_report)
sys.argv = ["mirrorbot", *sys.argv[1:]]
run()
"""


def _entry_point() -> str:
    script = Path(sys.executable).with_name("mirrorbot")
    return str(script) if script.exists() else ""


def _cpu_of(command: list[str], runs: int) -> tuple[float, float]:
    """Median (CPU, wall) of ``command`` over ``runs`` runs; CPU from the children's rusage."""
    import resource

    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
        wall.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(cpu), statistics.median(wall)


def _no_op(
    root: Path,
    config: Path,
    env: dict[str, str],
    profile: Path | None = None,
    importtime: Path | None = None,
) -> dict[str, float]:
    report = root / "report.json"
    wrapper = root / "wrapper.py"
    wrapper.write_text(_WRAPPER)
    command = [sys.executable]
    if importtime is not None:
        command += ["-X", "importtime"]
    if profile is not None:
        command += ["-m", "cProfile", "-o", str(profile)]
    command += [str(wrapper), "sync", "--config", str(config)]
    start = time.perf_counter()
    done = subprocess.run(
        command, env={**env, "STARTUP_REPORT": str(report)}, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"no-op sync failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    if importtime is not None:
        importtime.write_text(done.stderr)
    figures: dict[str, float] = json.loads(report.read_text())
    figures["wall"] = wall
    figures["beyond"] = figures["cpu"] - figures["request_cpu"] - figures["git_side_cpu"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--profile", type=Path, help="cProfile of one more no-op run")
    parser.add_argument("--importtime", type=Path, help="-X importtime of one more no-op run")
    args = parser.parse_args()
    write_bytecode(Path(mirrorbot.__file__).parent)

    entry = _entry_point()
    version = [entry, "--version"] if entry else [sys.executable, "-m", "mirrorbot", "--version"]
    cpu, wall = _cpu_of(version, args.runs)
    print(f"--version          CPU {cpu:.3f} s   wall {wall:.3f} s   (median of {args.runs})")

    with tempfile.TemporaryDirectory(prefix="mirrorbot-startup-") as scratch:
        root = Path(scratch)
        with (
            LocalRegistry(root / "upstream", name="upstream") as upstream,
            LocalRegistry(root / "mirror", name="mirror") as mirror,
        ):
            push_sample(upstream.url)
            remote = root / "metadata.git"
            subprocess.run(
                ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)],
                check=True,
            )
            config = root / "mirrorbot.yaml"
            config.write_text(
                demo_config(
                    f"{upstream.host}/{NAMESPACE}",
                    mirror.host,
                    remote,
                    generated_by="bench/startup.py",
                )
            )
            env = {
                key: value
                for key, value in os.environ.items()
                if not key.startswith(("MIRRORBOT_", "GITHUB_", "XDG_"))
            }
            env["HOME"] = str(root)
            cold = subprocess.run(
                [sys.executable, "-m", "mirrorbot", "sync", "--config", str(config)],
                env=env,
                capture_output=True,
                text=True,
            )
            if cold.returncode != 0:
                raise SystemExit(f"cold sync failed:\n{cold.stdout}{cold.stderr}")
            runs = [_no_op(root, config, env) for _ in range(args.runs)]
            if args.profile is not None:
                _no_op(root, config, env, profile=args.profile)
            if args.importtime is not None:
                _no_op(root, config, env, importtime=args.importtime)

    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    print(
        f"no-op sync         wall {median('wall'):.3f} s, own CPU {median('cpu'):.3f} s, "
        f"{median('git_calls'):.0f} git calls (git's CPU {median('git_cpu'):.3f} s, "
        f"ours around them {median('git_side_cpu'):.3f} s), {median('requests'):.0f} requests "
        f"(CPU while in flight {median('request_cpu'):.3f} s), "
        f"{median('modules'):.0f} modules"
    )
    print(
        f"no-op sync         CPU beyond requests and git: {median('beyond'):.3f} s (target <= 0.3)"
    )


if __name__ == "__main__":
    main()
