"""The entry point (``daglite`` group, name ``dask``): supplies the ``dask`` backend.

Importing this module imports nothing else of the package (it is imported by
every process that opens a session): :class:`DaskBackend` is imported when the
backends are first asked for, and it imports ``distributed`` only when a session
first runs a map on it.
"""

from __future__ import annotations

from typing import Any

from daglite_core import hookimpl

__all__ = ["provide_backends"]

daglite_plugin_name = "daglite-dask"


@hookimpl
def provide_backends() -> list[type[Any]]:
    """The ``dask`` backend (alias ``distributed``)."""
    from ._backend import DaskBackend

    return [DaskBackend]
