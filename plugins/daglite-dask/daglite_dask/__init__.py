"""daglite-dask: a ``dask`` backend for daglite's ``map_tasks`` on ``dask.distributed``.

Install it and ``map_tasks(t, xs, backend="dask")``, ``iter_tasks(..., backend="dask")``
and ``session(backend="dask")`` run items on a Dask cluster: a ``LocalCluster``
started on demand (closed when the session ends), or a running scheduler given by
``DAGLITE_DASK_ADDRESS`` or ``session(backend=DaskBackend(address=...))`` (left
running). See :class:`DaskBackend` for the semantics.
"""

from __future__ import annotations

from ._backend import DaskBackend
from ._errors import DaskBatchError, DaskWorkerLostError
from ._portable import RemoteError, RemoteTraceback, Unpicklable

__all__ = [
    "DaskBackend",
    "DaskBatchError",
    "DaskWorkerLostError",
    "RemoteError",
    "RemoteTraceback",
    "Unpicklable",
]
