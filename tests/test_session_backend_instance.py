"""``session(backend=<instance>)``: a Backend object instead of a name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from daglite_core import BackendError, map_tasks, session, task
from daglite_core.testing import RecordingPlugin


@task
def double(x: int) -> int:
    return 2 * x


class CountingBackend:
    """Runs items inline and counts what it ran and how often it was closed."""

    name: ClassVar[str] = "counting"
    aliases: ClassVar[tuple[str, ...]] = ("tally",)

    def __init__(self) -> None:
        self.ran = 0
        self.closed = 0

    def run(self, runner: Any, items: Sequence[Any]) -> list[Any]:
        self.ran += len(items)
        return [runner(item) for item in items]

    def close(self) -> None:
        self.closed += 1


class TestBackendInstance:
    def test_instance_is_the_default_backend(self) -> None:
        """A given instance runs the session's maps and is closed once at its end."""
        backend = CountingBackend()
        recorder = RecordingPlugin(hooks=["before_map"])
        with session(backend=backend, plugins=[recorder]) as state:  # type: ignore[arg-type]
            assert state.backend == "counting"
            assert map_tasks(double, [1, 2, 3]) == [2, 4, 6]
            assert backend.closed == 0
        assert backend.ran == 3
        assert backend.closed == 1
        assert recorder.of("before_map")[0]["backend"] == "counting"

    def test_instance_answers_to_its_name_and_aliases(self) -> None:
        """``map_tasks(backend=<name or alias>)`` finds the given instance."""
        backend = CountingBackend()
        with session(backend=backend):  # type: ignore[arg-type]
            assert map_tasks(double, [1], backend="tally") == [2]
            assert map_tasks(double, [1], backend="inline") == [2]
        assert backend.ran == 1

    def test_nested_session_uses_but_does_not_close_it(self) -> None:
        """An inner session inherits the instance; only the outer session closes it."""
        backend = CountingBackend()
        with session(backend=backend):  # type: ignore[arg-type]
            with session() as inner:
                assert inner.backend == "counting"
                assert map_tasks(double, [5]) == [10]
            assert backend.closed == 0
        assert backend.ran == 1
        assert backend.closed == 1

    def test_not_a_backend_is_a_type_error(self) -> None:
        """An object that is neither a name nor a Backend is rejected, naming it."""
        with pytest.raises(TypeError, match="backend name or a Backend instance.*object"):
            with session(backend=object()):  # type: ignore[arg-type]
                pass

    def test_unknown_name_still_lists_known_backends(self) -> None:
        """Names keep working as before."""
        with pytest.raises(BackendError, match="nope"):
            with session(backend="nope"):
                pass
