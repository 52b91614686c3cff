"""Fake installed entry-point plugins for the core's tests (no distribution installed)."""

from __future__ import annotations

import pytest

import daglite_core._hooks._manager as _manager


class FakeDist:
    def __init__(self, name: str, version: str = "1.0") -> None:
        self.name = name
        self.version = version


class FakeEntryPoint:
    """An installed plugin named ``name`` whose ``load()`` gives ``plugin`` (or raises it)."""

    def __init__(self, name: str, plugin: object, dist: str | None = None, value: str | None = None) -> None:
        self.name = name
        self.value = value or f"{name}_module"
        self.dist = FakeDist(dist or f"daglite-{name}")
        self._plugin = plugin

    def load(self) -> object:
        if isinstance(self._plugin, Exception):
            raise self._plugin
        return self._plugin


def install(monkeypatch: pytest.MonkeyPatch, eps: list[FakeEntryPoint]) -> list[FakeEntryPoint]:
    """Make ``eps`` (read when plugins load, so it may grow later) the installed entry points."""
    monkeypatch.setattr(_manager, "entry_points", lambda: list(eps))
    return eps
