"""What ``import daglite_core`` and a first session load (issue 17.4), checked without timing.

The ``startup`` benchmark measures the cost; these tests pin down its causes in a
fresh interpreter (``sys.modules``), so a module that creeps back onto the import
path fails here on any machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import daglite_core
from daglite_core._lazy import on_first_use

NOT_ON_IMPORT = (
    "daglite_core._settings",  # attrs class DagliteSettings: created by the first session
    "daglite_core._metadata",  # attrs class TaskMetadata: the first observed call
    "daglite_core._lifecycle",  # the first call that leaves the fast path
    "daglite_core._protocols",  # attrs records and runtime protocols: typing, maps
    "daglite_core._hooks._info",  # PluginInfo: daglite plugins / list_plugins()
    "daglite_core._hooks._entry_points",  # the first session
    "daglite_core._backends",
    "daglite_core._datasets",  # load_dataset / save_dataset, a task with dataset=
    "daglite_core._miss",
    "daglite_core._records",  # uuid (and its C extension): the first session, id or observed call
    "uuid",
    "asyncio", "logging", "concurrent.futures", "queue", "importlib.metadata", "pickle", "hashlib",
)

NOT_ON_FAST_CALL = (
    "daglite_core._metadata", "daglite_core._lifecycle", "daglite_core._protocols", "daglite_core._hooks._info",
    "daglite_core._datasets", "daglite_core._miss",
    "asyncio", "logging", "concurrent.futures", "queue", "importlib.metadata",
)


def _new_modules(code: str) -> set[str]:
    program = f"import json, sys\nbefore = set(sys.modules)\n{code}\nprint(json.dumps(sorted(set(sys.modules) - before)))\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGLITE_")}
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, check=True)
    return set(json.loads(done.stdout))


def test_import_loads_only_what_defining_and_calling_tasks_needs() -> None:
    imported = _new_modules("import daglite_core")
    assert "daglite_core._task" in imported
    assert sorted(imported & set(NOT_ON_IMPORT)) == []


def test_a_session_and_a_fast_call_load_no_lifecycle_metadata_or_pools() -> None:
    imported = _new_modules(
        "from daglite_core import session, task\n"
        "with session():\n"
        "    assert task(lambda x: x + 1)(1) == 2\n"
    )
    assert "daglite_core._settings" in imported
    assert sorted(imported & set(NOT_ON_FAST_CALL)) == []


def test_lazy_names_are_the_defining_modules_objects() -> None:
    from daglite_core import _lifecycle, _metadata, _settings
    from daglite_core._hooks import _info

    assert daglite_core.TaskMetadata is _metadata.TaskMetadata
    assert daglite_core.DagliteSettings is _settings.DagliteSettings
    assert daglite_core.CacheWarning is _lifecycle.CacheWarning
    assert daglite_core.PluginInfo is _info.PluginInfo


def test_id_state_is_read_live_and_matches_new_id() -> None:
    """``_records.id_state()`` gives what ``new_id`` uses, read at the call (a forked child rebinds it)."""
    import os

    from daglite_core import _records

    prefix, counter = _records.id_state()
    made = _records.new_id()
    assert made.int >> 64 == prefix >> 64
    assert (prefix | next(counter)) == made.int + 1  # one counter behind both
    if hasattr(os, "fork"):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.write(write, str(_records.id_state()[0]).encode())
            os._exit(0)
        os.close(write)
        child_prefix = int(os.read(read, 100))
        os.waitpid(pid, 0)
        os.close(read)
        assert child_prefix != prefix


def test_on_first_use_imports_on_first_attribute_and_rebinds_the_global() -> None:
    from daglite_core import _miss

    namespace: dict[str, object] = {"__package__": "daglite_core"}
    namespace["_miss"] = stand_in = on_first_use(namespace, "_miss")
    assert "imported on first use" in repr(stand_in)
    assert stand_in.CACHE_MISS is _miss.CACHE_MISS
    assert namespace["_miss"] is _miss  # later uses find the module itself
    with pytest.raises(AttributeError):
        stand_in.missing  # noqa: B018 - the lookup is the test


def test_task_calls_use_the_lifecycle_module_itself_once_loaded() -> None:
    import asyncio

    from daglite_core import _lifecycle, _task

    async def double(x: int) -> int:
        return 2 * x

    assert asyncio.run(daglite_core.task(double)(2)) == 4  # async calls always take the lifecycle
    assert _task._lifecycle is _lifecycle
