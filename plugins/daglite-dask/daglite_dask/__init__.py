"""daglite-dask: a ``dask`` backend for daglite's ``map_tasks`` on ``dask.distributed``.

Install it and ``map_tasks(t, xs, backend="dask")``, ``iter_tasks(..., backend="dask")``
and ``session(backend="dask")`` run items on a Dask cluster: a ``LocalCluster``
started on demand (closed when the session ends), or a running scheduler given by
``DAGLITE_DASK_ADDRESS`` or ``session(backend=DaskBackend(address=...))`` (left
running). See :class:`DaskBackend` for the semantics.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "DaskBackend",
    "DaskBatchError",
    "DaskWorkerLostError",
    "RemoteError",
    "RemoteTraceback",
    "Unpicklable",
]
