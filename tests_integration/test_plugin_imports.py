"""Installed plugins cost the cold start no heavy import (issue 17.3), checked without timing.

Every process that opens a session loads every installed entry point, so an entry
point must import nothing heavy: each plugin imports its third-party dependencies
and its own large modules on first use. Checked in a fresh interpreter by looking
at ``sys.modules``, so a regression fails here on any machine, however fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = {
    "callbacks": ("sqlite3", "argparse", "logging", "daglite_callbacks._outbox", "daglite_callbacks._cli"),
    "dask": ("dask", "distributed", "daglite_dask._backend"),
    "datasets": ("csv", "pandas", "numpy", "pyarrow", "daglite_datasets._store", "daglite_datasets._formats"),
    "diskcache": ("diskcache", "sqlite3", "argparse", "daglite_diskcache._store", "daglite_diskcache._cli"),
    "retry": (
        "logging", "argparse", "random", "fnmatch",
        "daglite_retry._records", "daglite_retry._policies", "daglite_retry._policy", "daglite_retry._log",
    ),
    "rich": ("rich", "logging", "daglite_rich._plugin"),
}
"""What each entry point must not import: its dependencies and the modules holding them."""

CORE_LATER = (
    "daglite_core._lifecycle", "daglite_core._metadata", "daglite_core._protocols", "daglite_core._hooks._info",
    "concurrent.futures", "queue", "asyncio", "importlib.metadata",
)
"""What a session and a plain task call on the fast path do not need from the core either."""

COLD = """
import json, sys
before = set(sys.modules)  # what the interpreter and site (editable installs) imported
from daglite_core import session, task

def add(x, y):
    return x + y

with session():
    assert task(add)(1, 2) == 3
print(json.dumps(sorted(set(sys.modules) - before)))
"""

LOAD = """
import importlib.metadata, json, sys
from daglite_core import session  # what the core imports itself is not the plugin's
(ep,) = [e for e in importlib.metadata.entry_points(group="daglite") if e.name == sys.argv[1]]
before = set(sys.modules)
ep.load()
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def _run(code: str, *args: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGLITE_")}  # DAGLITE_PROGRESS, ...
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("name", sorted(HEAVY))
def test_loading_the_entry_point_imports_nothing_heavy(name: str) -> None:
    imported = _run(LOAD, name)
    assert any(module.startswith(f"daglite_{name}") for module in imported)  # it did load
    assert sorted(imported & set(HEAVY[name])) == []


def test_cold_start_with_every_plugin_imports_nothing_heavy() -> None:
    """Import, first session (every entry point loaded) and a first task call.

    The session asks every plugin for its backend classes: daglite-dask's module
    holding ``DaskBackend`` is imported then (not ``distributed``).
    """
    imported = _run(COLD)
    assert {f"daglite_{name}" for name in HEAVY} <= imported  # every plugin was loaded
    heavy = {module for modules in HEAVY.values() for module in modules} | set(CORE_LATER)
    assert sorted(imported & heavy - {"daglite_dask._backend"}) == []
