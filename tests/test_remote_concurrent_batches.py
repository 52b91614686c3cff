"""Remote runners: batches of one map running at once in one process keep their events apart.

A Dask worker runs several batches of a map in threads of one process (and an
in-process cluster runs all of them in the session's process); each batch's
``RemoteBatch.events`` (or ``emit`` chunks) must hold exactly its own items' events.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from daglite_core import map_tasks, session, task
from daglite_core._process._wire import ITEM_DONE
from daglite_core.testing import RecordingPlugin

BARRIER = threading.Barrier(2, timeout=10)


@task
def meet(x: int) -> int:
    """Both batches are inside an item at once (their events interleave in time)."""
    if x in (0, 2):
        BARRIER.wait()
    return x


class TwoThreadsRemote:
    """Runs a map as two remote batches at once, in two threads of this process."""

    name: ClassVar[str] = "two-threads-remote"
    aliases: ClassVar[tuple[str, ...]] = ()
    batches: ClassVar[list[tuple[list[int], list[Any]]]] = []

    def run(self, runner: Any, items: Sequence[Any]) -> list[Any]:
        remote = runner.remote()
        halves = [list(items[:2]), list(items[2:])]
        emitted: list[list[Any]] = [[], []]

        def one(k: int) -> Any:
            batch = remote(halves[k], emitted[k].extend)
            return batch, emitted[k]

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(one, range(2)))
        outcomes = []
        for k, (batch, events) in enumerate(results):
            self.batches.append(([item.index for item in halves[k]], events))
            runner.replay(events)
            outcomes += runner.absorb(batch)
        return outcomes

    def close(self) -> None:
        pass


def test_each_batch_gets_only_its_own_events() -> None:
    recorder = RecordingPlugin(hooks=["after_node_execute"])
    TwoThreadsRemote.batches.clear()
    with session(backend=TwoThreadsRemote(), plugins=[recorder]):  # type: ignore[arg-type]
        assert map_tasks(meet, range(4)) == [0, 1, 2, 3]
    for indexes, events in TwoThreadsRemote.batches:
        # Items only the relay observes travel as compact ITEM_DONE events (id, index, ...).
        seen = sorted(args[1] for hook, args in events if hook == ITEM_DONE)
        seen += sorted(args[0].map_index for hook, args in events if hook == "after_node_execute")
        assert sorted(seen) == indexes
    assert sorted(c["metadata"].map_index for c in recorder.calls) == [0, 1, 2, 3]
