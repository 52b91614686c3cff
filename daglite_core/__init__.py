"""daglite: an eager Python task framework on a thin pluggy hook system.

Everything public is importable from here; implementation modules are private.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._context import bind_session, call_hook, current_metadata
from ._errors import (
    BackendError,
    DagliteError,
    MapError,
    MissingPluginError,
    PluginError,
    TaskError,
    TaskTimeoutError,
)
from ._hooks import (
    add_hookspecs,
    hookimpl,
    hookspec,
    list_plugins,
    register_plugins,
    remove_hookspecs,
    unregister_plugins,
)
from ._hooks import set_builtin_plugin as _set_builtin_plugin
from ._session import Workflow, active_session, async_session, session, workflow
from ._task import AsyncTask, AsyncTaskStream, BaseTask, SyncTask, SyncTaskStream, find_task, task


def _builtin_plugin() -> object:
    from ._builtin import BUILTIN

    return BUILTIN


_set_builtin_plugin(_builtin_plugin)  # the core's backends, imported on first plugin load

if TYPE_CHECKING:
    from ._datasets import load_dataset, save_dataset
    from ._execute import run_coroutine
    from ._hashing import default_cache_hash
    from ._hooks._info import PluginInfo
    from ._lazy import lazy_exports
    from ._lifecycle import CacheWarning
    from ._map import aiter_tasks, gather_tasks, iter_tasks, map_tasks
    from ._metadata import TaskMetadata
    from ._miss import CACHE_MISS
    from ._process._wire import (
        RemoteError,
        RemoteTraceback,
        Unpicklable,
        pack_batch,
        pack_events,
        unpack_batch,
        unpack_events,
    )
    from ._protocols import (
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
    from ._settings import DagliteSettings

# Imported on first use (PEP 562): what defining and calling tasks does not need stays
# off `import daglite_core`: fan-out, protocols, hashing, datasets, and the attrs
# records (attrs compiles each class's methods, ~1 ms apiece): DagliteSettings comes
# with the first session, TaskMetadata and CacheWarning with the first call that leaves
# the fast path. tests/test_startup.py checks what an import and a first call load.
_LAZY = {
    "Backend": "_protocols",
    "CACHE_MISS": "_miss",
    "CacheStore": "_protocols",
    "CacheWarning": "_lifecycle",
    "DagliteSettings": "_settings",
    "DatasetFormat": "_protocols",
    "DatasetStore": "_protocols",
    "ItemRunner": "_protocols",
    "Outcome": "_protocols",
    "PluginInfo": "_hooks._info",
    "RemoteBatch": "_protocols",
    "RemoteError": "_process._wire",
    "RemoteTraceback": "_process._wire",
    "Reporter": "_protocols",
    "TaskMetadata": "_metadata",
    "Unpicklable": "_process._wire",
    "WorkItem": "_protocols",
    "default_cache_hash": "_hashing",
    "aiter_tasks": "_map",
    "gather_tasks": "_map",
    "iter_tasks": "_map",
    "lazy_exports": "_lazy",
    "load_dataset": "_datasets",
    "map_tasks": "_map",
    "pack_batch": "_process._wire",
    "pack_events": "_process._wire",
    "unpack_batch": "_process._wire",
    "unpack_events": "_process._wire",
    "run_coroutine": "_execute",
    "save_dataset": "_datasets",
}

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
    "RemoteError",
    "RemoteTraceback",
    "Reporter",
    "SyncTask",
    "SyncTaskStream",
    "TaskError",
    "TaskMetadata",
    "TaskTimeoutError",
    "Unpicklable",
    "WorkItem",
    "Workflow",
    "active_session",
    "add_hookspecs",
    "aiter_tasks",
    "async_session",
    "bind_session",
    "call_hook",
    "current_metadata",
    "default_cache_hash",
    "find_task",
    "gather_tasks",
    "hookimpl",
    "hookspec",
    "iter_tasks",
    "lazy_exports",
    "list_plugins",
    "load_dataset",
    "map_tasks",
    "pack_batch",
    "pack_events",
    "register_plugins",
    "remove_hookspecs",
    "run_coroutine",
    "save_dataset",
    "session",
    "task",
    "unpack_batch",
    "unpack_events",
    "unregister_plugins",
    "workflow",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value
        return value
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("daglite-core")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            return "0+unknown"
    msg = f"module 'daglite_core' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
