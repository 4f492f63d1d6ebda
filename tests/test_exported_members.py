"""``__all__`` is the public API: every listed name exists, and the package re-exports its types.

Modules are found on disk, so a new module is checked without editing this file.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import mirrorbot
import mirrorbot.engine.registry

PACKAGE_ROOT = Path(mirrorbot.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _declares_all(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


MODULES_WITH_ALL = sorted(
    _module_name(path)
    for path in PACKAGE_ROOT.rglob("*.py")
    # __main__ runs the CLI when imported.
    if path.name != "__main__.py" and _declares_all(path)
)


def test_discovery_finds_the_modules() -> None:
    # Guards the discovery itself: an empty list would make every other test vacuous.
    for expected in (
        "mirrorbot.reference",
        "mirrorbot.engine.registry",
        "mirrorbot.engine.registry.credentials",
        "mirrorbot.errors",
        "mirrorbot.engine.registry.media",
    ):
        assert expected in MODULES_WITH_ALL


@pytest.mark.parametrize("module_name", MODULES_WITH_ALL)
def test_every_listed_name_exists(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = module.__all__
    assert isinstance(exported, list | tuple)
    assert all(isinstance(name, str) for name in exported)
    missing = [name for name in exported if not hasattr(module, name)]
    assert missing == [], f"{module_name}.__all__ lists names it does not define: {missing}"
    duplicated = sorted({name for name in exported if exported.count(name) > 1})
    assert duplicated == [], f"{module_name}.__all__ lists names twice: {duplicated}"


@pytest.mark.parametrize("module_name", MODULES_WITH_ALL)
def test_star_import_works(module_name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {module_name} import *", namespace)  # noqa: S102 - a fixed import statement
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert namespace[name] is getattr(module, name)


# Modules whose whole public surface is listed: every top-level name they define
# (function, class, constant, type alias) without a leading underscore is in __all__.
COMPLETE_MODULES = [
    "mirrorbot.config.credentials",
    "mirrorbot.config.yamlio",
    "mirrorbot.reference",
    "mirrorbot.engine.registry.credentials",
    "mirrorbot.errors.base",
    "mirrorbot.errors.run",
    "mirrorbot.engine.registry.media",
]


def _public_definitions(module_name: str) -> set[str]:
    module = importlib.import_module(module_name)
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")}


@pytest.mark.parametrize("module_name", COMPLETE_MODULES)
def test_public_definitions_are_listed(module_name: str) -> None:
    module = importlib.import_module(module_name)
    unlisted = sorted(_public_definitions(module_name) - set(module.__all__))
    assert unlisted == [], f"public in {module_name} but not in __all__: {unlisted}"


@pytest.mark.parametrize("module_name", COMPLETE_MODULES)
def test_listed_names_are_defined_here_not_re_exported(module_name: str) -> None:
    module = importlib.import_module(module_name)
    foreign = sorted(set(module.__all__) - _public_definitions(module_name))
    assert foreign == [], f"{module_name}.__all__ re-exports names defined elsewhere: {foreign}"


# --- the mirrorbot.engine.registry package --------------------------------------------------------------


def _registry_submodules() -> list[str]:
    directory = Path(mirrorbot.engine.registry.__file__).parent
    return sorted(
        f"mirrorbot.engine.registry.{path.stem}"
        for path in directory.glob("*.py")
        if not path.stem.startswith("_")
    )


@pytest.mark.parametrize("name", mirrorbot.engine.registry.__all__)
def test_registry_package_classes_are_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from mirrorbot.engine.registry import {name}", namespace)  # noqa: S102 - fixed import
    exported = namespace[name]
    assert inspect.isclass(exported), f"mirrorbot.engine.registry.{name} is not a class"
    # The package hands out the very class its home module defines, not a copy.
    home = importlib.import_module(exported.__module__)
    # Error types live in the root hierarchy (mirrorbot.errors); the rest in a registry module.
    assert home.__name__.startswith(("mirrorbot.errors", "mirrorbot.engine.registry."))
    assert getattr(home, name) is exported
    assert name in home.__all__, f"{name} is exported by the package but private to {home.__name__}"


def test_registry_package_exports_every_error_type() -> None:
    # Callers catch these: each must be importable from the package itself.
    missing = []
    for module_name in _registry_submodules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and name not in mirrorbot.engine.registry.__all__
            ):
                missing.append(f"{module_name}.{name}")
    assert missing == []


def test_registry_submodules_are_found() -> None:
    assert {
        "mirrorbot.engine.registry.credentials",
        "mirrorbot.engine.registry.retry",
        "mirrorbot.engine.registry.media",
    } <= set(_registry_submodules())
