"""Locked dependencies and the distribution's name.

Every install — CI's ``.ci/setup``, the workflows, the composite action — takes its
dependencies from a hash-locked requirements file that ``.ci/lock`` generates from
``pyproject.toml``; mirrorbot itself is then installed with ``--no-deps``. The
distribution has a name no other package on PyPI uses, and the README never tells anyone
to install it by name from an index.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
RUNTIME_LOCK = ROOT / "requirements.lock"
TEST_LOCK = ROOT / "requirements-test.lock"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")


def locked(path: Path) -> dict[str, str]:
    """name → version of a lock file; every entry carries at least one sha256 hash."""
    pins: dict[str, str] = {}
    current: str | None = None
    hashed: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        found = PIN.match(line)
        if found:
            current = canonicalize_name(found.group("name"))
            pins[current] = found.group("version")
        elif current and re.fullmatch(r"\s+--hash=sha256:[0-9a-f]{64}( \\)?", line):
            hashed.add(current)
        elif line and not line.startswith(("#", " ")):
            pytest.fail(f"{path.name}: not a pinned requirement: {line!r}")
    assert pins, path
    assert set(pins) == hashed, f"{path.name}: without a hash: {sorted(set(pins) - hashed)}"
    return pins


def requirements(*groups: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    found = [Requirement(text) for text in project["dependencies"]]
    for group in groups:
        found += [Requirement(text) for text in project["optional-dependencies"][group]]
    found += [Requirement(text) for text in PYPROJECT["build-system"]["requires"]]
    own = canonicalize_name(project["name"])
    return [req for req in found if canonicalize_name(req.name) != own]


@pytest.mark.parametrize(
    ("lock", "groups"),
    [(RUNTIME_LOCK, ()), (TEST_LOCK, ("notify", "test"))],
    ids=["runtime", "test"],
)
def test_every_dependency_is_locked_within_its_bounds(lock: Path, groups: tuple[str, ...]) -> None:
    pins = locked(lock)
    for requirement in requirements(*groups):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {lock.name}: run .ci/lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock.name} pins {name}=={pins[name]}, outside {requirement}: run .ci/lock"
        )


def test_the_test_lock_agrees_with_the_runtime_lock() -> None:
    runtime, test = locked(RUNTIME_LOCK), locked(TEST_LOCK)
    assert {name: test.get(name) for name in runtime} == runtime


def test_the_lock_script_is_pinned_and_writes_both_files() -> None:
    script = (ROOT / ".ci" / "lock").read_text(encoding="utf-8")
    assert re.search(r"^UV_VERSION=\d+\.\d+\.\d+$", script, re.MULTILINE)
    assert "--generate-hashes" in script
    assert "-o requirements.lock" in script
    assert "-o requirements-test.lock" in script
    for lock in (RUNTIME_LOCK, TEST_LOCK):
        assert lock.read_text(encoding="utf-8").splitlines()[1] == "#    .ci/lock"


def _scripts() -> list[tuple[str, str]]:
    """Every ``run:`` script of the workflows and the action, with where it is."""
    found: list[tuple[str, str]] = []
    for path in [*sorted((ROOT / ".github" / "workflows").glob("*.yml")), ROOT / "action.yml"]:
        document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        steps = list(document.get("runs", {}).get("steps", []))
        for job in document.get("jobs", {}).values():
            steps += job.get("steps", [])
        found += [(path.name, step["run"]) for step in steps if "run" in step]
    return found


def _pip_installs(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if re.search(r"\bpip install\b", line)]


def test_workflows_and_action_install_from_the_lock() -> None:
    installs = [(name, line) for name, script in _scripts() for line in _pip_installs(script)]
    assert {name for name, _ in installs} >= {"sync.yml", "request.yml", "action.yml"}
    for name, line in installs:
        hashed = "--require-hashes -r" in line and "requirements.lock" in line
        alone = "--no-deps" in line and "--no-build-isolation" in line
        assert hashed or alone, (name, line)
    # Each file that installs mirrorbot installs the lock first.
    for name in {name for name, _ in installs}:
        lines = [line for n, line in installs if n == name]
        assert any("--require-hashes" in line for line in lines), name


def test_ci_setup_installs_from_the_test_lock() -> None:
    setup = (ROOT / ".ci" / "setup").read_text(encoding="utf-8")
    assert re.search(r"install -q --require-hashes -r requirements-test\.lock$", setup, re.M)
    assert re.search(r"install -q --no-deps --no-build-isolation -e \.$", setup, re.M)
    assert "'.[test]'" not in setup
    ci = YAML(typ="safe").load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    assert any(step.get("run") == "bash .ci/run" for step in ci["jobs"]["test"]["steps"])


# --------------------------------------------------------------------------- the name


def test_the_distribution_has_its_own_name_and_the_command_stays() -> None:
    project = PYPROJECT["project"]
    # "mirrorbot" on PyPI is an unrelated project.
    assert canonicalize_name(project["name"]) == "mirrorbot-gitops"
    assert project["scripts"] == {"mirrorbot": "mirrorbot.__main__:run"}
    assert PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["mirrorbot"]
    test_extra = project["optional-dependencies"]["test"]
    assert f"{project['name']}[notify]" in test_extra


def test_nothing_installs_mirrorbot_by_name_from_an_index() -> None:
    texts = {
        "README.md": (ROOT / "README.md").read_text(encoding="utf-8"),
        "action.yml": (ROOT / "action.yml").read_text(encoding="utf-8"),
    }
    for name, text in texts.items():
        for line in text.splitlines():
            found = re.search(
                r"pip install\s+(?:-\S+\s+)*['\"]?(mirrorbot[\w.-]*)(\[[^]]*\])?(.*)", line
            )
            if found:
                # Only ever this distribution, from a repository at a pinned ref.
                assert found.group(1) == "mirrorbot-gitops", (name, line)
                assert re.match(r" @ git\+https://github\.com/\S+@", found.group(3)), (name, line)
        # No release tag to point at: pin a commit.
        assert not re.search(r"mirrorbot@v\d", text), name
    readme = texts["README.md"]
    assert re.search(r'pip install "mirrorbot-gitops\[notify\] @ git\+https://github\.com/', readme)
