"""The package layers hold: each imports only from the layers below it (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_import_linter_contracts_are_kept() -> None:
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def _python_files() -> list[Path]:
    return sorted((ROOT / "mirrorbot").rglob("*.py"))


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): count
        for path in _python_files()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert long == {}


def test_only_the_command_layer_imports_lazily() -> None:
    """A function-level import outside ``cli`` is a cycle being dodged; the CLI's are for start-up."""
    lazy = []
    for path in _python_files():
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(("mirrorbot/cli/", "mirrorbot/__main__.py")):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(function):
                    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                        "mirrorbot"
                    ):
                        lazy.append(f"{relative}:{node.lineno} {node.module}")
    assert lazy == []
