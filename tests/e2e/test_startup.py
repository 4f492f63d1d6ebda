"""Start-up (issue 16): each command imports only what it uses. Functional checks, not timings.

Run in a fresh interpreter each, since this test process has imported everything already.
"""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import textwrap

import pytest
import typer

from mirrorbot.cli import app
from mirrorbot.demo.corpus import ImageFactory
from tests.support.world import World

# What `mirrorbot --version` must not pay for: the registry client, config models,
# rich output, templates, the notify server, GitPython and an event loop.
HEAVY = (
    "httpx",
    "httpcore",
    "pydantic",
    "rich",
    "jinja2",
    "starlette",
    "uvicorn",
    "git",
    "asyncio",
)


def _loaded_after(code: str) -> tuple[str, list[str]]:
    """Run ``code`` in a fresh interpreter; what it printed and the top-level modules loaded."""
    body = textwrap.indent(code, "    ")
    probe = (
        f"import json, sys\ntry:\n{body}\nexcept SystemExit:\n    pass\n"
        'print(json.dumps(sorted({name.partition(".")[0] for name, module in sys.modules.items() if module is not None})))\n'
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    *said, modules = done.stdout.splitlines()
    return "\n".join(said), json.loads(modules)


def test_version_imports_no_heavy_package() -> None:
    said, modules = _loaded_after(
        "sys.argv = ['mirrorbot', '--version']\nfrom mirrorbot.__main__ import run\nrun()"
    )
    assert said.startswith("mirrorbot ")
    assert [name for name in HEAVY if name in modules] == []


def test_the_entry_point_keeps_httpx_command_line_out() -> None:
    # httpx imports click, rich and pygments for its own CLI when they are installed.
    _, modules = _loaded_after("import mirrorbot.__main__\nimport httpx\nhttpx.AsyncClient")
    assert "httpx" in modules
    assert [name for name in ("click", "rich", "pygments") if name in modules] == []


# What a plain sync never runs: terminal rendering (its output is not a terminal here),
# the notify server, httpx's own CLI and what it brings; stamina and tenacity, which
# only a failed attempt needs; httpcore's stack (anyio, h11) and aiohttp, which the
# registry transport (engine/registry/wire.py) does not use.
UNUSED_BY_SYNC = (
    "rich",
    "jinja2",
    "starlette",
    "uvicorn",
    "click",
    "pygments",
    "stamina",
    "tenacity",
    "anyio",
    "h11",
    "httpcore",
    "aiohttp",
)


# mirrorbot's own modules of other modes: verify (and sync --repair's step), publish's
# fragments, image-syncer rules and their format, notify, issue requests.
MIRRORBOT_UNUSED_BY_SYNC = (
    "mirrorbot.jobs.verify",
    "mirrorbot.jobs.context.verifying",
    "mirrorbot.jobs.context.fragments",
    "mirrorbot.jobs.context.imagesyncer",
    "mirrorbot.jobs.rules",
    "mirrorbot.config.imagesyncer",
    "mirrorbot.jobs.notify",
    "mirrorbot.jobs.context.push",
    "mirrorbot.integrations.github.request",
)


def test_a_no_op_sync_loads_no_unused_mode(world: World) -> None:
    factory = ImageFactory(world.ns)
    world.seed("pause", "3.9", factory.image("pause-3.9", layers=[factory.layer("base", 4096)]))
    cold = world.run("sync")
    assert cold.returncode == 0, cold.stdout + cold.stderr
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import atexit, json, sys\n"
            "atexit.register(lambda: print(json.dumps(sorted("
            "n for n, m in sys.modules.items() if m is not None))))\n"
            "sys.argv = ['mirrorbot', *sys.argv[1:]]\n"
            "from mirrorbot.__main__ import run\n"
            "run()",
            *world.command("sync")[3:],
        ],
        capture_output=True,
        text=True,
        env=world.environment(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"tags new \(copied\) +0\n", done.stdout), done.stdout  # a no-op
    assert re.search(r"tags unchanged +1\n", done.stdout), done.stdout
    loaded = json.loads(done.stdout.splitlines()[-1])
    modules = {name.partition(".")[0] for name in loaded}
    assert "httpx" in modules  # it did reach the registries
    assert [name for name in UNUSED_BY_SYNC if name in modules] == []
    assert "mirrorbot.jobs.context.runs" in loaded
    assert [name for name in MIRRORBOT_UNUSED_BY_SYNC if name in loaded] == []


@pytest.mark.parametrize(
    "command", [c.callback for c in app.registered_commands], ids=lambda c: c.__name__
)
def test_command_annotations_are_objects_not_strings(
    command: typer.models.CommandFunctionType,
) -> None:
    # Under `from __future__ import annotations` typer compiles and evaluates every
    # annotation string twice (inspect.signature and get_type_hints): most of its
    # parse time. Command modules therefore keep their annotations evaluated.
    annotations = inspect.get_annotations(command)
    assert annotations
    assert [name for name, value in annotations.items() if isinstance(value, str)] == []
