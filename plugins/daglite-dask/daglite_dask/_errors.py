"""Errors of the dask backend (an item's cause inside its :class:`~daglite_core.TaskError`)."""

from __future__ import annotations


class DaskWorkerLostError(RuntimeError):
    """The Dask worker(s) running an item died (``distributed.KilledWorker``).

    The message names the item and the last worker; the ``KilledWorker`` is the
    ``__cause__``.
    """


class DaskBatchError(RuntimeError):
    """The Dask task carrying a batch of items failed outside the items themselves.

    For example the task could not be unpickled on the worker (daglite-dask or the
    task's module missing there), the result could not be unpickled here, or the
    client was closed. The message names the items; the cause is chained.
    """
