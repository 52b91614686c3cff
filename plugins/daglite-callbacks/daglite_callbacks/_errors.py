"""Errors and the outcome record of daglite-callbacks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from daglite_core import DagliteError, TaskError


@attrs.frozen
class TaskOutcome:
    """The final outcome of one signature, chain or swarm call.

    :ivar ok: whether it succeeded.
    :ivar value: the result (``None`` on failure).
    :ivar error: the error the caller gets (``None`` on success).
    :ivar kwargs: the keyword arguments the call received after merging and
        validation; for a failed chain, those of the failing step.
    """

    ok: bool
    value: Any = None
    error: Exception | None = None
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)


class SignatureError(DagliteError, TypeError):
    """A signature, chain or swarm cannot be built as asked (raised when signing or attaching).

    Unknown task names, callbacks that cannot take what they would be given,
    bound kwargs colliding with an injection target, and invalid options.
    """


class CycleError(SignatureError):
    """Attaching a callback would make a signature reachable from its own callbacks."""


class InputError(DagliteError, TypeError):
    """A call's input failed validation before the task ran.

    :ivar task_name: the task whose input it is.
    :ivar kwargs: the merged keyword arguments that were rejected.
    """

    def __init__(self, message: str, task_name: str, kwargs: Mapping[str, Any]) -> None:
        self.task_name = task_name
        self.kwargs = dict(kwargs)
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.task_name, self.kwargs))


class CallbackError(DagliteError):
    """A callback failed while strict mode was on (see the README's "Strict mode").

    Raised ``from`` the first failing callback's error, after every callback ran.

    :ivar task_name: the signature whose callback failed.
    :ivar callback_name: the first failing callback.
    :ivar kind: ``"success"`` or ``"error"``.
    :ivar outcome: the original :class:`TaskOutcome` (its value, or its error,
        which this error never replaces).
    :ivar failures: every failing callback's name and error, in dispatch order.
    """

    def __init__(
        self,
        task_name: str,
        kind: str,
        outcome: TaskOutcome,
        failures: Sequence[tuple[str, BaseException]],
    ) -> None:
        self.task_name = task_name
        self.kind = kind
        self.outcome = outcome
        self.failures = list(failures)
        self.callback_name, self.error = self.failures[0]
        names = ", ".join(
            f"{name!r} ({type(error).__name__}: {error})" for name, error in self.failures
        )
        what = "succeeded" if outcome.ok else f"failed with {type(outcome.error).__name__}: {outcome.error}"
        super().__init__(f"{kind.capitalize()} callback(s) of {task_name!r} failed: {names}; the task itself {what}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.task_name, self.kind, self.outcome, self.failures))


def _cause(error: BaseException) -> str:
    inner = error.error if isinstance(error, TaskError) else error
    return f"{type(inner).__name__}: {inner}"


class SwarmError(TaskError):
    """One or more items of a swarm failed; names every failed (and cancelled) item.

    :ivar errors: failing item index -> its error, sorted.
    :ivar cancelled: indexes of items never started because
        ``stop_after_n_failures`` was reached.
    :ivar item_names: every item's name, in item order.
    """

    def __init__(
        self,
        task_name: str,
        errors: Mapping[int, Exception],
        cancelled: Sequence[int],
        item_names: Sequence[str],
    ) -> None:
        self.task_name = task_name
        self.errors = dict(sorted(errors.items()))
        self.cancelled = sorted(cancelled)
        self.item_names = list(item_names)
        self.error = next(iter(self.errors.values()))
        self.attempts = 1
        details = "; ".join(f"[{i}] {self.item_names[i]!r}: {_cause(e)}" for i, e in self.errors.items())
        skipped = (
            f"; cancelled before starting: {', '.join(f'[{i}] {self.item_names[i]!r}' for i in self.cancelled)}"
            if self.cancelled
            else ""
        )
        Exception.__init__(
            self,
            f"Swarm {task_name!r}: {len(self.errors)} of {len(self.item_names)} items failed: {details}{skipped}",
        )

    @property
    def failed_indexes(self) -> list[int]:
        """The failed items' positions, sorted."""
        return list(self.errors)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.task_name, self.errors, self.cancelled, self.item_names))
