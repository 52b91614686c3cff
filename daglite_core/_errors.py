"""Exceptions raised by daglite."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class DagliteError(Exception):
    """Base class of every error daglite raises itself."""


class TaskError(DagliteError):
    """A task failed after all its attempts; chained (``from``) to the last error.

    ``str()`` names the task, the number of attempts when more than one, and the
    original error's type and message. The original is ``error`` (and
    ``__cause__``).
    """

    def __init__(self, task_name: str, error: BaseException, attempts: int = 1) -> None:
        self.task_name = task_name
        self.error = error
        self.attempts = attempts
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"Task {task_name!r} failed{tries}: {type(error).__name__}: {error}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.task_name, self.error, self.attempts))


class TaskTimeoutError(TaskError):
    """A task's last attempt ran longer than its ``timeout``."""


class MapError(TaskError):
    """One or more items of a :func:`~daglite_core.map_tasks` call failed.

    ``errors`` maps each failing item's index to its :class:`TaskError`; every
    other item still ran. ``error`` (and ``__cause__``) is the first failure.
    """

    def __init__(self, task_name: str, errors: dict[int, BaseException], total: int) -> None:
        self.task_name = task_name
        self.errors = dict(sorted(errors.items()))
        self.total = total
        self.error = next(iter(self.errors.values()))
        self.attempts = 1
        details = "; ".join(f"[{i}] {_cause_text(e)}" for i, e in self.errors.items())
        Exception.__init__(
            self,
            f"Task {task_name!r} failed for {len(self.errors)} of {total} items "
            f"(indexes {sorted(self.errors)}): {details}",
        )

    @property
    def failed_indexes(self) -> list[int]:
        """The failing items' positions, sorted."""
        return list(self.errors)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.task_name, self.errors, self.total))


def _cause_text(error: BaseException) -> str:
    inner = error.error if isinstance(error, TaskError) else error
    return f"{type(inner).__name__}: {inner}"


class PluginError(DagliteError):
    """A plugin is invalid, failed to load, or (in strict mode) raised in a hook."""

    def __init__(self, message: str, plugin: str = "", hook: str = "") -> None:
        self.plugin = plugin
        self.hook = hook
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.plugin, self.hook))


class BackendError(DagliteError, ValueError):
    """An unknown backend name; the message lists the known ones.

    ``where`` (e.g. ``"Task 'load'"``) prefixes the message when the name came
    from a task's options.
    """

    def __init__(self, name: str, known: Iterable[str], where: str = "") -> None:
        self.name = name
        self.known = sorted(known)
        self.where = where
        import difflib

        close = difflib.get_close_matches(name, self.known, n=1) if isinstance(name, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        head = f"{where}: unknown backend" if where else "Unknown backend"
        super().__init__(f"{head} {name!r}{hint}; known backends: {', '.join(self.known)}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.known, self.where))


class MissingPluginError(DagliteError, RuntimeError):
    """A feature needs a plugin that is not installed (or is disabled)."""
