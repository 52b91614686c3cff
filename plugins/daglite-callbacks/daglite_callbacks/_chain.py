"""``chain([a, b, c])``: each step's result goes into the next step."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from daglite_core import active_session

from ._errors import SignatureError, TaskOutcome
from ._node import MISSING, Node, Prepared, as_node
from ._params import Names


def container_backend(own: str | None, inherited: str | None) -> str:
    """A container's backend: its own, else its parent container's, else the session's."""
    return own or inherited or active_session().backend


class Chain(Node):
    """Steps run one after the other; step ``k+1`` gets step ``k``'s result.

    The result is injected exactly as for a success callback (``ReturnValue[T]``
    or ``daglite_results``), which is checked when the chain is built. Each step's
    own callbacks fire as it finishes. A failing step stops the chain: later steps
    never run, the chain's error callbacks get the failing step's kwargs, and the
    step's error is raised. In strict mode a step's failing callback raises its
    :class:`CallbackError` at once: the chain stops without calling back. Steps run on the chain's ``backend`` (default: the
    session's); callbacks always run in the session's process.
    """

    def __init__(
        self,
        steps: Sequence[Any],
        *,
        name: str | None = None,
        success_callbacks: Iterable[Any] = (),
        error_callbacks: Iterable[Any] = (),
        dispatch: str = "sequential",
        strict: bool | None = None,
        backend: str | None = None,
        durable: Any = None,
    ) -> None:
        nodes = [as_node(step, f"step {i + 1} of a chain") for i, step in enumerate(steps)]
        if not nodes:
            msg = "chain() needs at least one step"
            raise SignatureError(msg)
        label = name or f"chain({', '.join(n.name for n in nodes)})"
        for i in range(1, len(nodes)):
            where = f"step {i + 1} {nodes[i].name!r} of {label!r} (after {nodes[i - 1].name!r})"
            nodes[i].check_receives_result(where, nodes[i - 1].result_type())
            nodes[i].guard("success", f"where it receives the result of step {i} {nodes[i - 1].name!r} of {label!r}")
        self.steps = tuple(nodes)
        self.backend = backend
        self._name_given = name
        self._init_node(label, success_callbacks, error_callbacks, dispatch, strict, durable)

    def __repr__(self) -> str:
        return f"<Chain {self.name!r}>"

    def frozen_options(self) -> bool:
        return self.backend is None or isinstance(self.backend, str)

    def __reduce__(self) -> tuple[Any, ...]:
        from ._signature import _rebuild

        options = {"name": self._name_given, "backend": self.backend, **self.node_options()}
        return (_rebuild, (Chain, (self.steps,), options))

    @property
    def is_async(self) -> bool:
        return any(step.is_async for step in self.steps)

    def children(self) -> Sequence[Node]:
        return self.steps

    def accepted(self) -> Names:
        return self.steps[0].accepted()

    def received(self) -> Names:
        return Names.union(step.received() for step in self.steps)

    def guaranteed(self) -> frozenset[str]:
        return frozenset.intersection(*(step.guaranteed() for step in self.steps))

    def result_type(self) -> Any:
        return self.steps[-1].result_type()

    def check_receives_result(self, where: str, result_type: Any) -> None:
        self.steps[0].check_receives_result(f"{where} (its first step)", result_type)

    def check_receives_error(self, where: str, received: Names, guaranteed: frozenset[str]) -> None:
        self.steps[0].check_receives_error(f"{where} (its first step)", received, guaranteed)

    def guard(self, kind: str, reason: str) -> None:
        self.steps[0].guard(kind, reason)

    def prepare(
        self, call: Mapping[str, Any], *, result: Any = MISSING, error: Any = MISSING, call_wins: bool = True
    ) -> Prepared:
        first = self.steps[0].prepare(call, result=result, error=error, call_wins=call_wins)
        return Prepared(first.kwargs, (first,))

    def _next(self, step: Node, value: Any) -> Prepared | TaskOutcome:
        try:
            return step.prepare({}, result=value)
        except Exception as exc:  # noqa: BLE001 - a later step's bad input is that step's failure
            return TaskOutcome(False, error=exc, kwargs=getattr(exc, "kwargs", {}))

    def body_sync(self, prepared: Prepared, backend: str | None) -> TaskOutcome:
        backend = container_backend(self.backend, backend)
        prep: Prepared | TaskOutcome = prepared.parts[0]
        value: Any = None
        for i, step in enumerate(self.steps):
            if i:
                prep = self._next(step, value)
            if isinstance(prep, TaskOutcome):
                return prep
            out = step.outcome_sync(prep, backend)  # a strict-mode CallbackError propagates as is
            if not out.ok:
                return out
            value = out.value
        return TaskOutcome(True, value, kwargs=prepared.kwargs)

    async def body_async(self, prepared: Prepared, backend: str | None) -> TaskOutcome:
        backend = container_backend(self.backend, backend)
        prep: Prepared | TaskOutcome = prepared.parts[0]
        value: Any = None
        for i, step in enumerate(self.steps):
            if i:
                prep = self._next(step, value)
            if isinstance(prep, TaskOutcome):
                return prep
            out = await step.outcome_async(prep, backend)
            if not out.ok:
                return out
            value = out.value
        return TaskOutcome(True, value, kwargs=prepared.kwargs)


def chain(
    steps: Sequence[Any],
    /,
    *,
    name: str | None = None,
    success_callbacks: Iterable[Any] = (),
    error_callbacks: Iterable[Any] = (),
    dispatch: str = "sequential",
    strict: bool | None = None,
    backend: str | None = None,
    durable: Any = None,
) -> Chain:
    """Build a :class:`Chain` of signatures (or tasks, functions, names, chains, swarms).

    Calling it runs the first step with the call's kwargs and returns the last
    step's result. Error callbacks must accept the kwargs of any step.
    """
    return Chain(
        steps,
        name=name,
        success_callbacks=success_callbacks,
        error_callbacks=error_callbacks,
        dispatch=dispatch,
        strict=strict,
        backend=backend,
        durable=durable,
    )
