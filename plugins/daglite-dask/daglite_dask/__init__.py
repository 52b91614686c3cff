"""daglite-dask: a ``dask`` backend for daglite's ``map_tasks`` on ``dask.distributed``.

Install it and ``map_tasks(t, xs, backend="dask")``, ``iter_tasks(..., backend="dask")``
and ``session(backend="dask")`` run items on a Dask cluster: a ``LocalCluster``
started on demand (closed when the session ends), or a running scheduler given by
``DAGLITE_DASK_ADDRESS`` or ``session(backend=DaskBackend(address=...))`` (left
running). See :class:`DaskBackend` for the semantics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daglite_core import lazy_exports

if TYPE_CHECKING:
    from ._backend import DaskBackend
    from ._errors import DaskBatchError, DaskWorkerLostError
    from ._portable import RemoteError, RemoteTraceback, Unpicklable

# Names are imported on first use (PEP 562): the ``dask`` entry point imports only
# ``daglite_dask.plugin``, which imports nothing else until a session asks for backends.
_LAZY = {
    "DaskBackend": "._backend",
    "DaskBatchError": "._errors",
    "DaskWorkerLostError": "._errors",
    "RemoteError": "._portable",
    "RemoteTraceback": "._portable",
    "Unpicklable": "._portable",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "DaskBackend",
    "DaskBatchError",
    "DaskWorkerLostError",
    "RemoteError",
    "RemoteTraceback",
    "Unpicklable",
]
