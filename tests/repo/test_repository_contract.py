"""The README's two commands are the ones CI and newcomers run: keep them true."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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


FEATURE_ROWS = (
    "referrers",
    "newest-N tags",
    "rate-limit-aware pulls",
    "mutable-tag backups",
    "pruned",
    "image-syncer rule files",
    "registry→registry streaming",
    "GitOps state, CHANGELOG",
)


def _feature_table() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Compared with regsync and image-syncer", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]


def _defined_tests(path: Path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_the_feature_tables_tests_exist() -> None:
    """Every ✅ of mirrorbot in the README's comparison names tests that exist."""
    table = _feature_table()
    for wanted in FEATURE_ROWS:
        assert any(wanted in row[0] for row in table), f"no feature row about {wanted!r}"
    for feature, mirrorbot, *_ in table:
        assert mirrorbot.startswith("✅"), f"{feature}: mirrorbot's cell is {mirrorbot!r}"
        named = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", mirrorbot)
        assert named, f"{feature}: no test named"
        for file, name in named:
            path = ROOT / file
            assert path.is_file(), f"{feature}: {file} does not exist"
            assert name in _defined_tests(path), f"{feature}: {file} has no {name}"
