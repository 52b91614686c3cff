"""Protocols for what plugins supply: cache stores, dataset stores and formats, backends.

The core only ever talks to these through the methods below; plugins provide
concrete classes through the ``provide_*`` hooks (see :mod:`daglite_core._hooks._specs`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any, ClassVar, Protocol, overload, runtime_checkable

import attrs

from ._miss import CACHE_MISS
from ._records import fast_constructor

__all__ = ["CACHE_MISS"]  # re-exported for plugins that import it from here


@runtime_checkable
class Reporter(Protocol):
    """Sends an event from a hook implementation to the session's own process.

    Received there by the ``on_report`` hook. From a process worker, events travel
    over the worker's pipe and arrive in order with the item's other events.
    """

    def report(self, event: str, data: Any = None) -> None:
        """Send ``event`` with ``data`` (which must pickle for process workers)."""


@runtime_checkable
class CacheStore(Protocol):
    """Where ``cache=True`` task results are kept.

    Implementations must be safe to use from several threads and, when they are
    persistent, from several processes; they must pickle (to reach process
    workers), typically as their location only.
    """

    def get(self, key: str) -> Any:
        """Return the value under ``key``, or :data:`CACHE_MISS`.

        An entry that cannot be read (corrupt, tampered, class gone) must be
        removed and reported by raising an exception whose message says why; the
        core turns it into one warning naming the task and key, and a miss.
        """

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, expiring after ``ttl`` seconds if given.

        A crash mid-write must never leave a partial entry readable. Raising is
        allowed (disk full, unpicklable value): the core warns, naming the task,
        and the caller still gets the result.
        """


@runtime_checkable
class DatasetFormat(Protocol):
    """One file format of the dataset registry (pickle, json, csv, ...)."""

    name: str
    """The format's name, as given in ``format=``."""
    extensions: tuple[str, ...]
    """File extensions (with the dot) that select this format by default."""

    def save(self, value: Any, file: IO[bytes], options: Mapping[str, Any]) -> None:
        """Write ``value`` to the binary file ``file``; raise if it cannot hold it."""

    def load(self, file: IO[bytes], return_type: type | None, options: Mapping[str, Any]) -> Any:
        """Read a value from the binary file ``file``."""


@runtime_checkable
class DatasetStore(Protocol):
    """Where datasets (``save_dataset``, ``@task(dataset=...)``) are kept."""

    def resolve(self, key: str, format: str | None = None) -> tuple[str, str]:
        """Validate ``key`` and choose its format; return ``(key, format_name)``.

        Must raise ``ValueError`` naming the key when it is unsafe (would leave the
        store) and naming the format (and the known ones) when it is unknown. Called
        before the task body runs for keys built from a ``dataset=`` template.
        """

    def save(
        self, key: str, value: Any, *, format: str, options: Mapping[str, Any] | None = None
    ) -> None:
        """Write ``value`` under the resolved ``key`` atomically."""

    def load(
        self,
        key: str,
        return_type: type | None = None,
        *,
        format: str,
        options: Mapping[str, Any] | None = None,
    ) -> Any:
        """Read the value under the resolved ``key``."""

    def exists(self, key: str) -> bool:
        """Whether a dataset is stored under ``key``."""

    def delete(self, key: str) -> None:
        """Remove the dataset under ``key`` (no error when absent)."""

    def list(self, prefix: str = "") -> Sequence[str]:
        """Keys stored under ``prefix``, sorted."""


@runtime_checkable
class Backend(Protocol):
    """Runs the items of a :func:`~daglite_core.map_tasks` call.

    A backend class is supplied by the ``provide_backends`` hook, instantiated
    once per session (``cls(settings)``) when first used, and closed when the
    session ends.
    """

    name: ClassVar[str]
    """The name users pass as ``backend=``."""
    aliases: ClassVar[tuple[str, ...]]
    """Other accepted names."""

    def run(self, runner: ItemRunner, items: Sequence[WorkItem]) -> Sequence[Outcome]:
        """Run every item and return one outcome per item, in input order.

        Any sequence of outcomes: a list, or an :class:`Outcomes` (values and
        failures, what a remote batch comes back as). In-process backends call
        ``runner(item)`` (from any thread). Backends that
        run items in other processes send ``runner.remote()`` there, call it with a
        batch of items, bring the :class:`RemoteBatch` back and pass it to
        ``runner.absorb``; an item lost to a dead or killed worker is answered with
        ``runner.fail(item, error)``.
        """

    def close(self) -> None:
        """Release workers; called once when the session ends."""

    # Optional: ``stream(runner, items) -> Iterator[tuple[int, Outcome]]`` yields
    # ``(position in items, outcome)`` as items finish, in any order, each item
    # once; closing the iterator early should stop items that have not started.
    # ``iter_tasks`` uses it when present, else ``run``. Not part of the protocol
    # class so that backends without it still satisfy ``isinstance`` checks.


@attrs.frozen(slots=True)
class WorkItem:
    """One item of a fan-out: its position and its positional arguments."""

    index: int
    args: tuple[Any, ...]


new_item = fast_constructor(WorkItem)
"""``WorkItem(index, args)`` for building one per map item (see :mod:`daglite_core._records`)."""


class WorkItems(Sequence[WorkItem]):
    """Items made on access: item ``i`` is ``WorkItem(indices[i], args[i])``.

    A 100,000-item map would otherwise build every record before its first item
    could start; backends read them as they send or run them. ``indices``
    defaults to ``range(len(args))`` (a fan-out's own items); a batch of them
    sent to a worker keeps the map's indices (a ``range`` for a strided batch).
    """

    __slots__ = ("args", "indices")

    def __init__(self, args: list[tuple[Any, ...]], indices: Sequence[int] | None = None) -> None:
        self.args = args
        self.indices: Sequence[int] = range(len(args)) if indices is None else indices

    def __len__(self) -> int:
        return len(self.args)

    @overload
    def __getitem__(self, index: int) -> WorkItem: ...
    @overload
    def __getitem__(self, index: slice) -> list[WorkItem]: ...
    def __getitem__(self, index: int | slice) -> WorkItem | list[WorkItem]:
        if isinstance(index, slice):
            return list(map(new_item, self.indices[index], self.args[index]))
        return new_item(self.indices[index], self.args[index])

    def __iter__(self) -> Iterator[WorkItem]:
        return map(new_item, self.indices, self.args)

    def __repr__(self) -> str:
        return f"<WorkItems of {len(self.args)}>"


@attrs.frozen(slots=True)
class Outcome:
    """An item's outcome: ``ok`` and either ``value`` or ``error`` (a :class:`TaskError`)."""

    ok: bool
    value: Any = None
    error: BaseException | None = None


new_outcome = fast_constructor(Outcome)
"""``Outcome(ok, value=None, error=None)`` for building one per map item."""


class Outcomes(Sequence[Outcome]):
    """Outcomes held as their values and their failures: item ``i`` is ``Outcome(True, values[i])``
    unless ``failures`` has ``i``.

    What batches of results travel and are assembled as: a worker appends each
    value, the session's process puts a whole batch's values in place with one
    slice assignment (:meth:`put`) and ``map_tasks`` takes the values list as it
    is. A 100,000-item process map then builds no record per item (each was about
    a third of a microsecond, and a tracked object the garbage collector walks).
    ``values[i]`` of a failed item is ``None``.
    """

    __slots__ = ("failures", "values")

    def __init__(self, values: list[Any] | None = None, failures: dict[int, Outcome] | None = None) -> None:
        self.values: list[Any] = [] if values is None else values
        self.failures: dict[int, Outcome] = {} if failures is None else failures

    @classmethod
    def of(cls, outcomes: Sequence[Outcome]) -> Outcomes:
        """``outcomes`` as an :class:`Outcomes` (itself when it is one)."""
        if type(outcomes) is Outcomes:
            return outcomes
        # Two comprehensions: a pass in C each, where add() is a Python call per item.
        return cls([o.value for o in outcomes], {i: o for i, o in enumerate(outcomes) if not o.ok})

    def add(self, outcome: Outcome) -> None:
        """Append ``outcome`` (a successful one is appended as its value)."""
        if not outcome.ok:
            self.failures[len(self.values)] = outcome
        self.values.append(outcome.value)

    def put(self, positions: Sequence[int], outcomes: Outcomes) -> None:
        """Set the outcomes at ``positions`` (a ``range`` goes in as one slice assignment)."""
        if type(positions) is range:
            self.values[positions.start : positions.stop : positions.step] = outcomes.values
        else:
            values = self.values
            for position, value in zip(positions, outcomes.values, strict=True):
                values[position] = value
        for at, failure in outcomes.failures.items():
            self.failures[positions[at]] = failure

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> Outcome: ...
    @overload
    def __getitem__(self, index: slice) -> list[Outcome]: ...
    def __getitem__(self, index: int | slice) -> Outcome | list[Outcome]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self.values))[index]]
        if index < 0:
            index += len(self.values)
        failure = self.failures.get(index)
        return failure if failure is not None else new_outcome(True, self.values[index])

    def __iter__(self) -> Iterator[Outcome]:
        if not self.failures:
            return map(new_outcome, itertools.repeat(True), self.values)
        return map(self.__getitem__, range(len(self.values)))

    def __repr__(self) -> str:
        return f"<Outcomes of {len(self.values)}, {len(self.failures)} failed>"


@attrs.frozen(slots=True)
class RemoteBatch:
    """What a remote runner returns for a batch.

    :ivar outcomes: one per item, in the batch's order.
    :ivar events: hook calls to replay in the session's process, in order:
        ``(hook_name, args)`` with the reporter argument set to ``None``.
    :ivar retire: the worker abandoned a timed-out thread that may still run;
        the backend should replace the worker.
    """

    outcomes: Sequence[Outcome]
    events: list[tuple[str, tuple[Any, ...]]] = attrs.field(factory=list)
    retire: bool = False


class ItemRunner(Protocol):
    """Runs one item through the task lifecycle (given to :meth:`Backend.run`)."""

    timeout: float | None
    """The task's per-attempt timeout, which out-of-process backends enforce by
    killing the worker when a batch of one item overruns it."""

    def __call__(self, item: WorkItem) -> Outcome:
        """Run ``item`` in this process (any thread) with the session's hooks."""

    map_id: Any
    """The fan-out's id (``TaskMetadata.map_id`` of its items)."""

    def remote(self) -> RemoteRunner:
        """A picklable runner for other processes."""

    def replay(self, events: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """Fire events a remote runner emitted on this session's plugins, in order."""

    def absorb(self, batch: RemoteBatch) -> Sequence[Outcome]:
        """Replay a remote batch's events to this session's plugins; return outcomes."""

    def fail(self, item: WorkItem, error: BaseException) -> Outcome:
        """The outcome of an item whose worker died or was killed (fires ``on_node_error``)."""


class RemoteRunner(Protocol):
    """Picklable; called in a worker process with a batch of items."""

    def __call__(
        self, items: Sequence[WorkItem], emit: Callable[[list[tuple[str, tuple[Any, ...]]]], None] | None = None
    ) -> RemoteBatch:
        """Run ``items``; return their outcomes (and their events when ``emit`` is ``None``).

        With ``emit``, the items' hook events are handed to it in chunks while the
        items run (from a helper thread, about every 20 ms, and once more before
        this returns): a backend sends them to the session's process, where
        :meth:`ItemRunner.replay` fires them. ``RemoteBatch.events`` is then empty.
        """

