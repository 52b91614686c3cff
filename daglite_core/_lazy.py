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


class _FirstUse:
    """A stand-in bound to a module's global name until first used (see :func:`on_first_use`)."""

    __slots__ = ("__name", "__namespace")  # mangled: no clash with the module's own names

    def __init__(self, namespace: dict[str, Any], name: str) -> None:
        self.__namespace = namespace
        self.__name = name

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(f".{self.__name}", self.__namespace["__package__"])
        self.__namespace[self.__name] = module
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<module {self.__name} (imported on first use)>"


def on_first_use(namespace: dict[str, Any], name: str) -> Any:
    """A stand-in for the sibling module ``name``, bound to that global of ``namespace``.

    ``namespace`` is the importing module's ``globals()``. The first attribute read
    on the stand-in imports the module, rebinds the global to it and returns the
    attribute; every later ``name.function(...)`` finds the module itself, so the
    code that uses it (a hot path) pays nothing. For modules that ``import
    daglite_core`` should not load::

        if TYPE_CHECKING:
            from . import _lifecycle
        else:
            _lifecycle = on_first_use(globals(), "_lifecycle")

    ``tests/test_layers.py`` counts the call as an import of the module.
    Concurrent first uses each import; the import system gives them one module.
    """
    return _FirstUse(namespace, name)
