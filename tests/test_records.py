"""The record-building tricks of the hot paths give the same objects as the constructors."""

from __future__ import annotations

import linecache
import uuid

import attrs
import pytest

import daglite_core as d
from daglite_core._metadata import make_metadata
from daglite_core._protocols import Outcome, WorkItem, new_item, new_outcome
from daglite_core._records import fast_constructor, new_id, uuid_from_int


def test_make_metadata_equals_the_constructor() -> None:
    ids = [uuid.uuid4() for _ in range(4)]
    args = (ids[0], "n[1]", "thread", {"x": 1}, "doc", 1, ids[1], False, True, ids[2], ids[3])
    made = make_metadata(*args)
    built = d.TaskMetadata(*args)
    assert made == built
    assert attrs.asdict(made, recurse=False) == attrs.asdict(built, recurse=False)
    assert type(made) is d.TaskMetadata
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        made.name = "other"  # type: ignore[misc]


def test_defaults_apply_as_in_the_class() -> None:
    assert new_outcome(True, 5) == Outcome(True, 5)
    assert new_outcome(False, error=ValueError) == Outcome(False, error=ValueError)
    assert new_item(3, (1, 2)) == WorkItem(3, (1, 2))


def test_uuid_from_int_equals_uuid() -> None:
    for value in (0, 1, 2**64 + 7, 2**128 - 1):
        made = uuid_from_int(value)
        assert made == uuid.UUID(int=value)
        assert str(made) == str(uuid.UUID(int=value)) and hash(made) == hash(uuid.UUID(int=value))
        assert made.is_safe is uuid.SafeUUID.unknown
    assert isinstance(new_id(), uuid.UUID) and new_id() != new_id()


def test_records_with_validators_or_factories_are_refused() -> None:
    @attrs.frozen(slots=True)
    class Checked:
        x: int = attrs.field(validator=attrs.validators.instance_of(int))

    @attrs.frozen(slots=True)
    class Factory:
        x: list[int] = attrs.field(factory=list)

    for cls in (Checked, Factory):
        with pytest.raises(TypeError, match=cls.__qualname__):
            fast_constructor(cls)


def test_generated_source_is_in_linecache() -> None:
    code = make_metadata.__code__
    lines = linecache.getlines(code.co_filename)
    assert lines and lines[0].startswith("def make_TaskMetadata(")
    assert any("_set_session_id(obj, session_id)" in line for line in lines)


def test_every_generated_function_shows_its_source() -> None:
    @d.task
    def add(a: int, b: int = 2) -> int:
        return a + b

    from daglite_core.testing import RecordingPlugin

    for func in (add._binder, make_metadata, RecordingPlugin.before_node_execute):
        lines = linecache.getlines(func.__code__.co_filename)
        assert func.__code__.co_filename.startswith("<daglite ")
        assert lines[0].startswith(f"def {func.__name__}(")


def test_every_positionally_built_frame_has_all_fields() -> None:
    """The hot paths build ``Frame`` with ``tuple.__new__``: a new field must reach each of them."""
    import ast
    from pathlib import Path

    import daglite_core
    from daglite_core._context import Frame

    root = Path(daglite_core.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call) and len(node.args) == 2
                and isinstance(node.args[0], ast.Name) and node.args[0].id == "Frame"
                and isinstance(node.args[1], ast.Tuple)
            ):
                found.append((path.name, node.lineno, len(node.args[1].elts)))
    assert len(found) >= 4, found  # run_fast, call_plain (2), the worker's observed loop (2)
    assert all(arity == len(Frame._fields) for _, _, arity in found), found
