"""README's Layout and docs/ARCHITECTURE.md's module list are the code's, not a memory of it."""

from __future__ import annotations

import pytest

from tests.support import layout


@pytest.mark.parametrize("path", sorted(layout.TARGETS), ids=lambda p: p.name)
def test_the_generated_layout_matches_the_tree(path: object) -> None:
    assert isinstance(path, type(layout.ROOT))
    text = path.read_text(encoding="utf-8")
    assert layout.replace_block(text, layout.render(layout.TARGETS[path])) == text, (
        "regenerate with: python -m tests.support.layout --write"
    )


def test_every_package_has_a_line_in_the_readme() -> None:
    readme = (layout.ROOT / "README.md").read_text(encoding="utf-8")
    for package in sorted(p for p in (layout.PACKAGE).rglob("__init__.py")):
        name = package.parent.name + "/"
        assert name in readme, f"{package.parent} is not in README's Layout"
