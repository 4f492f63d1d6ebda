"""Retries are mirrorbot's own log lines, quiet unless ``-v`` (issue 13).

stamina's ``stamina.retry_scheduled`` used to reach stderr bare, through
logging's last-resort handler: no host, no attempt, no wait.
"""

from __future__ import annotations

import itertools
import re

from mirrorbot.demo.corpus import ImageFactory
from tests.support.faults import FaultProxy
from tests.support.world import World, write_config


def test_a_retry_is_logged_by_mirrorbot_only_with_verbose(world: World) -> None:
    world.seed("app", "v1", ImageFactory(world.ns).image("app", layer_size=64))
    every_other = itertools.count()
    # Every other tag listing answers 503: each run's first attempt fails, the retry works.
    proxy = FaultProxy(
        world.upstream,
        rate=1.0,
        seed=1,
        kinds=("503",),
        only=lambda method, path: "/tags/list" in path and next(every_other) % 2 == 0,
    )
    with proxy:
        host = proxy.host
        write_config(world, source=f"{host}/{world.ns}")
        quiet = world.run("plan")
        verbose = world.run("plan", "-v")
    assert proxy.injected["503"] == 2

    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "stamina" not in quiet.stderr
    assert "retry" not in quiet.stderr

    assert verbose.returncode == 0, verbose.stdout + verbose.stderr
    assert "stamina" not in verbose.stderr
    retried = [line for line in verbose.stderr.splitlines() if "retrying in" in line]
    assert len(retried) == 1, verbose.stderr
    line = retried[0]
    # Host and reference, attempt, wait, reason: each said once.
    assert line.startswith(
        f"INFO mirrorbot.retry: {host}/{world.ns}/app: attempt 1 of 6 failed, retrying in "
    ), line
    assert re.search(
        r"retrying in \d+\.\d s: GET \S+/tags/list returned 503 \(UNAVAILABLE", line
    ), line
    assert line.count(host) == 2, line  # the reference and the URL, no more
