"""Input validation: the task's own signature by default, or ``model_validators=``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ._errors import InputError, SignatureError

Validator = Callable[[dict[str, Any]], Mapping[str, Any]]
"""A callable that takes the merged kwargs and returns the validated kwargs (or raises)."""


def _attrs_validator(cls: type) -> Validator:
    def validate(kwargs: dict[str, Any]) -> Mapping[str, Any]:
        instance = cls(**kwargs)
        return attrs.asdict(instance, recurse=False)

    validate.__name__ = cls.__name__
    return validate


def make_validators(task_name: str, spec: Any) -> tuple[Validator, ...]:
    """Normalise ``model_validators=``: ``None``, one validator, or a sequence applied in order.

    An attrs class is called with the kwargs and its fields become the validated
    kwargs (``attrs.asdict(..., recurse=False)``); any other callable is called with
    the kwargs as one ``dict`` and returns the validated mapping.
    """
    if spec is None:
        return ()
    items = list(spec) if isinstance(spec, Sequence) and not isinstance(spec, str) else [spec]
    out: list[Validator] = []
    for item in items:
        if isinstance(item, type) and attrs.has(item):
            out.append(_attrs_validator(item))
        elif callable(item):
            out.append(item)
        else:
            msg = (
                f"sign({task_name!r}): model_validators must be an attrs class or a callable "
                f"kwargs -> kwargs, got {type(item).__name__} {item!r}"
            )
            raise SignatureError(msg)
    return tuple(out)


def check_signature(task_name: str, signature: inspect.Signature, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Bind ``kwargs`` to the task's signature; defaults applied. ``InputError`` if they do not fit."""
    try:
        bound = signature.bind(**kwargs)
    except TypeError as exc:
        msg = f"Task {task_name!r}: input does not fit {signature}: {exc} (got {sorted(kwargs)})"
        raise InputError(msg, task_name, kwargs) from exc
    bound.apply_defaults()
    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        else:
            out[name] = value
    return out


def validate(
    task_name: str,
    signature: inspect.Signature,
    validators: tuple[Validator, ...],
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Run the custom validators in order, then check the result against the signature."""
    current = dict(kwargs)
    for validator in validators:
        name = getattr(validator, "__name__", type(validator).__name__)
        try:
            result = validator(dict(current))
        except Exception as exc:
            msg = f"Task {task_name!r}: model validator {name!r} rejected the input {sorted(current)}: {type(exc).__name__}: {exc}"
            raise InputError(msg, task_name, current) from exc
        if not isinstance(result, Mapping):
            msg = f"Task {task_name!r}: model validator {name!r} returned {type(result).__name__}, expected a mapping of kwargs"
            raise InputError(msg, task_name, current)
        current = dict(result)
    return check_signature(task_name, signature, current)
