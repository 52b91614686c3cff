"""The core's own plugin: supplies the built-in backends through the provider hook."""

from __future__ import annotations

from typing import Any

from ._hookspecs import hookimpl


class _Builtin:
    daglite_plugin_name = "daglite-core"

    @hookimpl(trylast=True)
    def provide_backends(self) -> list[type[Any]]:
        from ._backends import InlineBackend, ThreadBackend

        backends: list[type[Any]] = [InlineBackend, ThreadBackend]
        try:
            from ._process import ProcessBackend
        except ImportError:  # pragma: no cover - until the process backend lands
            return backends
        return [*backends, ProcessBackend]


BUILTIN = _Builtin()
