"""The plugin system without silent mistakes (issue 12) and one report per failing hook (issue 11.5)."""

from __future__ import annotations

import logging
import types
from typing import Any

import pytest

import daglite_core as d
import daglite_core._hooks._manager as _plugins
from daglite_core.testing import RecordingPlugin

from fake_entry_points import FakeEntryPoint, install


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch) -> list[FakeEntryPoint]:
    monkeypatch.setenv("DAGLITE_PLUGINS_AUTOLOAD", "1")
    return install(monkeypatch, [])


@d.task
def one() -> int:
    return 1


@d.task
def double(x: int) -> int:
    return 2 * x


class Observer:
    @d.hookimpl
    def before_node_execute(self, metadata: Any) -> None:
        seen.append(metadata.name)


seen: list[str] = []


@pytest.fixture(autouse=True)
def _clear_seen() -> None:
    seen.clear()


# -- 12.1 strict registration ------------------------------------------------------------


class TestRegistration:
    def test_a_string_is_one_plugin_name_not_a_list_of_letters(self, entry_points: list[FakeEntryPoint], monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DAGLITE_PLUGINS_AUTOLOAD", "0")
        recorder = RecordingPlugin(hooks=["before_node_execute"])
        entry_points.append(FakeEntryPoint("rec", recorder))
        with d.session(plugins="rec"):
            one()
        assert len(recorder.calls) == 1
        with pytest.raises(d.PluginError, match="No daglite plugin named 'recc' is installed \\(did you mean 'rec'\\?\\)"):
            with d.session(plugins="recc"):
                pass  # pragma: no cover

    def test_one_module_alone_is_one_plugin(self) -> None:
        module = types.ModuleType("solo_plugin")

        @d.hookimpl
        def before_node_execute(metadata: Any) -> None:
            seen.append(metadata.name)

        module.before_node_execute = before_node_execute  # type: ignore[attr-defined]
        with d.session(plugins=module):
            one()
        assert seen == ["one"]

    def test_an_object_without_hookimpl_is_rejected_naming_it(self) -> None:
        class Forgot:
            def before_node_execute(self, metadata: Any) -> None: ...  # no @hookimpl

        with pytest.raises(d.PluginError, match=r"Plugin '.*Forgot' \(Forgot\) has no @daglite_core.hookimpl functions") as info:
            d.register_plugins(Forgot())
        assert info.value.plugin.endswith("Forgot")
        with pytest.raises(d.PluginError, match="has no @daglite_core.hookimpl"), d.session(plugins=[Forgot()]):
            pass  # pragma: no cover

    def test_a_string_cannot_be_registered_as_an_object(self) -> None:
        with pytest.raises(TypeError, match="daglite expects plugins to be registered as instances \\(or modules\\), not 'rec'"):
            d.register_plugins("rec")

    def test_registering_the_same_plugin_twice_is_an_error_naming_it(self) -> None:
        plugin = Observer()
        d.register_plugins(plugin)
        try:
            with pytest.raises(d.PluginError, match=r"Plugin 'Observer' .* is already registered \(through register_plugins\)"):
                d.register_plugins(plugin)
            with pytest.raises(d.PluginError, match=r"Plugin 'Observer' .* is already registered \(globally\)"):
                with d.session(plugins=[plugin]):
                    pass  # pragma: no cover
        finally:
            d.unregister_plugins(plugin)
        with pytest.raises(d.PluginError, match=r"already registered \(earlier in this session's plugins\)"):
            with d.session(plugins=[plugin, plugin]):
                pass  # pragma: no cover
        with d.session(plugins=[plugin]):
            with pytest.raises(d.PluginError, match=r"already registered \(in the enclosing session\)"):
                with d.session(plugins=[plugin]):
                    pass  # pragma: no cover
        # Two instances of one class are two plugins.
        with d.session(plugins=[Observer(), Observer()]):
            one()
        assert seen == ["one", "one"]

    def test_naming_an_active_entry_point_plugin_selects_it_once(self, entry_points: list[FakeEntryPoint]) -> None:
        recorder = RecordingPlugin(hooks=["before_node_execute"])
        entry_points.append(FakeEntryPoint("rec", recorder))
        with d.session(plugins=["rec"]):
            one()
        with d.session(plugins=[recorder]):  # the autoloaded object itself: selected, not an error
            one()
        assert len(recorder.calls) == 2

    def test_an_entry_point_plugin_registered_in_code_first_is_registered_once(self, entry_points: list[FakeEntryPoint]) -> None:
        recorder = RecordingPlugin(hooks=["before_node_execute"])
        entry_points.append(FakeEntryPoint("rec", recorder))
        d.register_plugins(recorder)  # before the entry points are read
        one()
        assert len(recorder.calls) == 1
        assert [p.name for p in d.list_plugins()].count("rec") == 1

    def test_an_unknown_disabled_name_is_warned_about_with_a_did_you_mean(self, entry_points: list[FakeEntryPoint], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
        entry_points.append(FakeEntryPoint("diskcache", RecordingPlugin()))
        monkeypatch.setenv("DAGLITE_DISABLE_PLUGINS", "diskcahce,diskcache")
        with caplog.at_level(logging.WARNING, logger="daglite"):
            with d.session():
                pass
            with d.session():
                pass
        warnings = [r.getMessage() for r in caplog.records if "DAGLITE_DISABLE_PLUGINS" in r.getMessage()]
        assert len(warnings) == 1  # once per name and process
        assert "'diskcahce', which matches no installed or registered plugin (did you mean 'diskcache'?)" in warnings[0]

    def test_strict_hooks_make_a_broken_installed_plugin_fail_the_run(self, entry_points: list[FakeEntryPoint], monkeypatch: pytest.MonkeyPatch) -> None:
        entry_points.append(FakeEntryPoint("broken", ImportError("no module named 'missing_dep'")))
        assert one() == 1  # not strict: reported, skipped
        with pytest.raises(d.PluginError, match="daglite plugin 'broken' failed to load .*missing_dep.*strict hooks are on") as info:
            with d.session(settings=d.DagliteSettings(strict_hooks=True)):
                pass  # pragma: no cover
        assert isinstance(info.value.__cause__, ImportError)
        monkeypatch.setenv("DAGLITE_STRICT_HOOKS", "1")
        from daglite_core._context import reset_default_state

        reset_default_state()
        with pytest.raises(d.PluginError, match="'broken' failed to load"):
            one()


# -- 12.2 the hook tables are their own object --------------------------------------------


@pytest.mark.parametrize("hook", ["collect", "notify", "first", "plugins", "without", "entries", "strict", "call"])
def test_a_plugin_hook_may_be_named_like_a_plugin_set_method(hook: str) -> None:
    got: list[Any] = []

    def spec(self: Any, payload: Any) -> None: ...

    def implementation(self: Any, payload: Any) -> None:
        got.append(payload)

    spec.__qualname__, implementation.__qualname__ = f"Specs.{hook}", f"Impl.{hook}"
    specs = type("Specs", (), {hook: d.hookspec(spec)})
    d.add_hookspecs(specs)
    try:
        impl = type("Impl", (), {hook: d.hookimpl(implementation)})()
        with d.session(plugins=[impl]):
            assert d.map_tasks(double, [1, 2, 3]) == [2, 4, 6]  # the set's methods still work
            d.call_hook(hook, payload=7)
        assert got == [7]
    finally:
        d.remove_hookspecs(specs)


def test_hooks_set_on_an_instance_are_honoured_and_kept_per_instance() -> None:
    class Holder:
        pass

    first, second = Holder(), Holder()
    first.before_node_execute = d.hookimpl(lambda metadata: seen.append(f"first:{metadata.name}"))  # type: ignore[attr-defined]
    second.before_node_execute = d.hookimpl(lambda metadata: seen.append(f"second:{metadata.name}"))  # type: ignore[attr-defined]
    with d.session(plugins=[first, second]):
        one()
    assert seen == ["second:one", "first:one"]

    class WithClassHook:
        @d.hookimpl
        def before_node_execute(self, metadata: Any) -> None:
            seen.append("class")

    seen.clear()
    shadowing = WithClassHook()
    shadowing.before_node_execute = d.hookimpl(lambda metadata: seen.append("instance"))  # type: ignore[method-assign]
    with d.session(plugins=[WithClassHook(), shadowing]):
        one()
    assert seen == ["instance", "class"]


def test_properties_are_not_run_when_a_plugin_is_read() -> None:
    class Lazy:
        @property
        def expensive(self) -> Any:
            raise AssertionError("a property must not run")

        @d.hookimpl
        def before_node_execute(self, metadata: Any) -> None:
            seen.append(metadata.name)

    with d.session(plugins=[Lazy()]):
        one()
    assert seen == ["one"]


def test_tryfirst_and_trylast_together_are_an_error() -> None:
    class Both:
        @d.hookimpl(tryfirst=True, trylast=True)
        def before_node_execute(self) -> None: ...

    with pytest.raises(d.PluginError, match="marked both tryfirst and trylast"):
        d.register_plugins(Both())


def test_a_keyword_only_parameter_without_default_is_an_error() -> None:
    class KwOnly:
        @d.hookimpl
        def before_node_execute(self, *, metadata: Any) -> None: ...

    with pytest.raises(d.PluginError, match="keyword-only parameter\\(s\\) without a default \\('metadata'\\)"):
        d.register_plugins(KwOnly())


# -- 12.4 plugins that define hooks ------------------------------------------------------------


class OwnHooks:
    @d.hookspec
    def on_thing(self, thing: Any, size: int) -> Any:
        """An observer hook of a plugin."""

    @d.hookspec(firstresult=True)
    def provide_thing(self, name: str) -> Any:
        """A provider hook of a plugin."""


def test_add_hookspecs_can_be_undone_and_call_hook_checks_arguments() -> None:
    d.add_hookspecs(OwnHooks)
    try:
        with pytest.raises(ValueError, match="already declared"):
            d.add_hookspecs(OwnHooks)

        class Impl:
            @d.hookimpl
            def on_thing(self, thing: Any) -> str:
                return f"saw {thing}"

            @d.hookimpl
            def provide_thing(self, name: str) -> Any:
                return None if name == "none" else name.upper()

        with d.session(plugins=[Impl()]):
            assert d.call_hook("on_thing", thing="x", size=1) == ["saw x"]
            assert d.call_hook("provide_thing", name="abc") == "ABC"
            assert d.call_hook("provide_thing", name="none") is None
            with pytest.raises(TypeError, match=r"Hook 'on_thing' called with unknown argument\(s\) 'sise' and missing argument\(s\) 'size'"):
                d.call_hook("on_thing", thing="x", sise=1)
        impl = Impl()
        d.register_plugins(impl)
        with pytest.raises(ValueError, match=r"still implemented by registered plugin\(s\) '.*Impl' \(on_thing\)"):
            d.remove_hookspecs(OwnHooks)
        d.unregister_plugins(impl)
    finally:
        d.remove_hookspecs(OwnHooks)
    assert "on_thing" not in _plugins.SPECS
    with pytest.raises(ValueError, match="was not added"):
        d.remove_hookspecs(OwnHooks)
    with pytest.raises(ValueError, match="Unknown hook 'on_thing'"):
        d.call_hook("on_thing", thing=1, size=1)


def test_an_optional_hook_becomes_active_when_its_spec_is_added_later() -> None:
    class Early:
        @d.hookimpl(optionalhook=True)
        def on_thing(self, thing: Any) -> None:
            seen.append(thing)

    plugin = Early()
    d.register_plugins(plugin)
    try:
        d.add_hookspecs(OwnHooks)
        try:
            d.call_hook("on_thing", thing="late", size=0)
        finally:
            d.unregister_plugins(plugin)
            d.remove_hookspecs(OwnHooks)
    finally:
        d.unregister_plugins(plugin)
    assert seen == ["late"]


def test_private_hook_names_are_rejected() -> None:
    class Private:
        @d.hookspec
        def _secret(self) -> None:
            """Not a hook name."""

    with pytest.raises(ValueError, match="hook names cannot start with '_'"):
        d.add_hookspecs(Private)


# -- 12.5 a failing provider names the plugin --------------------------------------------------


class BrokenProviders:
    @d.hookimpl
    def provide_cache_store(self, spec: Any, settings: Any) -> Any:
        raise OSError("disk on fire")

    @d.hookimpl
    def provide_backends(self) -> Any:
        raise RuntimeError("backend module broken")


def test_a_raising_cache_store_provider_names_plugin_and_hook() -> None:
    @d.task(cache=True)
    def cached(x: int) -> int:
        return x

    class CacheOnly:
        daglite_plugin_name = "CacheOnly"
        provide_cache_store = BrokenProviders.provide_cache_store

    with d.session(plugins=[CacheOnly()]):
        with pytest.raises(d.PluginError, match="Plugin 'CacheOnly' raised in provider hook 'provide_cache_store': OSError: disk on fire") as info:
            cached(1)
    assert isinstance(info.value.__cause__, OSError)
    assert (info.value.plugin, info.value.hook) == ("CacheOnly", "provide_cache_store")


def test_a_raising_backend_provider_names_plugin_and_hook() -> None:
    with pytest.raises(d.PluginError, match="Plugin 'BrokenProviders' raised in provider hook 'provide_backends': RuntimeError: backend module broken") as info:
        with d.session(plugins=[BrokenProviders()]):
            pass  # pragma: no cover
    assert isinstance(info.value.__cause__, RuntimeError)


# -- 11.5 one report per failing (plugin, hook) -------------------------------------------------


class AlwaysFails:
    @d.hookimpl
    def before_node_execute(self, metadata: Any) -> None:
        raise RuntimeError(f"broken for {metadata.name}")

    @d.hookimpl
    def after_node_execute(self) -> None:
        raise ValueError("after broken")


@pytest.mark.parametrize("backend", ["inline", "thread", "process"])
def test_a_failing_hook_is_reported_once_with_a_count_at_session_end(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    recorder = RecordingPlugin(hooks=["after_node_execute"])
    with caplog.at_level(logging.ERROR, logger="daglite"):
        with d.session(plugins=[AlwaysFails(), recorder], backend=backend) as state:
            assert d.map_tasks(double, range(50)) == [2 * i for i in range(50)]
            during = [r for r in caplog.records]
        session_id = state.id
    assert len(recorder.calls) == 50  # the other plugin saw every event
    assert len(during) == 2  # one report per (plugin, hook), with its traceback
    assert {r.exc_info[0] for r in during if r.exc_info} == {RuntimeError, ValueError}
    first = [r.getMessage() for r in during]
    assert "Plugin 'AlwaysFails' raised in hook 'before_node_execute': RuntimeError: broken for double[0]" in first or any(
        m.startswith("Plugin 'AlwaysFails' raised in hook 'before_node_execute': RuntimeError: broken for double[") for m in first
    )
    summary = sorted(r.getMessage() for r in caplog.records[2:])
    assert summary == [
        f"Plugin 'AlwaysFails' raised in hook 'after_node_execute' 49 more time(s) in session {session_id} (only the first was reported above)",
        f"Plugin 'AlwaysFails' raised in hook 'before_node_execute' 49 more time(s) in session {session_id} (only the first was reported above)",
    ]


def test_each_session_reports_its_own_failures(caplog: pytest.LogCaptureFixture) -> None:
    plugin = AlwaysFails()
    with caplog.at_level(logging.ERROR, logger="daglite"):
        for _ in range(2):
            with d.session(plugins=[plugin]):
                one()
    # One report per pair and session (nothing repeated: no summary lines).
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "Plugin 'AlwaysFails' raised in hook 'before_node_execute'",
        "Plugin 'AlwaysFails' raised in hook 'after_node_execute'",
    ] * 2


def test_outside_a_session_a_failing_global_hook_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    plugin = AlwaysFails()
    d.register_plugins(plugin)
    try:
        with caplog.at_level(logging.ERROR, logger="daglite"):
            for _ in range(20):
                assert one() == 1
        assert len(caplog.records) == 2
        from daglite_core._context import default_state

        failures = default_state().plugins.failures
        assert failures.counts[(None, "AlwaysFails", "before_node_execute")] == 20
        failures.counts.clear()  # nothing left to report at exit
    finally:
        d.unregister_plugins(plugin)


def test_strict_mode_still_raises_on_every_failure() -> None:
    with d.session(plugins=[AlwaysFails()], settings=d.DagliteSettings(strict_hooks=True)):
        for _ in range(2):
            with pytest.raises(d.PluginError, match="before_node_execute"):
                one()
