"""The README's two commands are the ones CI and newcomers run: keep them true."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up on a fresh Debian machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_states_two_setup_commands() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    assert "mirrorbot demo" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = _readme_commands()[1]
    setup, _, command = test_command.partition(" && ")
    assert setup == "bash .ci/setup"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "bash .ci/setup || exit 1" in ci
    assert command in ci


def test_ci_fails_loudly_on_an_empty_selection() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert '"$rc" -eq 5' in ci
    assert 'exit "$rc"' in ci


def test_the_repositorys_own_config_is_valid() -> None:
    from mirrorbot.config import load_config

    config = load_config(
        ROOT / "mirrorbot.yaml", {"DOCKERHUB_USERNAME": "u", "DOCKERHUB_TOKEN": "t"}
    )
    sources = [ns.source for ns in config.namespace_plans()]
    assert sources == ["gcr.io/google-containers", "registry.k8s.io", "quay.io/coreos"]
    assert config.state.repo == "."
