"""Meta-tests: every hookspec is documented and exercised by a test named after it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import daglite_core as d
from daglite_core._hooks import _specs as _hookspecs
from daglite_core._hooks._manager import SPECS

HOOKS = sorted(SPECS)
TESTS = Path(__file__).parent


def _test_names() -> set[str]:
    names = set()
    for path in TESTS.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_hook_"):
                names.add(node.name)
    return names


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_is_documented(hook: str) -> None:
    doc = inspect.getdoc(getattr(_hookspecs, hook)) or ""
    assert doc, f"hookspec {hook!r} has no docstring"
    assert "Return value" in doc, f"hookspec {hook!r} does not say what its return value means"
    assert ".. versionadded::" in doc
    for arg in SPECS[hook].argnames:
        assert f":param {arg}:" in doc or "as in :func:" in doc, f"hookspec {hook!r} does not document {arg!r}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_is_exercised_by_a_test(hook: str) -> None:
    names = _test_names()
    assert any(hook in name for name in names), f"no test named test_hook_...{hook}... exercises hook {hook!r}"


def test_public_names_are_sorted_and_importable() -> None:
    assert d.__all__ == sorted(d.__all__)
    for name in d.__all__:
        assert hasattr(d, name), name
