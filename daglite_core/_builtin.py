"""The core's own plugin: supplies the built-in backends through the provider hook."""

from __future__ import annotations

from typing import Any, ClassVar

from ._hooks import hookimpl
from ._settings import DagliteSettings


class _ProcessBackendOnDemand:
    """Names the ``process`` backend without importing it.

    Every session asks for the backend classes (to check its ``backend=``); the
    process backend brings ``multiprocessing``, ``pickle`` and its own modules
    (~8 ms), which a session that never runs a process map should not pay.
    Instantiating this gives the real :class:`~daglite_core._process.ProcessBackend`.
    """

    name: ClassVar[str] = "process"
    aliases: ClassVar[tuple[str, ...]] = ("processes", "multiprocessing")

    def __new__(cls, settings: DagliteSettings) -> Any:
        from ._process import ProcessBackend

        return ProcessBackend(settings)


class _Builtin:
    daglite_plugin_name = "daglite-core"

    @hookimpl(trylast=True)
    def provide_backends(self) -> list[type[Any]]:
        from ._backends import InlineBackend, ThreadBackend

        return [InlineBackend, ThreadBackend, _ProcessBackendOnDemand]


BUILTIN = _Builtin()
