"""``{param}`` / ``{map_index}`` templates for task names and dataset keys."""

from __future__ import annotations

from _string import formatter_parser  # type: ignore[import-not-found]  # what string.Formatter.parse uses
from collections.abc import Collection, Mapping
from typing import Any

RESERVED = frozenset({"map_index"})


def template_fields(template: str, what: str, allowed: Collection[str]) -> frozenset[str]:
    """The placeholder roots of ``template``; ``ValueError`` for unknown or malformed ones.

    ``what`` names the template in the message (e.g. ``"task 'load' name"``).
    """
    try:
        parsed = list(formatter_parser(template))
    except ValueError as exc:
        msg = f"The {what} template {template!r} is malformed: {exc}"
        raise ValueError(msg) from exc
    fields = set()
    for _, field, _, _ in parsed:
        if field is None:
            continue
        root = field.split(".", 1)[0].split("[", 1)[0]
        if not root or root.isdigit():
            msg = f"The {what} template {template!r} has a positional placeholder {{{field}}}; use parameter names"
            raise ValueError(msg)
        if root not in allowed and root not in RESERVED:
            known = ", ".join(sorted({*allowed, *RESERVED}))
            msg = (
                f"The {what} template {template!r} references unknown placeholder {{{root}}}, "
                f"which won't be available at runtime; known: {known}"
            )
            raise ValueError(msg)
        fields.add(root)
    return frozenset(fields)


def has_placeholders(template: str) -> bool:
    """Whether ``template`` has any ``{...}`` field (``ValueError`` if malformed)."""
    return any(field is not None for _, field, _, _ in formatter_parser(template))


def fill(template: str, values: Mapping[str, Any], map_index: int | None) -> str:
    """Format ``template`` with ``values`` and ``map_index`` (literal ``{x}`` if absent)."""
    return template.format_map(_Values(values, map_index))


class _Values(dict[str, Any]):
    def __init__(self, values: Mapping[str, Any], map_index: int | None) -> None:
        super().__init__(values)
        self["map_index"] = map_index

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill_key(template: str, values: Mapping[str, Any], map_index: int | None, what: str) -> str:
    """Fill a dataset key template, refusing values that would add or climb path segments.

    Checked before formatting (reliability rule): a value containing ``/``, ``\\``
    or NUL, or equal to ``.``/``..``, is a ``ValueError`` naming the template, the
    parameter and the value. ``{map_index}`` outside a map is a ``ValueError`` too
    (never the text ``None``).
    """
    allowed = {*values, *RESERVED}
    for root in template_fields(template, what, allowed):
        if root == "map_index" and map_index is None:
            msg = f"{what} key {template!r} uses {{map_index}}, but this call is not an item of map_tasks"
            raise ValueError(msg)
        value = map_index if root == "map_index" else values[root]
        text = str(value)
        if text in (".", "..", "") or any(c in text for c in "/\\\x00"):
            msg = (
                f"{what} key {template!r}: parameter {root}={value!r} cannot be used in a key "
                "(it is empty, '.', '..', or contains '/', '\\' or NUL)"
            )
            raise ValueError(msg)
    return fill(template, values, map_index)
