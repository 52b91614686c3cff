"""The errors of the dataset store.

Every error names the dataset key (and the format, when one was chosen), says
which rule failed, and is raised ``from`` its cause. They share the base
:class:`DatasetError`; the ones about what the caller passed are also
``ValueError`` (the core's :class:`~daglite_core.DatasetStore` protocol promises
``ValueError`` for unsafe keys and unknown formats), a missing dataset is also a
``FileNotFoundError``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DatasetError",
    "DatasetFormatError",
    "DatasetIntegrityError",
    "DatasetKeyError",
    "DatasetLoadError",
    "DatasetNotFoundError",
    "DatasetSaveError",
    "DatasetStoreWarning",
]


class DatasetError(Exception):
    """Base of every daglite-datasets error.

    :ivar key: the dataset key the error is about.
    :ivar format: the format's name, or ``None`` when none was chosen yet.
    """

    def __init__(self, message: str, *, key: str, format: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.format = format

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors travel back from process workers: keep the attributes.
        return _restore, (type(self), self.args, dict(self.__dict__))


def _restore(cls: type[DatasetError], args: tuple[Any, ...], state: dict[str, Any]) -> DatasetError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class DatasetKeyError(DatasetError, ValueError):
    """The key is unsafe or malformed (would leave the store root, ...).

    :ivar rule: the rule the key broke, in words.
    """

    def __init__(self, key: str, rule: str) -> None:
        super().__init__(f"Dataset key {key!r} is rejected: {rule}", key=key)
        self.rule = rule


class DatasetFormatError(DatasetError, ValueError):
    """The format is unknown, cannot be chosen from the key, or got unknown options."""


class DatasetSaveError(DatasetError):
    """Saving failed (the format cannot hold the value, disk full, ...); the previous version is intact."""


class DatasetLoadError(DatasetError):
    """Loading failed (the file cannot be read as its format, wrong ``return_type``, ...)."""


class DatasetNotFoundError(DatasetLoadError, FileNotFoundError):
    """No dataset is stored under the key."""


class DatasetIntegrityError(DatasetLoadError):
    """A signed dataset (pickle) failed verification: it was tampered with, written
    for another key, signed with another key, or not written by daglite."""


class DatasetStoreWarning(UserWarning):
    """Something about a store root needs the user's attention (it is writable by others)."""
