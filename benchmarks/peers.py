"""Optional peers: each is imported on demand; a missing one skips its rows, never fails.

daglite 0.9 (``daglite==0.9.0b6`` from PyPI, import name ``daglite``) is the peer whose
API the core follows; its task bodies live here (not in :mod:`workloads`) because its
``@task`` rewrites the decorated function's ``__qualname__``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from types import ModuleType
from typing import Any


def load(module: str) -> ModuleType | None:
    """``import module``, or ``None`` when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or ``None``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def skip_reason(distribution: str, module: str | None = None) -> str | None:
    """``None`` when importable, else the skip message every row of that peer shows."""
    if load(module or distribution) is None:
        return f"skipped: {distribution} not installed"
    return None


class DagliteOld:
    """Tasks and a no-op plugin for daglite 0.9 (built only when it is installed)."""

    def __init__(self) -> None:
        import daglite
        from daglite.plugins.hooks.markers import hook_impl
        from daglite.settings import DagliteSettings

        self.daglite = daglite
        self.Settings = DagliteSettings
        self.add = daglite.task(_old_add)
        self.inc = daglite.task(_old_inc)
        self.count = daglite.task(_old_count)

        class Observer:
            @hook_impl
            def before_node_execute(self, metadata: Any, reporter: Any) -> None:
                """Observe the start."""

            @hook_impl
            def after_node_execute(self, metadata: Any, result: Any, duration: float, reporter: Any) -> None:
                """Observe the end."""

            @hook_impl
            def node_iteration(self, metadata: Any, index: int, reporter: Any) -> None:
                """Observe one item."""

        self.Observer = Observer

    def settings(self, **changes: Any) -> Any:
        """Its settings with caching off (``cache_store=None``) and two workers of each kind."""
        return self.Settings(cache_store=None, max_backend_threads=2, max_parallel_processes=2, **changes)


def _old_add(x: int, y: int) -> int:
    return x + y


def _old_inc(x: int) -> int:
    return x + 1


def _old_count(n: int) -> Any:
    yield from range(n)
