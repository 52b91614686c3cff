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
    """A stand-in bound to a global name until first used (see :func:`on_first_use`)."""

    __slots__ = ("__load", "__name", "__namespace")  # mangled: no clash with the object's names

    def __init__(self, namespace: dict[str, Any], name: str, load: Callable[[], Any]) -> None:
        self.__namespace = namespace
        self.__name = name
        self.__load = load

    def __getattr__(self, attr: str) -> Any:
        value = self.__load()
        self.__namespace[self.__name] = value
        return getattr(value, attr)

    def __repr__(self) -> str:
        return f"<{self.__name} (imported on first use)>"


def on_first_use(namespace: dict[str, Any], name: str, load: Callable[[], Any]) -> Any:
    """A stand-in for global ``name`` of ``namespace`` (a module's ``globals()``).

    The first attribute read on it calls ``load()`` (which imports a module and
    returns it), rebinds ``name`` in ``namespace`` to the result and returns the
    attribute; every later use of ``name`` finds the module itself, so the code
    that uses it pays nothing. For a module that ``import daglite_core`` should not
    load but whose functions a hot path calls as ``module.function(...)``::

        if TYPE_CHECKING:
            from . import _lifecycle
        else:
            _lifecycle = on_first_use(globals(), "_lifecycle", _import_lifecycle)

    ``load`` should hold a plain ``from . import module`` so that the layering test
    sees the dependency. Concurrent first uses each call ``load()``; the import
    system makes them return the same module.
    """
    return _FirstUse(namespace, name, load)
