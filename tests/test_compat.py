"""daglite 0.9 drop-in compatibility: settings names, workflow typed params,
``map_tasks`` with no iterables, and the error phrases daglite users match on.

The ``match=`` strings in ``TestDagliteMessages`` are the ones daglite 0.9's own
test-suite uses, so code written against daglite keeps catching our errors.
"""

from __future__ import annotations

import threading
from typing import Annotated

import pytest

import daglite_core as d
from daglite_core.testing import RecordingPlugin


@d.task
def wait_for_peers(barrier: threading.Barrier) -> str:
    barrier.wait()  # raises BrokenBarrierError unless every party runs at once
    return threading.current_thread().name


@d.task
def double(x: int) -> int:
    return 2 * x


class TestSettingsNames:
    def test_defaults_leave_both_pools_on_max_workers(self) -> None:
        s = d.DagliteSettings(max_workers=3)
        assert (s.max_backend_threads, s.max_parallel_processes) == (None, None)
        assert (s.thread_workers, s.process_workers) == (3, 3)

    def test_each_name_overrides_its_own_backend_only(self) -> None:
        s = d.DagliteSettings(max_workers=2, max_backend_threads=5, max_parallel_processes=4)
        assert (s.workers, s.thread_workers, s.process_workers) == (2, 5, 4)
        assert s.evolve(max_backend_threads=None).thread_workers == 2

    @pytest.mark.parametrize("name", ["max_backend_threads", "max_parallel_processes"])
    @pytest.mark.parametrize("bad", [0, -2])
    def test_values_below_one_are_rejected_naming_the_field(self, name: str, bad: int) -> None:
        with pytest.raises(ValueError, match=rf"DagliteSettings\.{name}={bad} must be at least 1"):
            d.DagliteSettings(**{name: bad})

    def test_thread_backend_runs_max_backend_threads_at_once(self) -> None:
        barrier = threading.Barrier(3, timeout=20)
        settings = d.DagliteSettings(max_workers=1, max_backend_threads=3)
        with d.session(backend="thread", settings=settings):
            names = d.map_tasks(wait_for_peers, [barrier] * 3)
        assert len(set(names)) == 3  # with one thread the barrier would break instead

    @pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
    def test_process_backend_starts_max_parallel_processes_workers(self) -> None:
        settings = d.DagliteSettings(max_workers=1, max_parallel_processes=2)
        with d.session(backend="process", settings=settings) as state:
            assert d.map_tasks(double, range(8)) == [2 * x for x in range(8)]
            assert len(state.get_backend("process").worker_pids()) == 2  # type: ignore[attr-defined]


def typed(x: int, name: str = "a", *rest: float, flag: Annotated[bool, "doc"] = False) -> None:
    """All annotated (``Annotated`` extras are stripped, as typing.get_type_hints does)."""


def partly(x: int, y, **extra) -> None:  # type: ignore[no-untyped-def]
    """``y`` and ``**extra`` have no annotation."""


class TestTypedParams:
    def test_every_parameter_in_order_with_its_resolved_type(self) -> None:
        wf = d.workflow(typed)
        assert wf.get_typed_params() == {"x": int, "name": str, "rest": float, "flag": bool}
        assert list(wf.get_typed_params()) == ["x", "name", "rest", "flag"]
        assert wf.has_typed_params() is True

    def test_missing_annotations_are_none(self) -> None:
        wf = d.workflow(partly)
        assert wf.get_typed_params() == {"x": int, "y": None, "extra": None}
        assert wf.has_typed_params() is False

    def test_string_annotations_are_resolved(self) -> None:
        # this module uses ``from __future__ import annotations``: every hint is a string
        assert typed.__annotations__["x"] == "int"
        assert d.workflow(typed).get_typed_params()["x"] is int

    def test_unresolvable_annotations_count_as_absent(self) -> None:
        def broken(x: NoSuchType, y: int) -> None:  # type: ignore[name-defined]  # noqa: F821
            pass

        wf = d.workflow(broken)
        assert wf.get_typed_params() == {"x": None, "y": None}
        assert wf.has_typed_params() is False

    def test_no_parameters_counts_as_typed(self) -> None:
        def nothing() -> int:
            return 1

        assert d.workflow(nothing).get_typed_params() == {}
        assert d.workflow(nothing).has_typed_params() is True


class TestMapWithoutIterables:
    def test_returns_an_empty_list_as_zip_would(self) -> None:
        assert d.map_tasks(double) == []
        assert d.map_tasks(lambda: 1) == []

    def test_no_task_runs_and_the_map_hooks_report_zero_items(self) -> None:
        recorder = RecordingPlugin()
        with d.session(plugins=[recorder], backend="thread"):
            assert d.map_tasks(double) == []
        assert [c["total"] for c in recorder.of("before_map")] == [0]
        assert [c["failed"] for c in recorder.of("after_map")] == [0]
        assert recorder.of("before_node_execute") == []

    def test_gather_tasks_likewise(self) -> None:
        import asyncio

        @d.task
        async def adouble(x: int) -> int:
            return 2 * x

        assert asyncio.run(d.gather_tasks(adouble)) == []


class TestDagliteMessages:
    """Each error keeps daglite 0.9's phrase and adds what went wrong and where."""

    @pytest.mark.parametrize(
        ("option", "value", "phrase"),
        [
            ("cache", True, "Caching is not supported"),
            ("retries", 2, "Retries are not supported"),
            ("timeout", 1.0, "Timeouts are not supported"),
            ("dataset", "out.pkl", "Datasets are not supported"),
        ],
    )
    def test_generator_task_options(self, option: str, value: object, phrase: str) -> None:
        def gen():  # type: ignore[no-untyped-def]
            yield 1

        with pytest.raises(ValueError, match=phrase) as caught:
            d.task(**{option: value})(gen)
        assert f"Task 'gen' sets {option}=" in str(caught.value)

    def test_unknown_name_placeholder(self) -> None:
        with pytest.raises(ValueError, match="references") as caught:
            d.task(name="load-{nope}")(lambda path: path)
        assert "{nope}" in str(caught.value) and "known: map_index, path" in str(caught.value)

    def test_unknown_dataset_placeholder(self) -> None:
        with pytest.raises(ValueError, match="references") as caught:
            d.task(dataset="out/{nope}.json")(lambda x: x)
        assert "dataset template 'out/{nope}.json'" in str(caught.value)

    @pytest.mark.parametrize("bad", [42, None, "text"])
    def test_task_on_a_non_callable(self, bad: object) -> None:
        with pytest.raises(TypeError, match="callable functions") as caught:
            d.task(bad)  # type: ignore[call-overload]
        assert repr(bad) in str(caught.value)

    def test_task_on_a_class(self) -> None:
        class Thing:
            pass

        with pytest.raises(TypeError, match="callable functions") as caught:
            d.task(Thing)
        assert "Thing" in str(caught.value)

    def test_map_tasks_on_a_non_callable(self) -> None:
        with pytest.raises(TypeError, match="expects a callable"):
            d.map_tasks(42, [1])  # type: ignore[arg-type]

    def test_workflow_on_a_non_callable(self) -> None:
        with pytest.raises(TypeError, match="callable functions"):
            d.workflow(42)  # type: ignore[call-overload]

    def test_workflow_on_a_generator_function(self) -> None:
        def stream():  # type: ignore[no-untyped-def]
            yield 1

        with pytest.raises(TypeError, match="generator functions") as caught:
            d.workflow(stream)
        assert "'TestDagliteMessages.test_workflow_on_a_generator_function.<locals>.stream'" in str(caught.value)

    @pytest.mark.parametrize("register", ["global", "session"])
    def test_plugin_class_instead_of_an_instance(self, register: str) -> None:
        with pytest.raises(TypeError, match="daglite expects plugins to be registered as instances") as caught:
            if register == "global":
                d.register_plugins(RecordingPlugin)
            else:
                with d.session(plugins=[RecordingPlugin]):
                    pass
        assert "register RecordingPlugin() instead" in str(caught.value)

    def test_unknown_backend(self) -> None:
        with pytest.raises(d.BackendError, match="Unknown backend"):
            d.map_tasks(double, [1], backend="nope")
