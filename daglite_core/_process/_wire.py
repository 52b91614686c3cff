"""The process backend's wire format: what crosses a worker's pipe, and how.

The coordinator (the session's process) and each worker exchange one message
each way per batch:

* coordinator → worker: ``(token, runner_blob, indices, args)`` where ``runner_blob`` is
  the pickled :class:`~daglite_core._process._worker.WorkerRunner` of the map (``None``
  when the worker already holds the runner of map ``token``), ``indices`` the items'
  indices (a ``range`` for a strided batch) and ``args`` their argument tuples (no
  record per item: ``WorkItem`` records pickle about 15× slower than tuples);
  ``None`` asks the worker to exit.
* worker → coordinator: ``(OK, values, events, retire)`` when every item succeeded
  and the reply pickles as a whole, else ``(MIXED, entries, events, retire)`` with
  one ``(ok, value, error, traceback_text)`` entry per item, checked one by one so
  that an unpicklable result or error fails only its own item (an unpicklable
  error becomes a :class:`RemoteError` with its text, an unpicklable hook argument
  an :class:`Unpicklable` stand-in, and the ``after_node_execute`` of an item whose
  result cannot travel becomes its ``on_node_error``); or ``(LOST, message)`` when
  the batch could not even be unpickled in the worker.

Pickling: tasks go by reference (module and qualified name; see
``BaseTask.__reduce__``), so a module-level task never drags its function by
value; ``TaskMetadata`` goes as a flat tuple with its own id as an int. When stdlib pickle fails and
``cloudpickle`` is importable, it is used instead (closures, lambdas, tasks
defined in functions).
"""

from __future__ import annotations

import copyreg
import io
import pickle
import traceback
import uuid
from collections.abc import Sequence
from typing import Any

import attrs

from .._errors import TaskError
from .._metadata import TaskMetadata
from .._protocols import Outcome, Outcomes, RemoteBatch, WorkItem

OK, MIXED, LOST = 0, 1, 2
ITEM_STARTED = "~item_started"
"""A compact relayed ``before_node_execute`` of a map item: ``(id_int, index, inputs)``;
the session's process rebuilds the metadata from what it knows of the map."""
ITEM_DONE = "~item_done"
"""A compact relayed ``after_node_execute`` of a map item: ``(id_int, index, duration, result)``."""
ITEM_LOST = "~item_lost"
"""An :data:`ITEM_DONE` whose result cannot be pickled: ``(id_int, error, duration)``,
replayed as the item's ``on_node_error``."""
EVENTS = b"E"
"""First byte of a worker's event message (a pickle never starts with it)."""
ATTEMPT = b"A"
"""First byte of a worker's attempt message: ``b"A<timeout>"`` an attempt of a timed
task starts now, ``b"A"`` it ended (the coordinator's deadline follows attempts only)."""


class RemoteError(Exception):
    """Stands in for an error raised in a worker that could not be pickled back.

    Its message holds the original's type, message and traceback.
    """


@attrs.frozen
class Unpicklable:
    """Stands in, in a relayed hook argument, for a value that could not be pickled back."""

    type_name: str
    text: str


class RemoteTraceback(Exception):
    """Set as ``__cause__`` of an error raised in a worker: the worker-side traceback."""

    def __str__(self) -> str:
        return f"\n\nTraceback in the worker:\n{self.args[0]}"


# -- pickling -------------------------------------------------------------------


_METADATA_FIELDS = (
    "id", "name", "backend", "inputs", "description", "map_index", "parent_id", "is_async", "is_generator",
    "map_id", "session_id",
)
_COMPACT_METADATA = tuple(f.name for f in attrs.fields(TaskMetadata)) == _METADATA_FIELDS
_new = object.__new__
_UUID = uuid.UUID
_UUID_INT = uuid.UUID.__dict__["int"].__set__
_UUID_SAFE = uuid.UUID.__dict__["is_safe"].__set__
_UNKNOWN = uuid.SafeUUID.unknown
_SETTERS = tuple(TaskMetadata.__dict__[f].__set__ for f in _METADATA_FIELDS) if _COMPACT_METADATA else ()


def _load_metadata(
    id_: int, parent: uuid.UUID | None, name: str, backend: str, inputs: dict[str, Any],
    description: str, map_index: int | None, is_async: bool, is_generator: bool,
    map_id: uuid.UUID | None, session_id: uuid.UUID | None,
) -> TaskMetadata:
    """Rebuild a :class:`TaskMetadata` sent compactly (its own id as an int).

    Called by the unpickler once per relayed item: the id and the record are built
    here by writing their slots (as ``uuid_from_int`` and ``make_metadata`` do), in
    one Python frame rather than three.
    """
    made = _new(_UUID)
    _UUID_INT(made, id_)
    _UUID_SAFE(made, _UNKNOWN)
    obj: TaskMetadata = _new(TaskMetadata)
    s_id, s_name, s_backend, s_inputs, s_description, s_index, s_parent, s_async, s_gen, s_map, s_session = _SETTERS
    s_id(obj, made)
    s_name(obj, name)
    s_backend(obj, backend)
    s_inputs(obj, inputs)
    s_description(obj, description)
    s_index(obj, map_index)
    s_parent(obj, parent)
    s_async(obj, is_async)
    s_gen(obj, is_generator)
    s_map(obj, map_id)
    s_session(obj, session_id)
    return obj


def _reduce_metadata(obj: TaskMetadata) -> tuple[Any, ...]:
    """``TaskMetadata`` as a flat tuple with its own id as an int.

    About 3x cheaper to pickle and 1.5x to unpickle than the attrs record with its
    ``UUID`` objects (two per item in relayed events). The parent, map and session
    ids are shared by every item of a batch: sent as objects, pickle's memo sends
    and rebuilds each once per message.
    """
    return (_load_metadata, (
        obj.id.int, obj.parent_id, obj.name, obj.backend, obj.inputs,
        obj.description, obj.map_index, obj.is_async, obj.is_generator, obj.map_id, obj.session_id,
    ))


_DISPATCH = copyreg.dispatch_table.copy()
if _COMPACT_METADATA:  # pragma: no branch - a guard if the record's fields change
    _DISPATCH[TaskMetadata] = _reduce_metadata


class _Pickler(pickle.Pickler):
    """Pickles ``TaskMetadata`` compactly; tasks pickle by reference through their own
    ``BaseTask.__reduce__`` (the one way a task is pickled, here and anywhere else).

    A ``dispatch_table``, not ``reducer_override``: the C pickler consults it only
    for objects its own dispatch does not know, where ``reducer_override`` would be
    a Python call for every tuple, list and dict pickled.
    """

    dispatch_table = _DISPATCH


def _cloudpickle() -> Any:
    try:
        import cloudpickle  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    return cloudpickle


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` for another process (stdlib pickle, else cloudpickle if installed)."""
    buffer = io.BytesIO()
    try:
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    except Exception:
        cloudpickle = _cloudpickle()
        if cloudpickle is None:
            raise
        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-any-return]
    return buffer.getvalue()


def _problem(obj: Any) -> str | None:
    """Why ``obj`` cannot make the round trip through pickle, or ``None`` if it can."""
    try:
        pickle.loads(dumps(obj))  # noqa: S301 - the round trip of a value this process just pickled
    except Exception as exc:  # noqa: BLE001 - the reason is the answer
        return f"{type(exc).__name__}: {exc}"
    return None


# -- the worker side --------------------------------------------------------------


def error_text(error: BaseException) -> str:
    """``error`` formatted with its traceback."""
    return "".join(traceback.format_exception(error))


def _stand_in_error(error: BaseException) -> BaseException:
    """A picklable replacement for ``error`` keeping its class name, message and traceback."""
    if isinstance(error, TaskError):
        inner = RemoteError(f"{type(error.error).__qualname__}: {error.error}\n{error_text(error.error)}")
        return type(error)(error.task_name, inner, error.attempts)
    return RemoteError(f"{type(error).__qualname__}: {error}\n{error_text(error)}")


def _stand_in(value: Any) -> Any:
    if isinstance(value, BaseException):
        return _stand_in_error(value)
    if isinstance(value, TaskMetadata):
        inputs = {k: v if _problem(v) is None else _stand_in(v) for k, v in value.inputs.items()}
        return attrs.evolve(value, inputs=inputs)
    return Unpicklable(type(value).__qualname__, repr(value)[:500])


def _item_name(runner: Any, item: WorkItem) -> str:
    task = runner.task
    try:
        return task.resolve_name(task.bind(item.args, {}), item.index)  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - only for a message
        return f"{task.name}[{item.index}]"


def _careful_reply(runner: Any, items: Sequence[WorkItem], batch: RemoteBatch) -> bytes:
    """The reply built item by item, so that what cannot travel fails only its item."""
    entries: list[tuple[bool, Any, BaseException | None, str | None]] = []
    for item, outcome in zip(items, batch.outcomes, strict=True):
        if outcome.ok:
            problem = _problem(outcome.value)
            if problem is None:
                entries.append((True, outcome.value, None, None))
                continue
            cause = _result_error(item.index, outcome.value, problem)
            entries.append((False, None, TaskError(_item_name(runner, item), cause), None))
            continue
        error = outcome.error
        if error is None:
            msg = f"item {item.index}: a failed Outcome without its error"
            raise TypeError(msg)
        original = error.error if isinstance(error, TaskError) else error
        text = error_text(original)
        if _problem(error) is not None:
            error = _stand_in_error(error)
        entries.append((False, None, error, text))
    events = [_portable_event(runner, event) for event in batch.events]
    return dumps((MIXED, entries, events, batch.retire))


def _result_error(index: int, value: Any, problem: str) -> pickle.PicklingError:
    """The error of a map item whose result cannot be pickled back to the session."""
    return pickle.PicklingError(
        f"item {index}: the result ({type(value).__qualname__}) cannot be pickled "
        f"to send it back from the worker ({problem})"
    )


def _portable_event(runner: Any, event: tuple[str, tuple[Any, ...]]) -> tuple[str, tuple[Any, ...]]:
    """``event`` with what cannot be pickled replaced by stand-ins.

    The ``after_node_execute`` of a map item whose result cannot travel becomes
    its ``on_node_error``: the caller never gets that result, the item fails.
    """
    hook, args = event
    if _problem(args) is None:
        return event
    if hook == ITEM_DONE:
        id_int, index, duration, result = args
        return ITEM_LOST, (id_int, _result_error(index, result, _problem(result) or "?"), duration)
    if hook == ITEM_STARTED:
        id_int, index, inputs = args
        return hook, (id_int, index, {k: v if _problem(v) is None else _stand_in(v) for k, v in inputs.items()})
    if hook == "after_node_execute":
        metadata, reporter, duration, result = args
        problem = _problem(result)
        if problem is not None and metadata.map_id == runner.map_id and metadata.map_index is not None:
            return "on_node_error", (metadata, reporter, _result_error(metadata.map_index, result, problem), duration)
    return hook, tuple(a if _problem(a) is None else _stand_in(a) for a in args)


def pack_events(runner: Any, events: Sequence[tuple[str, tuple[Any, ...]]]) -> bytes:
    """Hook events a remote runner emitted, pickled to send to the session's process.

    Public (``daglite_core.pack_events``) for backends that run items elsewhere:
    what cannot be pickled travels as a stand-in (an :class:`Unpicklable`, a
    :class:`RemoteError`), and the ``after_node_execute`` of an item of
    ``runner``'s map whose result cannot travel becomes its ``on_node_error``.
    :func:`unpack_events` reads it back.
    """
    try:
        return dumps(list(events))
    except Exception:  # noqa: BLE001 - find the culprits one by one
        return dumps([_portable_event(runner, event) for event in events])


def unpack_events(data: bytes | memoryview) -> list[tuple[str, tuple[Any, ...]]]:
    """The events of :func:`pack_events`, ready for ``ItemRunner.replay``."""
    return pickle.loads(data)  # type: ignore[no-any-return]  # noqa: S301 - events our own remote runner pickled


def encode_events(runner: Any, events: list[tuple[str, tuple[Any, ...]]]) -> bytes:
    """A worker's event message: :data:`EVENTS` and the packed events."""
    return EVENTS + pack_events(runner, events)


def decode_events(data: bytes) -> list[tuple[str, tuple[Any, ...]]]:
    """The events of an :data:`EVENTS` message."""
    return unpack_events(memoryview(data)[1:])


def pack_batch(runner: Any, items: Sequence[WorkItem], batch: RemoteBatch) -> bytes:
    """A remote batch's outcomes (and its events) pickled to send to the session's process.

    Public (``daglite_core.pack_batch``) for backends that run items elsewhere:
    fast when every item succeeded and pickles; otherwise built item by item, so
    that a result, error or hook argument that cannot be pickled fails only its
    own item (see the module docstring). :func:`unpack_batch` reads it back.
    """
    outcomes = Outcomes.of(batch.outcomes)
    if not outcomes.failures:
        try:
            return dumps((OK, outcomes.values, batch.events, batch.retire))
        except Exception:  # noqa: BLE001, S110 - find the culprits one by one
            pass
    return _careful_reply(runner, items, batch)


# -- the coordinator side ---------------------------------------------------------


def decode_reply(data: bytes) -> tuple[Any, ...]:
    """Unpickle a worker's reply and rebuild its outcomes (errors get their worker traceback)."""
    message = pickle.loads(data)  # noqa: S301 - a reply from a worker this process started
    kind = message[0]
    if kind == LOST:
        return message  # type: ignore[no-any-return]
    _, payload, events, retire = message
    if kind == OK:
        return OK, RemoteBatch(Outcomes(payload), events, retire)
    outcomes = Outcomes()
    for ok, value, error, text in payload:
        if ok:
            outcomes.values.append(value)
            continue
        original = error.error if isinstance(error, TaskError) else error
        if isinstance(error, TaskError) and error.__cause__ is None:
            error.__cause__ = original
        if text is not None and original.__cause__ is None:
            original.__cause__ = RemoteTraceback(text)
        outcomes.add(Outcome(False, error=error))
    return MIXED, RemoteBatch(outcomes, events, retire)


def unpack_batch(data: bytes) -> RemoteBatch:
    """The :class:`RemoteBatch` of :func:`pack_batch`; errors get their worker traceback
    (a :class:`RemoteTraceback` as the original error's ``__cause__``)."""
    kind, batch = decode_reply(data)
    if kind == LOST:  # pragma: no cover - pack_batch never makes one
        raise pickle.UnpicklingError(batch)
    return batch  # type: ignore[no-any-return]
