"""The entry point: installing the distribution is all a user does."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from pathlib import Path

import daglite_diskcache
from daglite_core import default_cache_hash

CHILD = """
import sys
from daglite_core import list_plugins, session, task

info = [p for p in list_plugins() if p.name == "diskcache"]
assert len(info) == 1, list_plugins()
print(info[0].distribution, info[0].status, ",".join(info[0].hooks))

calls = []

@task(cache=True)
def double(x):
    calls.append(x)
    return 2 * x

with session(cache_store=sys.argv[1]):
    double(2)
    double(2)
print(len(calls))
"""


def test_entry_point_registers_the_plugin(cache_dir: Path, subprocess_env: dict[str, str]) -> None:
    env = {**subprocess_env, "DAGLITE_PLUGINS_AUTOLOAD": "1"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(cache_dir)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    assert first == "daglite-diskcache enabled provide_cache_store,provide_cli_commands"
    assert second == "1"


def test_public_names_are_exported_sorted() -> None:
    # Sorted as the core's: CONSTANTS, then Classes, then functions.
    names = daglite_diskcache.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    for name in daglite_diskcache.__all__:
        assert getattr(daglite_diskcache, name) is not None
    assert (Path(daglite_diskcache.__file__).parent / "py.typed").exists()


def test_function_identities_do_not_keep_functions_alive() -> None:
    def factory(k: int) -> object:
        def inner(x: int) -> int:
            return x + k

        return inner

    func = factory(1)
    default_cache_hash(func, {"x": 1})  # type: ignore[arg-type]
    ref = weakref.ref(func)
    del func
    gc.collect()
    assert ref() is None
