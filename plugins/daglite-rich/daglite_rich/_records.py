"""Frozen records of a finished (or running) run: summary rows, failures, bars, running calls."""

from __future__ import annotations

import attrs


@attrs.frozen
class TaskSummary:
    """One row of the end-of-session summary, per task name.

    A mapped task's items count under the task's base name (``inc``, not ``inc[3]``).

    :ivar task: the task's name.
    :ivar calls: calls that ended: succeeded, failed or answered from the cache.
    :ivar cache_hits: calls answered from the cache (their body did not run).
    :ivar retries: retries of failed attempts (``retries=2`` failing twice then
        succeeding counts 2).
    :ivar failures: calls that failed after their last attempt.
    :ivar total_time: seconds the executed calls took, summed (cache hits excluded).
    :ivar mean_time: ``total_time`` per executed call (0.0 when none ran).
    """

    task: str
    calls: int
    cache_hits: int
    retries: int
    failures: int
    total_time: float
    mean_time: float


@attrs.frozen
class Failure:
    """A task call that failed for good.

    :ivar task: the call's resolved name (``inc[3]`` for item 3 of a map).
    :ivar error: ``"ExceptionType: message"`` of the last attempt's error.
    :ivar map_index: the item's index in its map, else ``None``.
    """

    task: str
    error: str
    map_index: int | None = None


@attrs.frozen
class MapBar:
    """A map as the live display draws it.

    :ivar name: the mapped task's base name.
    :ivar total: the number of items.
    :ivar finished: items that ended (succeeded, failed or cached).
    :ivar failed: items that failed.
    :ivar depth: 0 for a top-level map, 1 for a map run by an item (or task) of
        another map, and so on.
    :ivar elapsed: seconds since the map started (until it ended, once it has).
    :ivar done: whether ``after_map`` fired.
    """

    name: str
    total: int
    finished: int
    failed: int
    depth: int
    elapsed: float
    done: bool


@attrs.frozen
class TaskLine:
    """A task name's live counts.

    :ivar task: the task's (base) name.
    :ivar done: calls that succeeded.
    :ivar cached: calls answered from the cache.
    :ivar retried: retries.
    :ivar failed: calls that failed.
    :ivar running: calls running now.
    :ivar elapsed: seconds from its first call's start to its last call's end (or now).
    """

    task: str
    done: int
    cached: int
    retried: int
    failed: int
    running: int
    elapsed: float


@attrs.frozen
class Snapshot:
    """What the live display draws, read in one go under the model's lock.

    :ivar bars: the maps to draw, parents before their nested maps.
    :ivar hidden_bars: maps not drawn (too many).
    :ivar running: ``(name, seconds running)`` of the oldest running calls.
    :ivar running_count: how many calls run now.
    :ivar tasks: per task name counts, in order of first call.
    :ivar elapsed: seconds since the run started.
    """

    bars: tuple[MapBar, ...]
    hidden_bars: int
    running: tuple[tuple[str, float], ...]
    running_count: int
    tasks: tuple[TaskLine, ...]
    elapsed: float
