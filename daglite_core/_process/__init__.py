"""The ``process`` backend: the coordinator in the session's process, the worker
processes, the wire format between them, and the worker-side runner.

Layers, each importing only those below it (and the core's modules):

* :mod:`._coordinator` — :class:`ProcessBackend`: batches, deadlines, replies, relayed events;
* :mod:`._pool` — the worker processes and their loop;
* :mod:`._wire` — what crosses a worker's pipe, and how it is pickled;
* :mod:`._worker` — the picklable runner a worker calls per batch, and the event relay
  (also what every fan-out's ``remote()`` returns, so it imports no multiprocessing).

The coordinator's names are imported on first use: fan-out imports :mod:`._worker`
and should not pay for ``multiprocessing`` unless a process map runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._coordinator import ProcessBackend, WorkerDiedError, WorkerStartError, batch_size, strided_batches

__all__ = ["ProcessBackend", "WorkerDiedError", "WorkerStartError", "batch_size", "strided_batches"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import _coordinator

        return getattr(_coordinator, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
