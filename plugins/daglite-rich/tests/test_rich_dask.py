"""RichProgress on the dask backend (daglite-dask): skipped when it is not installed."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import pytest

from daglite_core import MapError, map_tasks, session, task
from daglite_rich import Failure, RichProgress

daglite_dask = pytest.importorskip("daglite_dask")


@task
def nap(x: int) -> int:
    time.sleep(0.2)
    if x == 3:
        raise ValueError("three")
    return x


@task(retries=1)
def nap_retried(x: int) -> int:
    return nap.func(x)


@pytest.mark.parametrize("watched", [False, True], ids=["counted", "watched"])
def test_dask_items_move_the_bars_while_they_run(watched: bool) -> None:
    """Counted items (a plain task) move the bar as results come back; watched ones (a
    task with options) also show as running, their events relayed live."""
    mapped = nap_retried if watched else nap
    out = io.StringIO()
    progress = RichProgress(file=out)
    seen: list[tuple[Any, int]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            model = progress._model
            if model is not None:
                snap = model.snapshot()
                seen.append(([b.finished for b in snap.bars if not b.done], snap.running_count))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    with session(backend=daglite_dask.DaskBackend(processes=False), plugins=[progress]):
        watcher.start()
        try:
            with pytest.raises(MapError):
                map_tasks(mapped, range(8))
        finally:
            stop.set()
            watcher.join()
    assert any(bars and 0 < bars[0] < 8 for bars, _ in seen), seen
    if watched:  # the core counts counted items only when they come back: none run for it
        assert any(running > 0 for _, running in seen), seen
    name = mapped.name
    row = progress.summary_rows()[0]
    assert (row.task, row.calls, row.retries, row.failures) == (name, 8, 1 if watched else 0, 1)
    assert progress.failures() == [Failure(f"{name}[3]", "ValueError: three", 3)]
    assert f"[daglite] {name}: 8/8 (100%), 1 failed, done in " in out.getvalue()
