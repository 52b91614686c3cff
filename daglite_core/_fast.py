"""The fast path, written once: a plain sync body run with no hook at all.

:func:`~daglite_core._execute.runs_fast` decides when a call may take it (a plain
sync task, nothing in the scope observing successful calls); :func:`run_fast`
runs it: the frame (so ``current_metadata()``, nested calls and ``reporter`` see
the call), the body, and on a failure the lifecycle
(:func:`~daglite_core._lifecycle.after_fast_failure`: failure hooks, retries, the
``TaskError``). A direct call (``SyncTask.__call__``), an in-thread map item
(``_execute.execute``) and a process worker's batch loop all call it, so a new
frame or failure rule is written here only.

Decision: one Python call more per fast call (~0.05 µs) buys the single place;
the lifecycle module is imported only when a fast call fails (the first plain
call of a process does not pay for it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._context import FRAME, Frame
from ._lazy import on_first_use

if TYPE_CHECKING:
    from . import _lifecycle
    from ._context import SessionState
    from ._task import BaseTask
else:
    _lifecycle = on_first_use(globals(), "_lifecycle")

__all__ = ["run_fast"]

_new_frame = tuple.__new__
_set, _reset = FRAME.set, FRAME.reset


def run_fast(
    task: BaseTask[..., Any],
    state: SessionState,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    map_index: int | None = None,
    backend: str = "inline",
    parent_id: Any = None,
    map_id: Any = None,
) -> Any:
    """Run ``task``'s body on ``args``/``kwargs`` in its frame; return its value.

    A failure goes on in the lifecycle, which returns the value of a successful
    retry or raises the final error.
    """
    token = _set(_new_frame(Frame, (task, args, kwargs, None, map_index, backend, map_id, parent_id, None)))
    try:
        return task.func(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - after_fast_failure retries or re-raises it
        return _lifecycle.after_fast_failure(task, state, args, kwargs, exc, map_index, backend, parent_id, map_id)
    finally:
        _reset(token)
