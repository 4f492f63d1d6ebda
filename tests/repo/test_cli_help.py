"""``--help`` of every command renders: a typer/rich release once broke ``copy --help``.

Rich read the option text ``os/arch[/variant]`` as a closing markup tag and raised
while printing the help. Commands are enumerated from the click tree typer builds,
so a command added later is covered without touching this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from mirrorbot.cli import app


def _subcommands(command: Any) -> dict[str, Any]:
    # Duck-typed: typer may build on click or on its own vendored copy of it.
    subcommands: dict[str, Any] = getattr(command, "commands", None) or {}
    return subcommands


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in _subcommands(command).items():
        yield from _commands(sub, (*path, name))


ALL_COMMANDS = list(_commands(typer.main.get_command(app)))


def test_every_command_is_enumerated() -> None:
    # Guards the enumeration itself: the documented commands are all found.
    names = {path[0] for path in ALL_COMMANDS if path}
    assert {"copy", "sync", "plan", "publish", "verify", "find", "notify", "request"} <= names


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda path: " ".join(path) or "mirrorbot")
def test_help_renders(path: tuple[str, ...]) -> None:
    command = typer.main.get_command(app)
    for name in path:
        command = _subcommands(command)[name]
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="mirrorbot")
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 0, result.output
    assert "Usage: mirrorbot" in result.output
    # Every option's help text is printed as written, brackets included.
    flat = " ".join(result.output.split())
    for param in command.params:
        text = getattr(param, "help", None)
        if text:
            assert " ".join(text.split()) in flat, (param.name, result.output)
