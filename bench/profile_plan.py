"""``mirrorbot plan`` in-process, stage by stage: where the time goes when nothing waits on copies.

Run by ``bench/run.py`` in a fresh interpreter (so nothing else shares the
process)::

    python bench/profile_plan.py CONFIG OUT.json

Two passes over the same config (a dry-run sync, exactly what ``mirrorbot
plan`` runs):

1. timed: wall and CPU (``time.process_time``) of each stage — listing
   (``Sync.list_all``: requests plus parsing), name mapping and planning
   (``map_names`` + ``plan``: the pure diff against state), and rendering the
   ``--json`` document;
2. under :mod:`cProfile`: the functions with the most own CPU time.

CPU time of a stage is time the process spent computing rather than waiting
on the network: the front runs in another process.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mirrorbot.config.credentials import Need
from mirrorbot.jobs.context.wiring import open_context, run_async, sync_hosts
from mirrorbot.jobs.sync import Sync, SyncOptions


class Stages:
    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name] = self.wall.get(name, 0.0) + wall
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu

    def timed_async(
        self, name: str, function: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return await function(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - wall, time.process_time() - cpu)

        return wrapper

    def timed(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - wall, time.process_time() - cpu)

        return wrapper


def one_pass(config: Path, stages: Stages | None) -> dict[str, Any]:
    context = open_context(config, dict(os.environ))

    async def go() -> Any:
        credentials = context.credentials(sync_hosts(context.config), Need.OPTIONAL)
        async with context.pool(credentials) as pool:
            sync = Sync(context.config, pool, context.store, SyncOptions(dry_run=True))
            if stages is not None:
                # Instance attributes shadow the methods: Sync.run calls these wrappers.
                sync.list_all = stages.timed_async("listing", sync.list_all)  # type: ignore[method-assign]
                sync.map_names = stages.timed("planning", sync.map_names)  # type: ignore[method-assign]
                sync.plan = stages.timed_async("planning", sync.plan)  # type: ignore[method-assign]
            report = await sync.run()
        finished.extend((time.perf_counter(), time.process_time()))
        return report

    finished: list[float] = []
    wall, cpu = time.perf_counter(), time.process_time()
    report = run_async(go)  # as `mirrorbot plan` runs it: the main task returns nothing
    total_wall, total_cpu = time.perf_counter() - wall, time.process_time() - cpu
    if stages is not None:
        # From the coroutine's return to run_async's: event loop teardown.
        stages.add(
            "asyncio.run teardown",
            time.perf_counter() - finished[0],
            time.process_time() - finished[1],
        )
    render_wall, render_cpu = time.perf_counter(), time.process_time()
    items = sum(len(plan.items) for plan in report.plans)
    try:
        from mirrorbot.cli.inspect import plan_json as _plan_json  # what `plan --json` prints

        json.dumps(_plan_json(report), indent=2)
    except ImportError:  # the CLI helper moved: the stage is simply not measured
        pass
    if stages is not None:
        stages.add(
            "render --json",
            time.perf_counter() - render_wall,
            time.process_time() - render_cpu,
        )
    repositories = sum(
        len(run.listing.repositories) for run in report.runs if run.listing is not None
    )
    return {
        "wall_s": total_wall,
        "cpu_s": total_cpu,
        "items": items,
        "repositories": repositories,
        "errors": list(report.listing_errors),
        "warnings": len(report.warnings),
    }


def main() -> None:
    config, out = Path(sys.argv[1]), Path(sys.argv[2])
    stages = Stages()
    timed = one_pass(config, stages)
    timed["stages"] = {
        name: {"wall_s": stages.wall[name], "cpu_s": stages.cpu[name]} for name in stages.wall
    }
    profiler = cProfile.Profile()
    profiler.enable()
    profiled = one_pass(config, None)
    profiler.disable()
    text = io.StringIO()
    statistics = pstats.Stats(profiler, stream=text)
    statistics.sort_stats(pstats.SortKey.TIME).print_stats(15)
    top: list[dict[str, Any]] = []
    for (filename, line, function), row in sorted(
        statistics.stats.items(),  # type: ignore[attr-defined]
        key=lambda entry: entry[1][2],
        reverse=True,
    )[:15]:
        calls, _, own, cumulative, _ = row
        top.append(
            {
                "function": f"{Path(filename).name}:{line}:{function}",
                "calls": calls,
                "own_s": round(own, 4),
                "cumulative_s": round(cumulative, 4),
            }
        )
    result = {"timed": timed, "profiled": {"wall_s": profiled["wall_s"], "top_own_time": top}}
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
