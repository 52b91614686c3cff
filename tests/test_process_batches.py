"""How a process map's items travel in batches and come back: ``WorkItems`` with the
map's indices, ``Outcomes`` (values and failures) put in place by slices, and the one
event-flusher thread a worker process keeps for every batch that relays events.

Tasks are module-level so that they pickle by reference.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import pytest

import daglite_core as d
from daglite_core._map import Fanout
from daglite_core._process import strided_batches
from daglite_core._process._worker import _Relay
from daglite_core._protocols import Outcome, Outcomes, WorkItem, WorkItems
from daglite_core.testing import RecordingPlugin

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


@d.task
def fails_on_sevens(x: int) -> int:
    if x % 7 == 0:
        msg = f"seven divides {x}"
        raise ValueError(msg)
    return x * 10


def _failure(tag: str) -> Outcome:
    return Outcome(False, error=ValueError(tag))


# -- Outcomes ----------------------------------------------------------------------


def test_outcomes_read_as_the_records_they_stand_for() -> None:
    failed = _failure("one")
    outcomes = Outcomes([10, None, 30], {1: failed})
    assert list(outcomes) == [Outcome(True, 10), failed, Outcome(True, 30)]
    assert outcomes[0] == Outcome(True, 10)
    assert outcomes[1] is failed
    assert outcomes[-1] == Outcome(True, 30)
    assert outcomes[1:] == [failed, Outcome(True, 30)]
    assert len(outcomes) == 3
    with pytest.raises(IndexError):
        outcomes[3]


def test_outcomes_of_a_list_keeps_values_and_failures_apart() -> None:
    failed = _failure("two")
    made = Outcomes.of([Outcome(True, "a"), failed, Outcome(True, None)])
    assert made.values == ["a", None, None]
    assert made.failures == {1: failed}
    assert Outcomes.of(made) is made


def test_outcomes_add_appends_a_value_or_a_failure() -> None:
    outcomes = Outcomes()
    outcomes.add(Outcome(True, 5))
    failed = _failure("x")
    outcomes.add(failed)
    assert outcomes.values == [5, None]
    assert outcomes.failures == {1: failed}


def test_put_places_a_strided_batch_and_its_failures_by_position() -> None:
    whole = Outcomes([None] * 10)
    failed = _failure("at 4")
    whole.put(range(1, 10, 3), Outcomes([1, None, 7], {1: failed}))
    whole.put((0, 9), Outcomes(["first", "last"]))
    assert whole.values == ["first", 1, None, None, None, None, None, 7, None, "last"]
    assert whole.failures == {4: failed}


def test_put_refuses_a_batch_of_another_length() -> None:
    whole = Outcomes([None] * 6)
    with pytest.raises(ValueError, match="size"):
        whole.put(range(0, 6, 2), Outcomes([1, 2]))
    with pytest.raises(ValueError, match="shorter"):
        whole.put((0, 1, 2), Outcomes([1, 2]))


def test_work_items_keep_the_indices_they_are_given() -> None:
    items = WorkItems([(1,), (2,), (3,)], range(4, 13, 4))
    assert list(items) == [WorkItem(4, (1,)), WorkItem(8, (2,)), WorkItem(12, (3,))]
    assert items[-1] == WorkItem(12, (3,))
    assert items[:2] == [WorkItem(4, (1,)), WorkItem(8, (2,))]
    assert list(WorkItems([("a",), ("b",)])) == [WorkItem(0, ("a",)), WorkItem(1, ("b",))]


def test_a_strided_batch_goes_out_as_a_range_and_one_slice_of_the_arguments() -> None:
    args = [(i,) for i in range(10)]
    batches = strided_batches(WorkItems(args), 4)
    assert [b.wire() for b in batches] == [
        (range(0, 10, 3), [(0,), (3,), (6,), (9,)]),
        (range(1, 10, 3), [(1,), (4,), (7,)]),
        (range(2, 10, 3), [(2,), (5,), (8,)]),
    ]


# -- end to end ----------------------------------------------------------------------


def test_a_large_process_map_puts_every_value_and_failure_at_its_index() -> None:
    # 2,000 items on 2 workers: 8 strided batches of 250, each with failures in it.
    with d.session(backend="process", settings=d.DagliteSettings(max_workers=2)), pytest.raises(d.MapError) as caught:
        d.map_tasks(fails_on_sevens, range(2000))
    error = caught.value
    assert error.failed_indexes == [i for i in range(2000) if i % 7 == 0]
    assert all(str(e.error) == f"seven divides {i}" for i, e in error.errors.items())  # type: ignore[attr-defined]
    with d.session(backend="process", settings=d.DagliteSettings(max_workers=2)):
        values = list(range(1, 2000, 7)) + list(range(2, 2000, 7))
        assert d.map_tasks(fails_on_sevens, values) == [v * 10 for v in values]
        streamed = dict(d.iter_tasks(fails_on_sevens, values, ordered=False))
        assert streamed == {i: v * 10 for i, v in enumerate(values)}


# -- the event flusher ---------------------------------------------------------------


def _flushers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "daglite-event-flusher"]


def test_batches_share_one_flusher_thread_per_process() -> None:
    recorder = RecordingPlugin(hooks=["after_node_execute"])  # the relay records items compactly
    with d.session(backend="process", plugins=[recorder]):
        fan = Fanout(fails_on_sevens, [range(1, 4)], "process")
        remote: Any = fan.runner.remote()
        emitted: list[Any] = []
        before = len(_flushers())
        for _ in range(5):
            batch = remote(WorkItems([(1,), (2,), (3,)]), emitted.extend)
            assert [o.value for o in batch.outcomes] == [10, 20, 30]
            assert batch.events == []  # handed to emit before the batch returned
        assert len(_flushers()) == max(before, 1)
        fan.runner.replay(emitted)
    assert [c["metadata"].map_index for c in recorder.calls] == [0, 1, 2] * 5


def test_an_emit_that_raises_stops_the_live_relay_and_raises_at_the_end() -> None:
    recorder = RecordingPlugin(hooks=["after_node_execute"])
    with d.session(backend="process", plugins=[recorder]):
        fan = Fanout(fails_on_sevens, [range(1, 2)], "process")
        remote: Any = fan.runner.remote()

        def broken(events: list[Any]) -> None:
            msg = "the pipe is gone"
            raise OSError(msg)

        with pytest.raises(OSError, match="the pipe is gone"):
            remote(WorkItems([(1,)]), broken)
        # The process's flusher is not harmed: the next batch relays again.
        emitted: list[Any] = []
        remote(WorkItems([(2,)]), emitted.extend)
        fan.runner.replay(emitted)
    assert [(c["metadata"].map_index, c["result"]) for c in recorder.calls] == [(0, 20)]


def test_nothing_is_handed_on_after_a_batch_ended() -> None:
    # An abandoned timed-out attempt may still record into its batch's events after
    # the batch's reply left: the flusher's thread must not send them.
    events: deque[Any] = deque([("before_node_execute", ())])
    emitted: list[Any] = []
    relay = _Relay(events, emitted.extend)
    relay.close()
    events.append(("after_node_execute", ()))
    relay.flush()
    assert emitted == [("before_node_execute", ())]
