"""What crosses between a Dask worker and the session: outcomes and hook events, pickled.

The worker pickles a batch's outcomes (and, for the live channel, each chunk of
hook events) to ``bytes`` itself, so that what cannot travel fails only its own
item or argument instead of the whole Dask task:

* a result that cannot be pickled fails its item (a ``PicklingError`` naming the
  item and the type), and plugins see that item's ``on_node_error`` instead of
  its ``after_node_execute``;
* an error that cannot be pickled becomes a :class:`RemoteError` carrying its type,
  message and traceback;
* any other hook argument that cannot be pickled becomes an :class:`Unpicklable`
  stand-in (its type name and ``repr``).

Worker tracebacks are kept: the original error's ``__cause__`` is a
:class:`RemoteTraceback` holding the worker-side text. Pickling is stdlib pickle,
then ``cloudpickle`` (a dependency of Dask) for what stdlib pickle cannot send.
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Sequence
from typing import Any

import attrs
from daglite_core import Outcome, RemoteBatch, TaskError, TaskMetadata, WorkItem

OK, MIXED = 0, 1

Event = tuple[str, tuple[Any, ...]]


class RemoteError(Exception):
    """Stands in for an error raised in a Dask worker that could not be pickled back."""


class RemoteTraceback(Exception):
    """The ``__cause__`` of an error raised in a Dask worker: the worker-side traceback."""

    def __str__(self) -> str:
        return f"\n\nTraceback in the Dask worker:\n{self.args[0]}"


@attrs.frozen
class Unpicklable:
    """Stands in, in a relayed hook argument, for a value that could not be pickled."""

    type_name: str
    text: str


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` (stdlib pickle, else cloudpickle)."""
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        import cloudpickle  # type: ignore[import-untyped,unused-ignore]

        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-any-return]


def problem(obj: Any) -> str | None:
    """Why ``obj`` cannot be pickled, or ``None`` when it can."""
    try:
        dumps(obj)
    except Exception as exc:  # noqa: BLE001 - the reason is the answer
        return f"{type(exc).__name__}: {exc}"
    return None


def _text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def _stand_in_error(error: BaseException) -> BaseException:
    if isinstance(error, TaskError):
        inner = RemoteError(f"{type(error.error).__qualname__}: {error.error}\n{_text(error.error)}")
        return type(error)(error.task_name, inner, error.attempts)
    return RemoteError(f"{type(error).__qualname__}: {error}\n{_text(error)}")


def _stand_in(value: Any) -> Any:
    if isinstance(value, BaseException):
        return _stand_in_error(value)
    if isinstance(value, TaskMetadata):
        inputs = {k: v if problem(v) is None else _stand_in(v) for k, v in value.inputs.items()}
        return attrs.evolve(value, inputs=inputs)
    return Unpicklable(type(value).__qualname__, repr(value)[:500])


def _result_error(index: int | None, value: Any, why: str) -> pickle.PicklingError:
    return pickle.PicklingError(
        f"item {index}: the result ({type(value).__qualname__}) cannot be pickled to send it "
        f"back from the Dask worker ({why})"
    )


def portable_event(runner: Any, event: Event) -> Event:
    """``event`` with what cannot be pickled replaced (see the module docstring)."""
    hook, args = event
    if problem(args) is None:
        return event
    if hook == "after_node_execute":
        metadata, reporter, duration, result = args
        why = problem(result)
        if why is not None and _is_item(runner, metadata):
            # The item's result never reaches the caller: plugins see it fail.
            error = _result_error(metadata.map_index, result, why)
            return "on_node_error", (_stand_in(metadata) if problem(metadata) else metadata, reporter, error, duration)
    return hook, tuple(a if problem(a) is None else _stand_in(a) for a in args)


def _is_item(runner: Any, metadata: Any) -> bool:
    """Whether ``metadata`` is one of this map's items (not a task called inside one)."""
    return (
        isinstance(metadata, TaskMetadata)
        and metadata.map_index is not None
        and getattr(metadata, "map_id", None) == getattr(runner, "map_id", None)
        and metadata.parent_id == getattr(runner, "parent_id", None)
    )


def encode_events(runner: Any, events: Sequence[Event]) -> bytes:
    """A chunk of hook events as bytes; unpicklable arguments become stand-ins."""
    try:
        return pickle.dumps(list(events), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001, S110 - find the culprits one by one
        pass
    return dumps([portable_event(runner, event) for event in events])


def decode_events(data: bytes) -> list[Event]:
    """The events of :func:`encode_events`."""
    return pickle.loads(data)  # type: ignore[no-any-return]  # noqa: S301 - from our own workers


def _item_name(runner: Any, item: WorkItem) -> str:
    task = runner.task
    try:
        return task.resolve_name(task.bind(item.args, {}), item.index)  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - only for a message
        return f"{task.name}[{item.index}]"


def encode_outcomes(runner: Any, items: Sequence[WorkItem], batch: RemoteBatch) -> bytes:
    """A batch's outcomes (and its events, when they were not emitted live) as bytes."""
    outcomes = batch.outcomes
    if all(o.ok for o in outcomes):
        try:
            return dumps((OK, [o.value for o in outcomes], batch.events, batch.retire))
        except Exception:  # noqa: BLE001, S110 - find the culprits one by one
            pass
    entries: list[tuple[bool, Any, BaseException | None, str | None]] = []
    for item, outcome in zip(items, outcomes):
        if outcome.ok:
            why = problem(outcome.value)
            if why is None:
                entries.append((True, outcome.value, None, None))
            else:
                cause = _result_error(item.index, outcome.value, why)
                entries.append((False, None, TaskError(_item_name(runner, item), cause), None))
            continue
        error = outcome.error
        assert error is not None
        original = error.error if isinstance(error, TaskError) else error
        text = _text(original)
        if problem(error) is not None:
            error = _stand_in_error(error)
        entries.append((False, None, error, text))
    events = [portable_event(runner, event) for event in batch.events]
    return dumps((MIXED, entries, events, batch.retire))


def decode_outcomes(data: bytes) -> RemoteBatch:
    """The :class:`RemoteBatch` of :func:`encode_outcomes`; errors get their worker traceback."""
    kind, payload, events, retire = pickle.loads(data)  # noqa: S301 - from our own workers
    if kind == OK:
        return RemoteBatch([Outcome(True, value) for value in payload], events, retire)
    outcomes = []
    for ok, value, error, text in payload:
        if ok:
            outcomes.append(Outcome(True, value))
            continue
        original = error.error if isinstance(error, TaskError) else error
        if isinstance(error, TaskError) and error.__cause__ is None:
            error.__cause__ = original
        if text is not None and original.__cause__ is None:
            original.__cause__ = RemoteTraceback(text)
        outcomes.append(Outcome(False, error=error))
    return RemoteBatch(outcomes, events, retire)
