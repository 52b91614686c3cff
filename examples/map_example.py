"""Fan-out: ``map_tasks`` and ``gather_tasks``.

    python examples/map_example.py
    daglite run examples/map_example.py:map_demo --backend thread --n 8

Shows: ``map_tasks`` over several iterables (zipped) on the session's backend
(``--backend inline|thread|process``), results in input order; ``{map_index}`` in
a task name; ``before_map``/``after_map`` hooks giving progress a known total;
a failing item: every item still runs and the ``MapError`` names every failed
index; and ``gather_tasks`` running an async task's items concurrently.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from daglite_core import MapError, gather_tasks, hookimpl, map_tasks, task, workflow


class MapProgress:
    """Prints one line per fan-out, with its total and its failures."""

    @hookimpl
    def before_map(self, task_name: str, name_template: str, total: int, backend: str) -> None:
        print(f"map {task_name} ({name_template}): {total} items on {backend}", file=sys.stderr)

    @hookimpl
    def after_map(self, task_name: str, total: int, failed: int) -> None:
        print(f"map {task_name}: done, {failed} of {total} failed", file=sys.stderr)


@task(name="power-{map_index}")
def power(base: int, exponent: int) -> int:
    return base**exponent


@task
def safe_inverse(x: int) -> float:
    return 1 / x  # fails for 0


@task
async def fetch(url: str) -> int:
    await asyncio.sleep(0.01)  # stands in for network I/O
    return len(url)


@workflow(plugins=[MapProgress()])
def map_demo(n: int = 5) -> dict[str, Any]:
    """Map a task over zipped inputs, survive failing items, gather async items.

    :param n: how many items per map
    """
    powers = map_tasks(power, range(n), [2] * n)
    try:
        map_tasks(safe_inverse, [i - 1 for i in range(n)])
    except MapError as exc:
        failed = exc.failed_indexes
        print(f"caught: {exc}", file=sys.stderr)
    else:
        failed = []
    urls = [f"https://example.invalid/{'x' * i}" for i in range(n)]
    lengths = asyncio.run(gather_tasks(fetch, urls))
    return {"powers": powers, "failed_indexes": failed, "lengths": lengths}


if __name__ == "__main__":
    from daglite_core.cli import main

    sys.exit(main(["run", f"{__file__}:map_demo", *sys.argv[1:]]))
