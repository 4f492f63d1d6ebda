"""The exception hierarchy lives in one place and its drawing stays true."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import mirrorbot
import mirrorbot.errors as errors


def _drawn_tree() -> list[str]:
    doc = errors.__doc__ or ""
    lines = doc.split("::\n\n", 1)[1].splitlines()
    return [line for line in lines if line.strip()]


def _actual_tree() -> list[str]:
    ours = [
        value
        for value in vars(errors).values()
        if inspect.isclass(value) and issubclass(value, BaseException)
    ]
    out: list[str] = []

    def walk(cls: type, depth: int) -> None:
        builtin = [
            b.__name__ for b in cls.__bases__ if b.__module__ == "builtins" and b is not Exception
        ]
        out.append(
            "    "
            + "    " * depth
            + cls.__name__
            + (f" (also {', '.join(builtin)})" if builtin else "")
        )
        for sub in sorted((k for k in ours if cls in k.__bases__), key=lambda k: k.__name__):
            walk(sub, depth + 1)

    walk(errors.MirrorbotError, 0)
    return out


def test_the_docstring_draws_the_real_tree() -> None:
    assert _drawn_tree() == _actual_tree()


def test_every_error_is_a_mirrorbot_error() -> None:
    for name in errors.__all__:
        value = getattr(errors, name)
        if inspect.isclass(value) and issubclass(value, BaseException):
            assert issubclass(value, errors.MirrorbotError), name


def test_no_error_class_is_defined_outside_mirrorbot_errors() -> None:
    strays = []
    for info in pkgutil.walk_packages(mirrorbot.__path__, "mirrorbot."):
        if info.name.startswith(("mirrorbot.errors", "mirrorbot.demo")) or info.name.endswith(
            "__main__"
        ):
            continue  # the demo's launcher errors are the demo's own
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                strays.append(f"{module.__name__}.{name}")
    assert strays == []
