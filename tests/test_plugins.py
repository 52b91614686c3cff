"""Plugins: registration, validation, failure isolation, strict mode, entry points."""

from __future__ import annotations

import logging
import types
from typing import Any

import pytest

import daglite_core as d
import daglite_core._hooks._manager as _plugins
from daglite_core.testing import RecordingPlugin

from fake_entry_points import FakeEntryPoint, install


@d.task
def one() -> int:
    return 1


class Raising:
    """A plugin whose hooks raise."""

    @d.hookimpl
    def before_node_execute(self, metadata: Any) -> None:
        raise RuntimeError("before broke")

    @d.hookimpl
    def after_node_execute(self, metadata: Any) -> None:
        raise RuntimeError("after broke")

    @d.hookimpl
    def on_node_error(self, error: BaseException) -> None:
        raise RuntimeError("error hook broke")


class TestValidation:
    def test_misspelt_hook_name_is_an_error_naming_plugin_and_hook(self) -> None:
        class Typo:
            @d.hookimpl
            def befor_node_execute(self, metadata: Any) -> None: ...

        with pytest.raises(d.PluginError, match=r"Plugin 'TestValidation.*Typo' implements unknown hook 'befor_node_execute' \(did you mean 'before_node_execute'\?\)") as info:
            d.register_plugins(Typo())
        assert info.value.hook == "befor_node_execute"
        with pytest.raises(d.PluginError, match="unknown hook"), d.session(plugins=[Typo()]):
            pass

    def test_unknown_argument_is_an_error_naming_it(self) -> None:
        class BadArg:
            @d.hookimpl
            def after_node_execute(self, metadata: Any, outcome: Any) -> None: ...

        with pytest.raises(d.PluginError, match=r"hook 'after_node_execute' asks for unknown argument\(s\) 'outcome'"):
            d.register_plugins(BadArg())

    def test_wrappers_are_rejected(self) -> None:
        class Wrapper:
            @d.hookimpl(wrapper=True)
            def before_node_execute(self, metadata: Any):  # type: ignore[no-untyped-def]
                yield

        with pytest.raises(d.PluginError, match="is a wrapper"):
            d.register_plugins(Wrapper())

    def test_a_class_instead_of_an_instance_is_a_type_error(self) -> None:
        with pytest.raises(TypeError, match=r"register RecordingPlugin\(\) instead"):
            d.register_plugins(RecordingPlugin)

    def test_optional_hooks_and_specname(self) -> None:
        class Named:
            @d.hookimpl(specname="before_node_execute")
            def on_start(self, metadata: Any) -> None:
                seen.append(metadata.name)

            @d.hookimpl(optionalhook=True)
            def some_future_hook(self) -> None: ...

        seen: list[str] = []
        with d.session(plugins=[Named()]):
            one()
        assert seen == ["one"]

    def test_module_plugins_work(self) -> None:
        module = types.ModuleType("my_plugin")
        calls: list[str] = []

        @d.hookimpl
        def before_node_execute(metadata: Any) -> None:
            calls.append(metadata.name)

        module.before_node_execute = before_node_execute  # type: ignore[attr-defined]
        with d.session(plugins=[module]):
            one()
        assert calls == ["one"]


class TestIsolation:
    def test_a_raising_observer_never_loses_the_result_and_others_still_see_the_event(self, caplog: pytest.LogCaptureFixture) -> None:
        recorder = RecordingPlugin()
        with caplog.at_level(logging.ERROR, logger="daglite"), d.session(plugins=[recorder, Raising()]):
            assert one() == 1
        assert recorder.names().count("before_node_execute") == 1
        assert recorder.names().count("after_node_execute") == 1
        messages = [r.getMessage() for r in caplog.records]
        assert "Plugin 'Raising' raised in hook 'before_node_execute': RuntimeError: before broke" in messages
        assert "Plugin 'Raising' raised in hook 'after_node_execute': RuntimeError: after broke" in messages
        assert len(messages) == 2  # one report per failure

    def test_a_raising_error_hook_never_replaces_the_task_error(self, caplog: pytest.LogCaptureFixture) -> None:
        @d.task
        def fails() -> None:
            raise ValueError("original")

        with caplog.at_level(logging.ERROR, logger="daglite"), d.session(plugins=[Raising()]):
            with pytest.raises(d.TaskError, match="original"):
                fails()
        assert any("error hook broke" in r.getMessage() for r in caplog.records)

    def test_a_raising_after_hook_never_reruns_the_body(self, caplog: pytest.LogCaptureFixture) -> None:
        runs = []

        @d.task(retries=2)
        def counted() -> int:
            runs.append(1)
            return len(runs)

        with caplog.at_level(logging.ERROR, logger="daglite"), d.session(plugins=[Raising()]):
            assert counted() == 1
        assert runs == [1]

    def test_strict_mode_propagates_as_plugin_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DAGLITE_STRICT_HOOKS", "1")
        with d.session(plugins=[Raising()]):
            with pytest.raises(d.PluginError, match="Plugin 'Raising' raised in hook 'before_node_execute'") as info:
                one()
        assert isinstance(info.value.__cause__, RuntimeError)
        assert (info.value.plugin, info.value.hook) == ("Raising", "before_node_execute")

    def test_strict_setting(self) -> None:
        with d.session(plugins=[Raising()], settings=d.DagliteSettings(strict_hooks=True)):
            with pytest.raises(d.PluginError):
                one()

    def test_a_raising_session_hook_leaves_no_active_session(self, monkeypatch: pytest.MonkeyPatch) -> None:
        class BadStart:
            @d.hookimpl
            def before_session_start(self, session_id: str) -> None:
                raise RuntimeError("start broke")

        with pytest.raises(d.PluginError):
            with d.session(plugins=[BadStart()], settings=d.DagliteSettings(strict_hooks=True)):
                pass  # pragma: no cover - never entered
        from daglite_core._context import SESSION

        assert SESSION.get() is None


class TestOrder:
    def test_tryfirst_trylast_and_last_registered_first(self) -> None:
        order: list[str] = []

        def plugin(tag: str, **opts: bool) -> object:
            class P:
                @d.hookimpl(**opts)
                def before_node_execute(self) -> None:
                    order.append(tag)

            return P()

        with d.session(plugins=[plugin("last", trylast=True), plugin("a"), plugin("b"), plugin("first", tryfirst=True)]):
            one()
        assert order == ["first", "b", "a", "last"]


class TestGlobalPlugins:
    def test_registered_plugins_see_calls_outside_any_session(self) -> None:
        recorder = RecordingPlugin()
        d.register_plugins(recorder)
        with pytest.raises(d.PluginError, match=r"Plugin 'RecordingPlugin' .* is already registered \(through register_plugins\)"):
            d.register_plugins(recorder)
        assert one() == 1
        assert recorder.names() == ["before_node_execute", "after_node_execute"]
        d.unregister_plugins(recorder)
        one()
        assert len(recorder.calls) == 2

    def test_registered_plugins_see_session_calls_too(self) -> None:
        recorder = RecordingPlugin(hooks=["before_node_execute"])
        d.register_plugins(recorder)
        with d.session():
            one()
        assert len(recorder.calls) == 1


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch) -> list[FakeEntryPoint]:
    monkeypatch.setenv("DAGLITE_PLUGINS_AUTOLOAD", "1")
    return install(monkeypatch, [])


class TestEntryPoints:
    def test_entry_point_plugins_are_loaded_and_listed(self, entry_points: list[FakeEntryPoint]) -> None:
        recorder = RecordingPlugin(hooks=["before_node_execute"])
        entry_points.append(FakeEntryPoint("rec", recorder))
        one()
        assert len(recorder.calls) == 1
        (info,) = [p for p in d.list_plugins() if p.name == "rec"]
        assert (info.distribution, info.version, info.status, info.source) == ("daglite-rec", "1.0", "enabled", "entry point")
        assert "before_node_execute" in info.hooks

    @pytest.mark.parametrize("disabled", ["rec", "daglite-rec", "other, rec"])
    def test_disable_by_entry_point_or_distribution_name(self, entry_points: list[FakeEntryPoint], monkeypatch: pytest.MonkeyPatch, disabled: str) -> None:
        recorder = RecordingPlugin()
        entry_points.append(FakeEntryPoint("rec", recorder))
        monkeypatch.setenv("DAGLITE_DISABLE_PLUGINS", disabled)
        one()
        assert recorder.calls == []
        (info,) = [p for p in d.list_plugins() if p.name == "rec"]
        assert (info.status, info.reason) == ("disabled", "listed in DAGLITE_DISABLE_PLUGINS")

    def test_autoload_off_disables_every_entry_point(self, entry_points: list[FakeEntryPoint], monkeypatch: pytest.MonkeyPatch) -> None:
        recorder = RecordingPlugin()
        entry_points.append(FakeEntryPoint("rec", recorder))
        monkeypatch.setenv("DAGLITE_PLUGINS_AUTOLOAD", "0")
        one()
        assert recorder.calls == []
        assert [p.reason for p in d.list_plugins() if p.name == "rec"] == ["DAGLITE_PLUGINS_AUTOLOAD=0"]

    def test_session_can_load_a_plugin_by_name_when_autoload_is_off(self, entry_points: list[FakeEntryPoint], monkeypatch: pytest.MonkeyPatch) -> None:
        recorder = RecordingPlugin(hooks=["before_node_execute"])
        entry_points.append(FakeEntryPoint("rec", recorder))
        monkeypatch.setenv("DAGLITE_PLUGINS_AUTOLOAD", "0")
        with d.session(plugins=["rec"]):
            one()
        assert len(recorder.calls) == 1
        with pytest.raises(d.PluginError, match="No daglite plugin named 'nope' is installed; installed: rec"):
            with d.session(plugins=["nope"]):
                pass  # pragma: no cover

    def test_session_settings_can_disable_a_global_plugin(self, entry_points: list[FakeEntryPoint]) -> None:
        recorder = RecordingPlugin()
        entry_points.append(FakeEntryPoint("rec", recorder))
        with d.session(settings=d.DagliteSettings(disable_plugins=("rec",))):
            one()
        assert recorder.calls == []

    def test_a_plugin_whose_import_fails_is_reported_not_fatal(self, entry_points: list[FakeEntryPoint], caplog: pytest.LogCaptureFixture) -> None:
        entry_points.append(FakeEntryPoint("broken", ImportError("no module named 'missing_dep'")))
        with caplog.at_level(logging.WARNING, logger="daglite"):
            assert one() == 1
        (info,) = [p for p in d.list_plugins() if p.name == "broken"]
        assert info.status == "failed" and "missing_dep" in info.reason
        assert any("'broken'" in r.getMessage() and "failed to load" in r.getMessage() for r in caplog.records)

    def test_an_invalid_entry_point_plugin_is_reported_not_fatal(self, entry_points: list[FakeEntryPoint], caplog: pytest.LogCaptureFixture) -> None:
        class Typo:
            @d.hookimpl
            def befor_node_execute(self) -> None: ...

        entry_points.append(FakeEntryPoint("typo", Typo()))
        with caplog.at_level(logging.WARNING, logger="daglite"):
            assert one() == 1
        (info,) = [p for p in d.list_plugins() if p.name == "typo"]
        assert info.status == "failed" and "unknown hook 'befor_node_execute'" in info.reason


def test_add_hookspecs_lets_plugins_define_hooks() -> None:
    class Specs:
        @d.hookspec
        def my_plugin_event(self, payload: Any) -> None:
            """A hook of another plugin."""

    d.add_hookspecs(Specs)
    try:
        class Impl:
            @d.hookimpl
            def my_plugin_event(self, payload: Any) -> None:
                got.append(payload)

        got: list[Any] = []
        with d.session(plugins=[Impl()]) as state:
            state.plugins.notify("my_plugin_event", 42)
        assert got == [42]
    finally:
        _plugins.SPECS.pop("my_plugin_event")
