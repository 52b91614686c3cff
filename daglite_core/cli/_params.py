"""Command-line options built from a workflow's signature.

Each parameter becomes an option named after it (``min_rows`` → ``--min-rows``;
the underscore spelling is accepted too), typed from its annotation:

=============================== ============================================
annotation                      on the command line
=============================== ============================================
``int``, ``float``, ``str``,    one value, converted by the type itself
``Path``, ``Decimal``, ...
``bool``                        ``--x`` / ``--no-x``
``list[T]``, ``tuple[T, ...]``,  several values after one option:
``set[T]``, ``Sequence[T]``     ``--ids 1 2 3`` (``T`` as above)
``Literal["a", "b"]``, ``Enum`` one of the choices (enum members by name)
``date``, ``datetime``          ISO 8601
``dict``, ``dict[K, V]``        a JSON object
``T | None``                    as ``T``; the default is usually ``None``
no annotation                   the default's type, else ``str``
=============================== ============================================

A parameter without a default is a required option. ``*args``/``**kwargs`` are
not exposed. An annotation the command line cannot express (a custom class, a
union of several types) is an error naming the parameter, unless the parameter
has a default, in which case it keeps that default and the help says so.

Help text for each option comes from the docstring (``:param name: text`` or a
Google-style ``Args:`` section); those lines are removed from the description so
``--help`` does not print them twice.
"""

from __future__ import annotations

import argparse
import collections.abc
import datetime
import decimal
import enum
import fractions
import inspect
import json
import os
import pathlib
import re
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any

import attrs

_SEQUENCES: dict[Any, type] = {
    list: list,
    tuple: tuple,
    set: set,
    frozenset: frozenset,
    collections.abc.Sequence: list,
    collections.abc.Iterable: list,
    collections.abc.Collection: list,
    collections.abc.Set: set,
    typing.List: list,  # noqa: UP006 - old spellings still appear in user code
    typing.Tuple: tuple,  # noqa: UP006
    typing.Set: set,  # noqa: UP006
}
_METAVARS = {int: "INT", float: "FLOAT", str: "TEXT", bool: "BOOL"}
# Types whose constructor turns the command line's text into a value (paths too).
# Any other class is refused: calling an arbitrary class with a string is a guess.
_FROM_TEXT = frozenset({int, float, str, complex, decimal.Decimal, fractions.Fraction, uuid.UUID})


class ParameterError(Exception):
    """A workflow parameter the command line cannot express."""


@attrs.frozen
class Parameter:
    """One workflow parameter as the command line sees it."""

    name: str
    option: str
    type_text: str
    default: Any
    required: bool
    help: str
    positional_only: bool
    exposed: bool
    container: type | None = None

    @property
    def dest(self) -> str:
        return f"param:{self.name}"


def split_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The docstring's text without parameter docs, and each parameter's doc."""
    params: dict[str, str] = {}
    kept: list[str] = []
    current: str | None = None
    in_args = False
    args_indent = 0
    entry_indent = 0
    for line in doc.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        field = re.match(r":param\s+(?:[^:]*\s)?(\w+):\s*(.*)", stripped)
        if field:
            current, in_args = field.group(1), False
            params[current] = field.group(2)
            continue
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args, args_indent, current = True, indent, None
            continue
        if in_args:
            if stripped and indent <= args_indent:
                in_args = False
            else:
                entry = re.match(r"(\w+)\s*(?:\([^)]*\))?:\s*(.*)", stripped)
                if entry and (current is None or indent <= entry_indent):
                    current, entry_indent = entry.group(1), indent
                    params[current] = entry.group(2)
                elif stripped and current is not None:
                    params[current] = f"{params[current]} {stripped}".strip()
                continue
        if current is not None and stripped and indent > 0 and not stripped.startswith(":"):
            params[current] = f"{params[current]} {stripped}".strip()
            continue
        current = None
        if not stripped.startswith((":returns:", ":return:", ":rtype:", ":raises")):
            kept.append(line)
    return "\n".join(kept).strip(), params


def show_default(value: Any) -> str:
    """A default as help shows it: paths as text, everything else as its repr."""
    return os.fspath(value) if isinstance(value, os.PathLike) else repr(value)


def _type_name(tp: Any) -> str:
    if isinstance(tp, _Unresolved):
        return f"{tp.text!r} (not resolvable at run time)"
    if typing.get_origin(tp) is None and isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("collections.abc.", "")


def _scalar(tp: Any) -> tuple[Callable[[str], Any], str]:
    """(converter, metavar) for one value of type ``tp``."""
    if tp is Any or tp is inspect.Parameter.empty:
        tp = str
    if typing.get_origin(tp) is typing.Literal:
        values = typing.get_args(tp)
        by_text = {str(v): v for v in values}

        def literal(text: str) -> Any:
            if text not in by_text:
                raise ValueError(text)
            return by_text[text]

        literal.__name__ = "choice"
        return literal, "{" + ",".join(by_text) + "}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        members = tp.__members__

        def member(text: str) -> Any:
            if text not in members:
                raise ValueError(text)
            return members[text]

        member.__name__ = tp.__name__
        return member, "{" + ",".join(members) + "}"
    if tp in (datetime.date, datetime.datetime):
        return tp.fromisoformat, tp.__name__.upper()
    if tp is dict or typing.get_origin(tp) is dict:
        return _json_object, "JSON"
    if tp is bool:
        raise ParameterError("bool")
    if isinstance(tp, type) and (tp in _FROM_TEXT or issubclass(tp, pathlib.PurePath)):
        return tp, _METAVARS.get(tp, tp.__name__.upper())
    raise ParameterError(_type_name(tp))


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        msg = f"expected a JSON object, got {text!r}"
        raise TypeError(msg)
    return value


_json_object.__name__ = "JSON object"


def _without_none(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
        raise ParameterError(" | ".join(_type_name(a) for a in typing.get_args(tp)))
    return tp, False


class _Unresolved:
    """An annotation string that names nothing importable at run time."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return repr(self.text)


def _annotation(param: inspect.Parameter, hints: dict[str, Any], func: Callable[..., Any]) -> Any:
    tp = hints.get(param.name, param.annotation)
    if isinstance(tp, str):
        # get_type_hints failed on another parameter (say, a name imported only under
        # TYPE_CHECKING): resolve this one alone; if it cannot be, it is unsupported.
        try:
            tp = eval(tp, getattr(func, "__globals__", {}))  # noqa: S307 - the user's own annotation
        except Exception:  # noqa: BLE001
            return _Unresolved(tp)
    if tp is inspect.Parameter.empty or tp is Any:
        if param.default is not inspect.Parameter.empty and param.default is not None:
            return type(param.default)
        return str
    return tp


def add_parameters(parser: argparse.ArgumentParser, func: Callable[..., Any], signature: inspect.Signature, doc: str) -> list[Parameter]:
    """Add an option per parameter of ``signature`` to ``parser``; return their specs.

    :raises ParameterError: for a required parameter whose type cannot be given on
        the command line, or a name that clashes with one of ``daglite run``'s own
        options; the message names the parameter.
    """
    try:
        hints = typing.get_type_hints(func, include_extras=False)
    except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to the raw ones
        hints = {}
    _, param_docs = split_docstring(doc)
    group = parser.add_argument_group("workflow parameters")
    specs = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        specs.append(_add_one(group, param, _annotation(param, hints, func), param_docs.get(param.name, "")))
    return specs


def _add_one(group: Any, param: inspect.Parameter, annotation: Any, doc: str) -> Parameter:
    has_default = param.default is not inspect.Parameter.empty
    option = "--" + param.name.replace("_", "-")
    flags = [option] + ([f"--{param.name}"] if "_" in param.name else [])
    default = param.default if has_default else None
    spec = Parameter(
        name=param.name, option=option, type_text="", default=default, required=not has_default,
        help=doc, positional_only=param.kind is param.POSITIONAL_ONLY, exposed=True,
    )
    try:
        tp, _ = _without_none(annotation)
        kwargs, type_text, container = _argparse_kwargs(tp, has_default)
    except ParameterError as exc:
        if not has_default:
            msg = (
                f"parameter {param.name!r} has type {exc} which cannot be given on the command "
                "line (supported: int, float, str, bool, Path, Enum, Literal, date, dict as JSON, "
                "and lists of those); give it a default or change its type"
            )
            raise ParameterError(msg) from None
        return attrs.evolve(spec, type_text=str(exc), exposed=False)
    suffix = "required" if not has_default else f"default: {show_default(default)}"
    help_text = f"{doc} ({suffix})".strip()
    try:
        group.add_argument(
            *flags, dest=f"param:{param.name}", required=not has_default, default=default,
            help=help_text.replace("%", "%%"), **kwargs,
        )
    except argparse.ArgumentError:
        msg = (
            f"parameter {param.name!r} clashes with daglite run's own {option} option; "
            "rename the parameter"
        )
        raise ParameterError(msg) from None
    return attrs.evolve(spec, type_text=type_text, container=container)


def _argparse_kwargs(tp: Any, has_default: bool) -> tuple[dict[str, Any], str, type | None]:
    """``add_argument`` keywords, a display name and the container type for ``tp``.

    A list with a default accepts zero values (``--ids`` alone gives an empty list);
    a required one needs at least one.
    """
    if tp is bool:
        return {"action": argparse.BooleanOptionalAction}, "bool", None
    origin = typing.get_origin(tp) or tp
    if origin in _SEQUENCES:
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if len(set(args)) > 1:
            raise ParameterError(_type_name(tp))
        item = args[0] if args else str
        convert, metavar = _scalar(item)
        container = _SEQUENCES[origin]
        return (
            {"type": convert, "nargs": "*" if has_default else "+", "metavar": metavar},
            f"{container.__name__}[{_type_name(item)}]",
            container,
        )
    convert, metavar = _scalar(tp)
    return {"type": convert, "metavar": metavar}, _type_name(tp), None


def collect_arguments(args: argparse.Namespace, specs: list[Parameter]) -> tuple[list[Any], dict[str, Any]]:
    """The call's positional and keyword arguments from the parsed ``args``."""
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for spec in specs:
        if not spec.exposed:
            continue
        value = getattr(args, spec.dest)
        if spec.container is not None and isinstance(value, list) and spec.container is not list:
            value = spec.container(value)
        if spec.positional_only:
            positional.append(value)
        else:
            keywords[spec.name] = value
    return positional, keywords


def describe_parameters(func: Callable[..., Any], signature: inspect.Signature, doc: str) -> list[Parameter]:
    """The parameters' specs, as :func:`add_parameters` would build them (for ``describe``)."""
    parser = argparse.ArgumentParser(add_help=False)
    return add_parameters(parser, func, signature, doc)
