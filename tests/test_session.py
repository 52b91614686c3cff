"""Sessions, workflows and settings."""

from __future__ import annotations

import asyncio

import attrs
import pytest

import daglite_core as d
from daglite_core.testing import RecordingPlugin


@d.task
def one() -> int:
    return 1


def test_hook_before_session_start_and_after_session_end() -> None:
    recorder = RecordingPlugin()
    with d.session(plugins=[recorder]) as state:
        one()
    assert recorder.names()[0] == "before_session_start"
    assert recorder.names()[-1] == "after_session_end"
    start, end = recorder.of("before_session_start")[0], recorder.of("after_session_end")[0]
    assert start["session_id"] == end["session_id"] == state.id
    assert end["duration"] >= 0


def test_after_session_end_fires_when_the_body_raises() -> None:
    recorder = RecordingPlugin(hooks=["after_session_end"])
    with pytest.raises(ZeroDivisionError), d.session(plugins=[recorder]):
        1 / 0  # noqa: B018
    assert len(recorder.calls) == 1


def test_session_plugins_are_scoped_to_the_session() -> None:
    recorder = RecordingPlugin(hooks=["before_node_execute"])
    with d.session(plugins=[recorder]):
        one()
    one()
    assert len(recorder.calls) == 1


def test_async_session() -> None:
    recorder = RecordingPlugin(hooks=["before_node_execute", "after_session_end"])

    @d.task
    async def aone() -> int:
        return 1

    async def main() -> int:
        async with d.async_session(plugins=[recorder]):
            return await aone()

    assert asyncio.run(main()) == 1
    assert recorder.names() == ["before_node_execute", "after_session_end"]


def test_nested_session_extends_the_outer_one() -> None:
    outer_rec, inner_rec = RecordingPlugin(hooks=["before_node_execute"]), RecordingPlugin(hooks=["before_node_execute"])
    with d.session(plugins=[outer_rec], backend="thread") as outer:
        with d.session(plugins=[inner_rec]) as inner:
            one()
            assert inner.backend == "thread"
        one()
    assert len(outer_rec.calls) == 2 and len(inner_rec.calls) == 1
    assert inner.id != outer.id


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(d.BackendError, match="Unknown backend 'gpu'; known backends: .*inline.*thread"):
        with d.session(backend="gpu"):
            pass  # pragma: no cover


class TestWorkflow:
    def test_workflow_opens_a_session(self) -> None:
        recorder = RecordingPlugin(hooks=["before_session_start", "before_node_execute"])

        @d.workflow(plugins=[recorder])
        def pipeline(x: int) -> int:
            """Run the thing."""
            return one() + x

        assert pipeline(1) == 2
        assert recorder.names() == ["before_session_start", "before_node_execute"]
        assert (pipeline.name, pipeline.description) == ("pipeline", "Run the thing.")
        assert list(pipeline.signature.parameters) == ["x"]

    def test_workflow_inside_a_session_joins_it(self) -> None:
        recorder = RecordingPlugin(hooks=["before_session_start", "before_node_execute"])

        @d.workflow
        def pipeline() -> int:
            return one()

        with d.session(plugins=[recorder]):
            pipeline()
        assert recorder.names() == ["before_session_start", "before_node_execute"]

    def test_async_workflow(self) -> None:
        @d.workflow(name="apipe")
        async def pipeline() -> int:
            return one()

        assert pipeline.name == "apipe"
        assert asyncio.run(pipeline()) == 1  # type: ignore[arg-type]

    def test_workflow_rejects_generators_and_unknown_options(self) -> None:
        def gen():  # type: ignore[no-untyped-def]
            yield 1

        with pytest.raises(TypeError, match="generator"):
            d.workflow(gen)
        with pytest.raises(TypeError, match="unknown option"):
            d.workflow(colour="red")(one.func)  # type: ignore[call-overload]


class TestSettings:
    def test_environment_overrides(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DAGLITE_BACKEND", "thread")
        monkeypatch.setenv("DAGLITE_CACHE_STORE", "/tmp/c")
        monkeypatch.setenv("DAGLITE_DATASET_STORE", "/tmp/d")
        monkeypatch.setenv("DAGLITE_DISABLE_PLUGINS", "a, b")
        monkeypatch.setenv("DAGLITE_PLUGINS_AUTOLOAD", "no")
        monkeypatch.setenv("DAGLITE_STRICT_HOOKS", "true")
        monkeypatch.setenv("DAGLITE_MAX_WORKERS", "3")
        monkeypatch.setenv("DAGLITE_CACHE_MODE", "refresh")
        s = d.DagliteSettings()
        assert (s.backend, s.cache_store, s.dataset_store) == ("thread", "/tmp/c", "/tmp/d")
        assert s.disable_plugins == ("a", "b")
        assert (s.plugins_autoload, s.strict_hooks, s.max_workers, s.workers, s.cache_mode) == (False, True, 3, 3, "refresh")

    def test_explicit_arguments_win_over_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DAGLITE_BACKEND", "thread")
        assert d.DagliteSettings(backend="inline").backend == "inline"

    @pytest.mark.parametrize(
        ("name", "value", "message"),
        [
            ("DAGLITE_STRICT_HOOKS", "maybe", "DAGLITE_STRICT_HOOKS='maybe' is not a boolean"),
            ("DAGLITE_MAX_WORKERS", "many", "DAGLITE_MAX_WORKERS='many' is not an integer"),
            ("DAGLITE_MAX_WORKERS", "0", "must be at least 1"),
            ("DAGLITE_CACHE_MODE", "sometimes", "cache_mode='sometimes'"),
        ],
    )
    def test_bad_environment_values_name_the_variable(self, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=message):
            d.DagliteSettings()

    def test_session_uses_the_backend_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DAGLITE_BACKEND", "thread")
        with d.session() as state:
            assert state.backend == "thread"

    def test_opening_and_closing_a_session_starts_no_thread(self) -> None:
        import threading

        before = threading.active_count()
        with d.session():
            during = threading.active_count()
        assert during == before == threading.active_count()


def test_settings_evolve() -> None:
    s = d.DagliteSettings(backend="inline").evolve(backend="thread")
    assert s.backend == "thread"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        s.backend = "x"  # type: ignore[misc]




def test_the_pytest_fixture_records_calls_outside_sessions(daglite_recorder: RecordingPlugin) -> None:
    one()
    assert daglite_recorder.names() == ["before_node_execute", "after_node_execute"]
    assert daglite_recorder.of("after_node_execute")[0]["result"] == 1
