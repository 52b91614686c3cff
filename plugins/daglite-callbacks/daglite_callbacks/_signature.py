"""``sign``/``asign`` and :class:`Signature`: one task call's blueprint."""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from daglite_core import BaseTask, find_task, task

from ._errors import SignatureError, TaskOutcome
from ._kwargs import BoundKwargs
from ._markers import ERROR_PARAM, RESULTS_PARAM, injection_targets, return_type
from ._node import MISSING, Node, Prepared
from ._params import Names, TaskParams
from ._run import acall_on, call_on
from ._validate import make_validators, validate


def _as_list(spec: Any) -> list[Any]:
    if spec is None:
        return []
    return list(spec) if isinstance(spec, Sequence) and not isinstance(spec, str) else [spec]


def _rebuild(cls: type[Node], args: tuple[Any, ...], options: dict[str, Any]) -> Node:
    """Unpickle a node by building it again (its checks run again)."""
    return cls(*args, **options)

_NUMERIC = {int: (float, complex), float: (complex,)}


def _is_class(tp: Any) -> bool:
    return isinstance(tp, type) and not isinstance(tp, types.GenericAlias) and tp not in (object, Any)


def _fits(produced: Any, wanted: Any) -> bool:
    """Whether a declared result type can go where ``wanted`` is declared (classes only)."""
    if not (_is_class(produced) and _is_class(wanted)):
        return True  # unknown, Any, generics, unions: not checked
    return issubclass(produced, wanted) or wanted in _NUMERIC.get(produced, ())


def resolve_task(task_or_name: Any) -> BaseTask[..., Any]:
    """The task to sign: a task, a plain function (made a task), or a registered name."""
    if isinstance(task_or_name, BaseTask):
        return task_or_name
    if isinstance(task_or_name, str):
        try:
            return find_task(task_or_name)
        except LookupError as exc:
            msg = f"sign({task_or_name!r}): {exc}"
            raise SignatureError(msg) from exc
    if isinstance(task_or_name, Node):
        msg = f"sign() takes a task, function or task name, not the {type(task_or_name).__name__} {task_or_name.name!r}"
        raise SignatureError(msg)
    if callable(task_or_name) and not isinstance(task_or_name, type):
        return cast(BaseTask[..., Any], task(task_or_name))
    msg = f"sign() takes a task, function or task name, got {type(task_or_name).__name__} {task_or_name!r}"
    raise SignatureError(msg)


class Signature(Node):
    """A task call's blueprint: the task, bound kwargs and callbacks.

    Build it with :func:`sign`. ``sig(**more)`` runs the task eagerly with the bound
    kwargs merged with ``more`` (the call wins); ``sig.kwargs`` can be updated.
    """

    def __init__(
        self,
        task: BaseTask[..., Any],
        kwargs: Mapping[str, Any],
        *,
        success_callbacks: Iterable[Any] = (),
        error_callbacks: Iterable[Any] = (),
        model_validators: Any = None,
        dispatch: str = "sequential",
        strict: bool | None = None,
        durable: Any = None,
    ) -> None:
        self.task = task
        self._model_validators = model_validators
        self.params = TaskParams.of(task.signature)
        if self.params.positional_only:
            msg = (
                f"sign({task.name!r}): positional-only parameter(s) {list(self.params.positional_only)} "
                "cannot be passed by keyword, so this task cannot be signed"
            )
            raise SignatureError(msg)
        self.targets = injection_targets(task.func)
        self.validators = make_validators(task.name, model_validators)
        self.kwargs = BoundKwargs(task.name, self._check_names, kwargs)
        self._init_node(task.name, success_callbacks, error_callbacks, dispatch, strict, durable)

    def _check_names(self, new: Mapping[str, Any]) -> None:
        if self.validators:
            return  # a custom validator decides what it accepts
        accepted = self.params.accepted
        unknown = sorted(name for name in new if not accepted.accepts(name))
        if unknown:
            msg = (
                f"Signature {self.task.name!r}: unknown argument(s) {unknown}; "
                f"the task takes {sorted(accepted.names)}"
            )
            raise SignatureError(msg)

    def __repr__(self) -> str:
        return f"<Signature {self.name!r} kwargs={dict(self.kwargs)!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled into the outbox by reference to its task (module-level tasks only).
        options = {"model_validators": self._model_validators, **self.node_options()}
        return (_rebuild, (Signature, (self.task, self.kwargs.snapshot()), options))

    def frozen_options(self) -> bool:
        # Validators are pickled by reference when they are functions or classes.
        plain = all(isinstance(v, type) or inspect.isfunction(v) for v in _as_list(self._model_validators))
        return plain and self.kwargs.frozen()

    # -- static facts --------------------------------------------------------------

    @property
    def is_async(self) -> bool:
        return self.task.is_async

    def children(self) -> Sequence[Node]:
        return ()

    def accepted(self) -> Names:
        return self.params.accepted

    def received(self) -> Names:
        return self.params.accepted

    def guaranteed(self) -> frozenset[str]:
        # Defaults are applied, so every named parameter is given.
        return frozenset() if self.validators else self.params.accepted.names

    def result_type(self) -> Any:
        return return_type(self.task.func, self.task.is_generator)

    def check_receives_result(self, where: str, result_type: Any) -> None:
        target = self.targets.result
        if target is None:
            msg = (
                f"Cannot attach {where}: {self.name!r} has no parameter to receive the result; "
                f"annotate one as ReturnValue[T] or name it {RESULTS_PARAM!r}"
            )
            raise SignatureError(msg)
        if target in self.kwargs:
            msg = f"Cannot attach {where}: its bound kwarg {target!r} collides with the parameter that receives the result"
            raise SignatureError(msg)
        if not self.validators:
            missing = sorted(self.params.required - set(self.kwargs) - {target})
            if missing:
                msg = f"Cannot attach {where}: required parameter(s) {missing} of {self.name!r} would stay unfilled; bind them when signing it"
                raise SignatureError(msg)
        wanted = self.targets.result_type
        if not _fits(result_type, wanted):
            msg = (
                f"Cannot attach {where}: the result is declared {getattr(result_type, '__name__', result_type)} "
                f"but {target!r} of {self.name!r} is ReturnValue[{getattr(wanted, '__name__', wanted)}]"
            )
            raise SignatureError(msg)

    def check_receives_error(self, where: str, received: Names, guaranteed: frozenset[str]) -> None:
        accepted = self.params.accepted
        rejected = sorted(name for name in received.names if not accepted.accepts(name))
        if rejected:
            msg = (
                f"Cannot attach {where}: {self.name!r} cannot accept argument(s) {rejected} "
                "that the failing call receives; add them as parameters or take **kwargs"
            )
            raise SignatureError(msg)
        if received.var and not accepted.var:
            msg = f"Cannot attach {where}: the failing call may receive any keyword (**kwargs), so {self.name!r} must take **kwargs too"
            raise SignatureError(msg)
        target = self.targets.error
        if target is not None and target in self.kwargs:
            msg = f"Cannot attach {where}: its bound kwarg {target!r} collides with the parameter that receives the error"
            raise SignatureError(msg)
        if target is not None and target in received.names:
            msg = f"Cannot attach {where}: the failing call has a parameter {target!r} too, where {self.name!r} receives the error"
            raise SignatureError(msg)
        if not self.validators:
            missing = sorted(self.params.required - guaranteed - set(self.kwargs) - {target or ERROR_PARAM})
            if missing:
                msg = f"Cannot attach {where}: required parameter(s) {missing} of {self.name!r} would stay unfilled; bind them when signing it"
                raise SignatureError(msg)

    def guard(self, kind: str, reason: str) -> None:
        target = self.targets.result if kind == "success" else self.targets.error
        if target is not None:
            self.kwargs.guard(target, reason)

    # -- running ---------------------------------------------------------------------

    def prepare(
        self, call: Mapping[str, Any], *, result: Any = MISSING, error: Any = MISSING, call_wins: bool = True
    ) -> Prepared:
        bound = self.kwargs.snapshot()
        merged = {**bound, **call} if call_wins else {**call, **bound}
        if result is not MISSING and self.targets.result is not None:
            merged[self.targets.result] = result
        if error is not MISSING and self.targets.error is not None:
            merged[self.targets.error] = error
        return Prepared(validate(self.name, self.task.signature, self.validators, merged))

    def body_sync(self, prepared: Prepared, backend: str | None) -> TaskOutcome:
        try:
            value = call_on(self.task, prepared.kwargs, backend)
        except Exception as exc:  # noqa: BLE001 - the task's failure is the outcome
            return TaskOutcome(False, error=exc, kwargs=prepared.kwargs)
        return TaskOutcome(True, value, kwargs=prepared.kwargs)

    async def body_async(self, prepared: Prepared, backend: str | None) -> TaskOutcome:
        try:
            value = await acall_on(self.task, prepared.kwargs, backend)
        except Exception as exc:  # noqa: BLE001 - the task's failure is the outcome
            return TaskOutcome(False, error=exc, kwargs=prepared.kwargs)
        return TaskOutcome(True, value, kwargs=prepared.kwargs)


def sign(
    task_or_name: Any,
    /,
    *,
    success_callbacks: Iterable[Any] = (),
    error_callbacks: Iterable[Any] = (),
    model_validators: Any = None,
    dispatch: str = "sequential",
    strict: bool | None = None,
    durable: Any = None,
    **kwargs: Any,
) -> Signature:
    """Sign a task call: ``sign(task_or_name, **bound_kwargs, <options>)``.

    :param task_or_name: a ``@task``, a plain function (made a task with ``task()``),
        or a registered task name (see :func:`daglite_core.find_task`); an unknown
        name is a :class:`SignatureError` listing the known names.
    :param success_callbacks: signatures (or tasks, functions, names, chains,
        swarms) called with the result after success; each must take it through a
        ``ReturnValue[T]`` parameter or one named ``daglite_results``.
    :param error_callbacks: called after the final failure with the failing call's
        kwargs, their own bound kwargs (which win) and, if they ask for it through
        ``ErrorValue`` or ``daglite_error``, the error the caller gets.
    :param model_validators: an attrs class, a callable ``kwargs -> kwargs``, or a
        sequence of them; by default the task's signature checks the input.
    :param dispatch: ``"sequential"`` (default) or ``"concurrent"``.
    :param strict: raise :class:`CallbackError` when a callback fails; ``None``
        (default) follows the active session's ``strict_hooks``.
    :param durable: record its callbacks in an outbox before they run, so that a
        crash cannot lose them (README, "Durable callbacks"): ``True`` (the default
        outbox), an :class:`Outbox` or a path; ``False`` never; ``None`` (default)
        inherits from a durable parent, else ``DAGLITE_CALLBACKS_DURABLE``.

    Every other keyword is a bound kwarg. A task parameter named like one of these
    options is bound with ``sig.kwargs.update(...)``.
    """
    return Signature(
        resolve_task(task_or_name),
        kwargs,
        success_callbacks=success_callbacks,
        error_callbacks=error_callbacks,
        model_validators=model_validators,
        dispatch=dispatch,
        strict=strict,
        durable=durable,
    )


async def asign(
    task_or_name: Any,
    /,
    *,
    success_callbacks: Iterable[Any] = (),
    error_callbacks: Iterable[Any] = (),
    model_validators: Any = None,
    dispatch: str = "sequential",
    strict: bool | None = None,
    durable: Any = None,
    **kwargs: Any,
) -> Signature:
    """:func:`sign` for async code (MageFlow's spelling); same arguments and checks."""
    return sign(
        task_or_name,
        success_callbacks=success_callbacks,
        error_callbacks=error_callbacks,
        model_validators=model_validators,
        dispatch=dispatch,
        strict=strict,
        durable=durable,
        **kwargs,
    )
