"""Lazy package attributes (PEP 562), written once for the core's plugins."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose public names load on first use.

    ``names`` maps each lazy name to the module (relative, e.g. ``"._store"``)
    that defines it. A plugin's entry point imports its package; with this, the
    package's heavy modules (and their third-party dependencies) load only when
    one of their names is used, so installing the plugin costs a session
    almost nothing::

        __getattr__, __dir__ = lazy_exports(__name__, {"Store": "._store"})

    A name is imported once, then kept in the package's namespace. An unknown
    name is an ``AttributeError`` naming the package, as for any module.
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        namespace = vars(sys.modules[package])
        return sorted({*namespace, *namespace.get("__all__", ()), *names})

    return __getattr__, __dir__
