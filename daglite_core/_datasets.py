"""``save_dataset`` / ``load_dataset``: the dataset store, seen through the hooks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._context import FRAME, current_state, frame_metadata
from ._templates import fill_key, has_placeholders

if TYPE_CHECKING:
    from ._context import SessionState
    from ._metadata import TaskMetadata
    from ._protocols import DatasetStore

T = TypeVar("T")


def save_resolved(
    state: SessionState,
    store: DatasetStore,
    key: str,
    format: str,
    value: Any,
    options: dict[str, Any],
    metadata: TaskMetadata | None,
) -> None:
    """Save under an already resolved key and format, firing the dataset hooks."""
    plugins = state.plugins
    plugins.notify("before_dataset_save", key, value, format, options, metadata)
    store.save(key, value, format=format, options=options)
    plugins.notify("after_dataset_save", key, value, format, options, metadata)


def _resolve(key: str, format: str | None, store: Any, what: str) -> tuple[SessionState, DatasetStore, str, str, TaskMetadata | None]:
    state = current_state()
    frame = FRAME.get()
    metadata = None
    if frame is not None:
        metadata = frame_metadata(frame)
        inputs = metadata.inputs if metadata is not None else frame.task.bind(frame.args, frame.kwargs)
        key = fill_key(key, inputs, frame.map_index, what)
    elif has_placeholders(key):
        msg = f"{what}: the key has placeholders, which are filled from a running task's arguments, but no task is running"
        raise ValueError(msg)
    resolved_store = state.dataset_store(store, what)
    resolved, fmt = resolved_store.resolve(key, format)
    return state, resolved_store, resolved, fmt, metadata


def save_dataset(
    key: str,
    value: Any,
    *,
    format: str | None = None,
    store: Any = None,
    options: Mapping[str, Any] | None = None,
) -> str:
    """Save ``value`` as a dataset and return the key it was stored under.

    Inside a running task, ``{param}`` and ``{map_index}`` placeholders in ``key``
    are filled from the task's arguments; outside one, a placeholder is an error.
    ``format`` defaults to the one the key's extension selects; ``store`` to the
    session's dataset store.
    """
    state, st, resolved, fmt, metadata = _resolve(key, format, store, f"save_dataset({key!r})")
    save_resolved(state, st, resolved, fmt, value, dict(options or {}), metadata)
    return resolved


@overload
def load_dataset(key: str, return_type: type[T], *, format: str | None = ..., store: Any = ..., options: Mapping[str, Any] | None = ...) -> T: ...
@overload
def load_dataset(key: str, return_type: None = ..., *, format: str | None = ..., store: Any = ..., options: Mapping[str, Any] | None = ...) -> Any: ...


def load_dataset(
    key: str,
    return_type: type[Any] | None = None,
    *,
    format: str | None = None,
    store: Any = None,
    options: Mapping[str, Any] | None = None,
) -> Any:
    """Load the dataset under ``key`` (placeholders filled as in :func:`save_dataset`)."""
    state, st, resolved, fmt, metadata = _resolve(key, format, store, f"load_dataset({key!r})")
    opts = dict(options or {})
    plugins = state.plugins
    plugins.notify("before_dataset_load", resolved, return_type, fmt, opts, metadata)
    started = time.perf_counter()
    result = st.load(resolved, return_type, format=fmt, options=opts)
    plugins.notify(
        "after_dataset_load", resolved, return_type, fmt, opts, result, time.perf_counter() - started, metadata
    )
    return result
