"""What a task's parameters accept: the static facts compatibility checks use."""

from __future__ import annotations

import inspect
from collections.abc import Iterable

import attrs


@attrs.frozen
class Names:
    """A set of keyword names, possibly open-ended.

    :ivar names: the named parameters.
    :ivar var: ``True`` when any other name is accepted too (``**kwargs``).
    """

    names: frozenset[str]
    var: bool = False

    def accepts(self, name: str) -> bool:
        """Whether ``name`` can be passed."""
        return self.var or name in self.names

    @staticmethod
    def union(many: Iterable[Names]) -> Names:
        """Every name any of ``many`` holds (open if any is open)."""
        items = list(many)
        return Names(frozenset().union(*(n.names for n in items)), any(n.var for n in items))

    @staticmethod
    def intersection(many: Iterable[Names]) -> Names:
        """The names all of ``many`` accept (open only if all are open)."""
        items = list(many)
        closed = [n.names for n in items if not n.var]
        if not closed:
            return Names(frozenset().union(*(n.names for n in items)), True)
        common = frozenset.intersection(*closed)
        # A name of an open set is accepted by it, so only the closed ones constrain.
        return Names(common, False)


@attrs.frozen
class TaskParams:
    """The keyword-passable parameters of a task.

    :ivar accepted: names a call may pass (open with ``**kwargs``).
    :ivar required: parameters without a default.
    :ivar positional_only: required positional-only parameters (cannot be passed
        by keyword, so such a task cannot be signed).
    """

    accepted: Names
    required: frozenset[str]
    positional_only: tuple[str, ...]

    @classmethod
    def of(cls, signature: inspect.Signature) -> TaskParams:
        params = signature.parameters.values()
        keyword = frozenset(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        var = any(p.kind is p.VAR_KEYWORD for p in params)
        required = frozenset(p.name for p in params if p.name in keyword and p.default is p.empty)
        positional_only = tuple(p.name for p in params if p.kind is p.POSITIONAL_ONLY and p.default is p.empty)
        return cls(Names(keyword, var), required, positional_only)
