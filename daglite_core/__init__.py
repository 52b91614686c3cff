"""daglite: an eager Python task framework on a thin pluggy hook system.

Everything public is importable from here; implementation modules are private.
"""

from __future__ import annotations

from typing import Any

from ._context import current_metadata
from ._datasets import load_dataset, save_dataset
from ._errors import (
    BackendError,
    DagliteError,
    MapError,
    MissingPluginError,
    PluginError,
    TaskError,
    TaskTimeoutError,
)
from ._hashing import default_cache_hash
from ._hookspecs import hookimpl, hookspec
from ._lifecycle import CacheWarning
from ._map import gather_tasks, map_tasks, run_coroutine
from ._metadata import TaskMetadata
from ._plugins import (
    PluginInfo,
    add_hookspecs,
    call_hook,
    list_plugins,
    register_plugins,
    unregister_plugins,
)
from ._protocols import (
    CACHE_MISS,
    Backend,
    CacheStore,
    DatasetFormat,
    DatasetStore,
    ItemRunner,
    Outcome,
    RemoteBatch,
    Reporter,
    WorkItem,
)
from ._session import Workflow, active_session, async_session, session, workflow
from ._settings import DagliteSettings
from ._task import AsyncTask, AsyncTaskStream, BaseTask, SyncTask, SyncTaskStream, find_task, task

__all__ = [
    "AsyncTask",
    "AsyncTaskStream",
    "Backend",
    "BackendError",
    "BaseTask",
    "CACHE_MISS",
    "CacheStore",
    "CacheWarning",
    "DagliteError",
    "DagliteSettings",
    "DatasetFormat",
    "DatasetStore",
    "ItemRunner",
    "MapError",
    "MissingPluginError",
    "Outcome",
    "PluginError",
    "PluginInfo",
    "RemoteBatch",
    "Reporter",
    "SyncTask",
    "SyncTaskStream",
    "TaskError",
    "TaskMetadata",
    "TaskTimeoutError",
    "WorkItem",
    "Workflow",
    "active_session",
    "add_hookspecs",
    "async_session",
    "call_hook",
    "current_metadata",
    "default_cache_hash",
    "find_task",
    "gather_tasks",
    "hookimpl",
    "hookspec",
    "list_plugins",
    "load_dataset",
    "map_tasks",
    "register_plugins",
    "run_coroutine",
    "save_dataset",
    "session",
    "task",
    "unregister_plugins",
    "workflow",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("daglite-core")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            return "0+unknown"
    msg = f"module 'daglite_core' has no attribute {name!r}"
    raise AttributeError(msg)
