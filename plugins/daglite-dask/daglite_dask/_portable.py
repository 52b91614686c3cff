"""What crosses between a Dask worker and the session: outcomes and hook events, pickled.

The worker pickles a batch's outcomes (and, for the live channel, each chunk of
hook events) to ``bytes`` itself, with the core's public wire functions
(:func:`daglite_core.pack_batch`, :func:`daglite_core.pack_events`), so that what
cannot travel fails only its own item or argument instead of the whole Dask task:

* a result that cannot be pickled fails its item (a ``PicklingError`` naming the
  item and the type), and plugins see that item's ``on_node_error`` instead of
  its ``after_node_execute``;
* an error that cannot be pickled becomes a :class:`~daglite_core.RemoteError`
  carrying its type, message and traceback;
* any other hook argument that cannot be pickled becomes an
  :class:`~daglite_core.Unpicklable` stand-in (its type name and ``repr``).

Worker tracebacks are kept: the original error's ``__cause__`` is a
:class:`~daglite_core.RemoteTraceback` holding the worker-side text. Pickling is
stdlib pickle, then ``cloudpickle`` (a dependency of Dask) for what stdlib pickle
cannot send.
"""

from __future__ import annotations

import pickle
from typing import Any

from daglite_core import RemoteBatch, RemoteError, RemoteTraceback, Unpicklable, pack_batch, pack_events, unpack_batch
from daglite_core import unpack_events as decode_events

Event = tuple[str, tuple[Any, ...]]

encode_events = pack_events
encode_outcomes = pack_batch
decode_outcomes: Any = unpack_batch

__all__ = [
    "Event",
    "RemoteBatch",
    "RemoteError",
    "RemoteTraceback",
    "Unpicklable",
    "decode_events",
    "decode_outcomes",
    "dumps",
    "encode_events",
    "encode_outcomes",
]


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` (stdlib pickle, else cloudpickle)."""
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - whatever stdlib pickle refuses, cloudpickle tries
        import cloudpickle  # type: ignore[import-untyped,unused-ignore]

        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-any-return]
