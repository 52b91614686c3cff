"""The entry point (``daglite`` group, name ``dask``): supplies the ``dask`` backend.

Importing this module does not import Dask: :class:`DaskBackend` imports
``distributed`` when a session first runs a map on it.
"""

from __future__ import annotations

from typing import Any

from daglite_core import hookimpl

from ._backend import DaskBackend

__all__ = ["provide_backends"]

daglite_plugin_name = "daglite-dask"


@hookimpl
def provide_backends() -> list[type[Any]]:
    """The ``dask`` backend (alias ``distributed``)."""
    return [DaskBackend]
