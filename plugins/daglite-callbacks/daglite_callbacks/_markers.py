"""``ReturnValue[T]`` and ``ErrorValue``: the annotations that say where a callback gets its input.

Both are ``typing.Annotated`` aliases, so a type checker sees the plain type
(``ReturnValue[int]`` is ``int``) while :func:`injection_targets` finds the marker
with ``typing.get_type_hints(include_extras=True)``.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import attrs

T = TypeVar("T")

RESULTS_PARAM = "daglite_results"
"""The parameter that receives the parent's result when none is marked ``ReturnValue``."""

ERROR_PARAM = "daglite_error"
"""The parameter that receives the error when none is marked ``ErrorValue``."""


@attrs.frozen
class _Marker:
    """The metadata object inside ``Annotated[...]``; compared by kind."""

    kind: str

    def __repr__(self) -> str:
        return f"<daglite_callbacks {self.kind} marker>"


RETURN_MARK = _Marker("ReturnValue")
ERROR_MARK = _Marker("ErrorValue")

ReturnValue = Annotated[T, RETURN_MARK]
"""Mark the parameter that receives the parent's return value: ``x: ReturnValue[int]``."""

ErrorValue = Annotated[Exception, ERROR_MARK]
"""Mark the parameter that receives the failure: ``err: ErrorValue``.

Not generic, so that the bare annotation type-checks under ``mypy --strict``: the
value is the exception the caller gets (a ``TaskError`` for a task, whose
``.error`` is the original exception; a ``SwarmError`` for a swarm)."""


@attrs.frozen
class Targets:
    """Where a callable takes the injected result and error (``None``: it does not).

    :ivar result: the first parameter marked ``ReturnValue``, else ``daglite_results``
        if it is a parameter, else ``None``.
    :ivar result_type: ``T`` of ``ReturnValue[T]`` (``None`` when unknown).
    :ivar error: the first parameter marked ``ErrorValue``, else ``daglite_error``
        if it is a parameter, else ``None``.
    """

    result: str | None
    result_type: Any
    error: str | None


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to raw ones
        return dict(getattr(func, "__annotations__", {}) or {})


def _marked(hint: Any, mark: _Marker) -> tuple[bool, Any]:
    if typing.get_origin(hint) is Annotated and mark in getattr(hint, "__metadata__", ()):
        inner = typing.get_args(hint)[0]
        return True, None if isinstance(inner, TypeVar) else inner
    return False, None


def injection_targets(func: Callable[..., Any]) -> Targets:
    """Find the result and error parameters of ``func`` (see :class:`Targets`).

    Only parameters that can be passed by keyword count; the first marked one wins,
    in parameter order.
    """
    params = [
        p
        for p in inspect.signature(func).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    hints = _hints(inspect.unwrap(func))
    result: str | None = None
    result_type: Any = None
    error: str | None = None
    for p in params:
        hint = hints.get(p.name)
        is_result, inner = _marked(hint, RETURN_MARK)
        if is_result and result is None:
            result, result_type = p.name, inner
        is_error, _ = _marked(hint, ERROR_MARK)
        if is_error and error is None:
            error = p.name
    names = {p.name for p in params}
    if result is None and RESULTS_PARAM in names:
        result = RESULTS_PARAM
    if error is None and ERROR_PARAM in names:
        error = ERROR_PARAM
    return Targets(result, result_type, error)


def return_type(func: Callable[..., Any], is_generator: bool) -> Any:
    """The declared return type of ``func`` as a signature's result, or ``None``.

    A generator task's result is the list of its items, so its type is ``list``.
    """
    if is_generator:
        return list
    hint = _hints(inspect.unwrap(func)).get("return")
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    return hint
