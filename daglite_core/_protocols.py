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

    def run(self, runner: ItemRunner, items: Sequence[WorkItem]) -> list[Outcome]:
        """Run every item and return one outcome per item, in input order.

        In-process backends call ``runner(item)`` (from any thread). Backends that
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
    """The items of a fan-out, made on access: item ``i`` is ``WorkItem(i, args[i])``.

    A 100,000-item map would otherwise build every record before its first item
    could start; backends read them as they send or run them.
    """

    __slots__ = ("_args",)

    def __init__(self, args: list[tuple[Any, ...]]) -> None:
        self._args = args

    def __len__(self) -> int:
        return len(self._args)

    @overload
    def __getitem__(self, index: int) -> WorkItem: ...
    @overload
    def __getitem__(self, index: slice) -> list[WorkItem]: ...
    def __getitem__(self, index: int | slice) -> WorkItem | list[WorkItem]:
        if isinstance(index, slice):
            return list(map(new_item, range(len(self._args))[index], self._args[index]))
        if index < 0:
            index += len(self._args)
        return new_item(index, self._args[index])

    def __iter__(self) -> Iterator[WorkItem]:
        return map(new_item, itertools.count(), self._args)

    def __repr__(self) -> str:
        return f"<WorkItems of {len(self._args)}>"


@attrs.frozen(slots=True)
class Outcome:
    """An item's outcome: ``ok`` and either ``value`` or ``error`` (a :class:`TaskError`)."""

    ok: bool
    value: Any = None
    error: BaseException | None = None


new_outcome = fast_constructor(Outcome)
"""``Outcome(ok, value=None, error=None)`` for building one per map item."""


@attrs.frozen(slots=True)
class RemoteBatch:
    """What a remote runner returns for a batch.

    :ivar outcomes: one per item, in the batch's order.
    :ivar events: hook calls to replay in the session's process, in order:
        ``(hook_name, args)`` with the reporter argument set to ``None``.
    :ivar retire: the worker abandoned a timed-out thread that may still run;
        the backend should replace the worker.
    """

    outcomes: list[Outcome]
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

    def absorb(self, batch: RemoteBatch) -> list[Outcome]:
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

