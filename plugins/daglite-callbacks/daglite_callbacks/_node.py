"""What signatures, chains and swarms share: callbacks, checks when attaching, calling.

Semantics every node follows:

* **Template, not instance.** A node is a blueprint: calling it (or reaching it
  as a callback) runs it afresh each time, so a callback shared by two parents
  runs once per parent outcome, and a signature can be called many times.
* **One final outcome, one dispatch.** Callbacks fire after the call's final
  outcome: after retries, a cache hit being a success whose value is the result.
  ``KeyboardInterrupt``/``SystemExit``/``CancelledError`` abort the call and fire
  no callback.
* **Input errors are the caller's.** An input rejected by validation before the
  node runs raises :class:`InputError` and fires no callback (like calling a
  function with wrong arguments). Inside a chain, a later step's input is not the
  caller's: its rejection is that step's failure.
* **Checks happen when attaching.** Every callback is checked against its parent
  when it is attached (at signing time), and cycles are rejected then.
"""

from __future__ import annotations

import abc
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from . import _generation
from ._dispatch import DISPATCH_MODES, dispatch_async, dispatch_sync, settle
from ._durable import durable_spec, record, resolve_outbox
from ._errors import CycleError, SignatureError, TaskOutcome
from ._outbox import Delivery, Outbox
from ._params import Names

MISSING: Any = object()


@attrs.frozen
class Prepared:
    """A node's validated input for one call.

    :ivar kwargs: what the node received (a signature: its validated kwargs).
    :ivar parts: the prepared input of a container's first step or of each item.
    """

    kwargs: dict[str, Any]
    parts: tuple[Prepared, ...] = ()


def _reachable(start: Node) -> Iterable[Node]:
    seen: set[int] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        stack.extend(node.children())
        stack.extend(node.success_callbacks)
        stack.extend(node.error_callbacks)


def callback_list(callbacks: Any) -> list[Any]:
    """``success_callbacks=``/``error_callbacks=`` as a list: one callback alone is accepted too."""
    if isinstance(callbacks, (Node, str)) or callable(callbacks):
        return [callbacks]
    return list(callbacks)


def _release(marks: Sequence[Delivery | None]) -> None:
    for mark in marks:
        if mark is not None:
            mark.release()


def _check_picklable(where: str, node: Node) -> None:
    try:
        pickle.dumps(node, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        msg = (
            f"Cannot attach {where} to a durable node: it cannot be pickled into the outbox "
            f"({type(exc).__name__}: {exc}); use module-level tasks and picklable bound kwargs"
        )
        raise SignatureError(msg) from exc


def as_node(obj: Any, where: str) -> Node:
    """A node for ``obj``: itself, or ``sign(obj)`` for a task, function or task name."""
    if isinstance(obj, Node):
        return obj
    if isinstance(obj, str) or callable(obj):
        from ._signature import sign

        return sign(obj)
    msg = f"{where}: expected a signature, chain, swarm, task, function or task name, got {type(obj).__name__} {obj!r}"
    raise SignatureError(msg)


class Node(abc.ABC):
    """Base of :class:`Signature`, :class:`Chain` and :class:`Swarm`."""

    name: str
    dispatch: str
    strict: bool | None
    durable: bool | Outbox | None

    def _init_node(
        self,
        name: str,
        success_callbacks: Iterable[Any],
        error_callbacks: Iterable[Any],
        dispatch: str,
        strict: bool | None,
        durable: Any = None,
    ) -> None:
        self.name = name
        self.durable = durable_spec(self._label(), durable)
        if dispatch not in DISPATCH_MODES:
            msg = f"{self._label()}: dispatch must be one of {', '.join(DISPATCH_MODES)}, got {dispatch!r}"
            raise SignatureError(msg)
        if strict is not None and not isinstance(strict, bool):
            msg = f"{self._label()}: strict must be True, False or None (the session's strict_hooks), got {strict!r}"
            raise SignatureError(msg)
        self.dispatch = dispatch
        self.strict = strict
        self._success: list[Node] = []
        self._error: list[Node] = []
        self.on_success(*callback_list(success_callbacks))
        self.on_error(*callback_list(error_callbacks))

    def _label(self) -> str:
        return f"{type(self).__name__} {self.name!r}"

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        _generation.bump()  # a changed option invalidates every cached pickle

    # -- pickling into the outbox -----------------------------------------------

    def frozen_options(self) -> bool:
        """Whether its own options cannot change behind its back (see :meth:`pickled`)."""
        return True

    def node_options(self) -> dict[str, Any]:
        """The options every node kind takes, as keywords for rebuilding it (``__reduce__``)."""
        return {
            "success_callbacks": self.success_callbacks,
            "error_callbacks": self.error_callbacks,
            "dispatch": self.dispatch,
            "strict": self.strict,
            "durable": self.durable,
        }

    def pickled(self) -> bytes:
        """``pickle.dumps(self)``, cached while no node changed and every bound value is immutable.

        See :mod:`daglite_callbacks._generation`: any change to any node
        invalidates the cache; a tree binding a mutable value (a list, a dict, an
        object) is pickled afresh every time, so the outbox records what a call
        would run now.
        """
        return self.pickle_state()[0]

    def pickle_state(self) -> tuple[bytes, bool]:
        """:meth:`pickled` and whether that pickle is the cached one (the same object while it stays valid)."""
        generation = _generation.current()
        cached: tuple[int, bytes] | None = self.__dict__.get("_pickle_cache")
        if cached is not None and cached[0] == generation:
            return cached[1], True
        blob = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        if all(node.frozen_options() for node in _reachable(self)):
            self.__dict__["_pickle_cache"] = (generation, blob)
            return blob, True
        return blob, False

    # -- callbacks ---------------------------------------------------------------

    @property
    def success_callbacks(self) -> tuple[Node, ...]:
        """The success callbacks, in dispatch order."""
        return tuple(self._success)

    @property
    def error_callbacks(self) -> tuple[Node, ...]:
        """The error callbacks, in dispatch order."""
        return tuple(self._error)

    def on_success(self, *callbacks: Any) -> Node:
        """Attach success callbacks (checked now: compatibility and cycles); returns ``self``."""
        self._attach("success", callbacks)
        return self

    def on_error(self, *callbacks: Any) -> Node:
        """Attach error callbacks (checked now: compatibility and cycles); returns ``self``."""
        self._attach("error", callbacks)
        return self

    def _attach(self, kind: str, callbacks: Sequence[Any]) -> None:
        nodes = [as_node(cb, f"{kind} callback of {self.name!r}") for cb in callbacks]
        for cb in nodes:
            where = f"{kind} callback {cb.name!r} of {self.name!r}"
            if any(node is self for node in _reachable(cb)):
                msg = f"Cannot attach {where}: {self.name!r} is reachable from it, which would make a cycle"
                raise CycleError(msg)
            if kind == "success":
                cb.check_receives_result(where, self.result_type())
            else:
                cb.check_receives_error(where, self.received(), self.guaranteed())
            cb.guard(kind, f"where it receives the {'result' if kind == 'success' else 'error'} of {self.name!r}")
            if self.durable is not None and self.durable is not False:
                _check_picklable(where, cb)
        (self._success if kind == "success" else self._error).extend(nodes)
        _generation.bump()

    # -- static facts (for the checks) ------------------------------------------

    @property
    @abc.abstractmethod
    def is_async(self) -> bool:
        """Whether calling it returns an awaitable."""

    @abc.abstractmethod
    def children(self) -> Sequence[Node]:
        """Steps or items (for the cycle check)."""

    @abc.abstractmethod
    def accepted(self) -> Names:
        """Names a call may pass."""

    @abc.abstractmethod
    def received(self) -> Names:
        """Names its error callbacks may be given."""

    @abc.abstractmethod
    def guaranteed(self) -> frozenset[str]:
        """Names its error callbacks are always given."""

    @abc.abstractmethod
    def result_type(self) -> Any:
        """The declared type of its result, or ``None``."""

    @abc.abstractmethod
    def check_receives_result(self, where: str, result_type: Any) -> None:
        """Raise :class:`SignatureError` unless it can be given a parent's result."""

    @abc.abstractmethod
    def check_receives_error(self, where: str, received: Names, guaranteed: frozenset[str]) -> None:
        """Raise :class:`SignatureError` unless it can be given a failing parent's kwargs."""

    @abc.abstractmethod
    def guard(self, kind: str, reason: str) -> None:
        """Forbid binding the injection target of ``kind`` from now on."""

    # -- running -----------------------------------------------------------------

    @abc.abstractmethod
    def prepare(
        self, call: Mapping[str, Any], *, result: Any = MISSING, error: Any = MISSING, call_wins: bool = True
    ) -> Prepared:
        """Merge ``call`` with the bound kwargs, inject ``result``/``error``, validate."""

    @abc.abstractmethod
    def body_sync(self, prepared: Prepared, backend: str | None) -> TaskOutcome:
        """Run it (not its callbacks); return the outcome."""

    @abc.abstractmethod
    async def body_async(self, prepared: Prepared, backend: str | None) -> TaskOutcome:
        """:meth:`body_sync` on the running loop."""

    def _dispatch_args(self, outcome: TaskOutcome) -> tuple[str, list[Node], Callable[[Node], Prepared]]:
        if outcome.ok:
            value = outcome.value
            return "success", list(self._success), lambda cb: cb.prepare({}, result=value)
        received, error = dict(outcome.kwargs), outcome.error
        return "error", list(self._error), lambda cb: cb.prepare(received, error=error, call_wins=False)

    def outcome_sync(self, prepared: Prepared, backend: str | None, delivery: Delivery | None = None) -> TaskOutcome:
        """Run it, then dispatch its callbacks (the failing-callback policy applies).

        ``delivery``: when it runs as a durable callback, the outbox row to mark
        done once it finished (see :mod:`daglite_callbacks._outbox`).
        """
        return self.act_sync(self.body_sync(prepared, backend), delivery)

    def act_sync(self, outcome: TaskOutcome, delivery: Delivery | None = None) -> TaskOutcome:
        """Dispatch the callbacks of ``outcome`` (the second half of :meth:`outcome_sync`)."""
        kind, callbacks, prepare = self._dispatch_args(outcome)
        if not callbacks:
            if delivery is not None:
                delivery.finish(outcome.error)
            return outcome
        outbox = resolve_outbox(self.durable, delivery)
        if outbox is None:
            failures = dispatch_sync(callbacks, prepare, self.dispatch)
            if delivery is not None:
                delivery.finish(outcome.error)
        else:
            marks = record(self.name, outbox, kind, callbacks, outcome, delivery)
            try:
                failures = dispatch_sync(callbacks, prepare, self.dispatch, marks)
            except BaseException:
                _release(marks)  # interrupted: what did not finish waits for a resume
                raise
        settle(self, kind, callbacks, failures, outcome)
        return outcome

    async def outcome_async(self, prepared: Prepared, backend: str | None, delivery: Delivery | None = None) -> TaskOutcome:
        """:meth:`outcome_sync` on the running loop (sync parts in threads)."""
        outcome = await self.body_async(prepared, backend)
        kind, callbacks, prepare = self._dispatch_args(outcome)
        if not callbacks:
            if delivery is not None:
                delivery.finish(outcome.error)
            return outcome
        outbox = resolve_outbox(self.durable, delivery)
        if outbox is None:
            failures = await dispatch_async(callbacks, prepare, self.dispatch)
            if delivery is not None:
                delivery.finish(outcome.error)
        else:
            marks = record(self.name, outbox, kind, callbacks, outcome, delivery)
            try:
                failures = await dispatch_async(callbacks, prepare, self.dispatch, marks)
            except BaseException:
                _release(marks)
                raise
        settle(self, kind, callbacks, failures, outcome)
        return outcome

    def run(self, **kwargs: Any) -> Any:
        """Call it synchronously (async parts run on their own loop); return the result.

        On failure the error callbacks run first, then the original error is raised.
        """
        outcome = self.outcome_sync(self.prepare(kwargs), None)
        if outcome.ok:
            return outcome.value
        raise outcome.error  # type: ignore[misc]

    async def arun(self, **kwargs: Any) -> Any:
        """Call it on the running event loop (sync parts in threads); return the result."""
        outcome = await self.outcome_async(self.prepare(kwargs), None)
        if outcome.ok:
            return outcome.value
        raise outcome.error  # type: ignore[misc]

    def __call__(self, **kwargs: Any) -> Any:
        """:meth:`arun` (an awaitable) when :attr:`is_async`, else :meth:`run`."""
        if self.is_async:
            return self.arun(**kwargs)
        return self.run(**kwargs)


