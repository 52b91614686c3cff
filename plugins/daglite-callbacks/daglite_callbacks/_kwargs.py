"""``sig.kwargs``: a signature's bound keyword arguments, checked on every change."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Self

from . import _generation
from ._errors import SignatureError

Checker = Callable[[Mapping[str, Any]], None]


class BoundKwargs(dict[str, Any]):
    """A ``dict`` of bound kwargs whose changes are validated before they apply.

    ``update``, ``aupdate``, item assignment, ``setdefault`` and ``|=`` reject a name
    the task does not accept, and a name that is where the signature receives a
    result or an error as a callback (see :meth:`guard`). A call merges a snapshot
    taken when it starts, so an update affects later calls only.
    """

    def __init__(self, owner: str, check: Checker, initial: Mapping[str, Any]) -> None:
        super().__init__()
        self._owner = owner
        self._check = check
        self._guards: dict[str, str] = {}
        self._lock = threading.Lock()
        self.update(initial)

    def guard(self, name: str, reason: str) -> None:
        """Forbid binding ``name`` from now on (``reason`` explains why, in errors)."""
        with self._lock:
            if name in self:
                msg = f"Signature {self._owner!r}: bound kwarg {name!r} collides with {reason}"
                raise SignatureError(msg)
            self._guards.setdefault(name, reason)

    def _validate(self, new: Mapping[str, Any]) -> None:
        for name in new:
            reason = self._guards.get(name)
            if reason is not None:
                msg = f"Signature {self._owner!r}: cannot bind {name!r}: it is {reason}"
                raise SignatureError(msg)
        self._check(new)

    def update(self, *args: Any, **kwargs: Any) -> None:
        new = dict(*args, **kwargs)
        with self._lock:
            self._validate(new)
            super().update(new)
            _generation.bump()

    async def aupdate(self, *args: Any, **kwargs: Any) -> None:
        """``update`` for async code (MageFlow's spelling); applies at once."""
        self.update(*args, **kwargs)

    def __setitem__(self, name: str, value: Any) -> None:
        self.update({name: value})

    def setdefault(self, name: str, default: Any = None) -> Any:
        if name not in self:
            self.update({name: default})
        return self[name]

    def __ior__(self, other: Iterable[Any]) -> Self:  # type: ignore[override,misc]
        self.update(other)
        return self

    def __delitem__(self, name: str) -> None:
        with self._lock:
            super().__delitem__(name)
            _generation.bump()

    def pop(self, *args: Any) -> Any:
        with self._lock:
            value = super().pop(*args)
            _generation.bump()
            return value

    def popitem(self) -> tuple[str, Any]:
        with self._lock:
            item = super().popitem()
            _generation.bump()
            return item

    def clear(self) -> None:
        with self._lock:
            super().clear()
            _generation.bump()

    def frozen(self) -> bool:
        """Whether every bound value is immutable (see :func:`._generation.frozen_value`)."""
        with self._lock:
            return all(_generation.frozen_value(value) for value in self.values())

    def snapshot(self) -> dict[str, Any]:
        """A plain copy, taken atomically."""
        with self._lock:
            return dict(self)
