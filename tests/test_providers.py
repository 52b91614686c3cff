"""Provider hooks and how the lifecycle uses cache and dataset stores."""

from __future__ import annotations

import importlib.util

import pytest

import daglite_core as d
from daglite_core.testing import RecordingPlugin

from core_stores import MemoryCache, MemoryDatasets, Providers
from fake_entry_points import FakeEntryPoint, install

# "pip install daglite-x" is the advice only when daglite-x is not installed (the core's
# own environment); with it installed the message says it is disabled instead.
_NO_PLUGINS = pytest.mark.skipif(
    any(importlib.util.find_spec(m) for m in ("daglite_diskcache", "daglite_datasets")),
    reason="checks the advice given when the plugin is not installed",
)


def counted():  # type: ignore[no-untyped-def]
    runs: list[int] = []

    def square(x: int) -> int:
        runs.append(x)
        return x * x

    return square, runs


@d.task(cache=True)
def cached_triple(x: int) -> int:
    return 3 * x


@pytest.fixture
def installed_diskcache(monkeypatch: pytest.MonkeyPatch) -> None:
    # An installed ``daglite-diskcache`` (its plugin would provide a cache store).
    install(monkeypatch, [FakeEntryPoint("diskcache", Providers(), "daglite-diskcache", "daglite_diskcache.plugin")])


class TestCache:
    @pytest.mark.parametrize("backend", ["inline", "thread", "process"])
    def test_cache_mode_off_needs_no_cache_plugin(self, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DAGLITE_CACHE_MODE", "off")
        assert cached_triple(2) == 6
        with d.session(backend=backend):
            assert d.map_tasks(cached_triple, [1, 2]) == [3, 6]

    def test_an_installed_but_disabled_cache_plugin_is_named_as_disabled_not_to_install(self, installed_diskcache: None, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DAGLITE_PLUGINS_AUTOLOAD", "1")
        monkeypatch.setenv("DAGLITE_DISABLE_PLUGINS", "diskcache")
        with d.session(), pytest.raises(d.MissingPluginError) as info:
            cached_triple(1)
        assert "daglite-diskcache is installed but disabled by DAGLITE_DISABLE_PLUGINS" in str(info.value)
        assert "pip install" not in str(info.value)
        monkeypatch.delenv("DAGLITE_DISABLE_PLUGINS")
        with d.session(settings=d.DagliteSettings(disable_plugins=("daglite-diskcache",))), pytest.raises(d.MissingPluginError) as info:
            cached_triple(1)
        assert "disabled by the session's settings (disable_plugins)" in str(info.value)
        with d.session(settings=d.DagliteSettings(plugins_autoload=False)), pytest.raises(d.MissingPluginError) as info:
            cached_triple(1)
        assert "not loaded (plugins_autoload=False); enable it for a session with session(plugins=['diskcache'])" in str(info.value)

    @_NO_PLUGINS
    def test_cache_true_without_a_provider_names_the_plugin_to_install(self) -> None:
        square, _ = counted()
        with pytest.raises(d.MissingPluginError, match="Task 'square' has cache=True but no cache store plugin.*pip install daglite-diskcache"):
            d.task(cache=True)(square)(2)

    def test_hook_provide_cache_store_and_on_cache_hit(self) -> None:
        providers, recorder = Providers(), RecordingPlugin()
        square, runs = counted()
        cached = d.task(cache=True, cache_ttl=60)(square)
        with d.session(plugins=[providers, recorder], cache_store="some/dir"):
            assert cached(3) == 9
            assert cached(3) == 9
            assert cached(x=3) == 9
        assert runs == [3]
        assert providers.specs == [("cache", "some/dir")]  # asked once per session and spec
        hits = recorder.of("on_cache_hit")
        assert len(hits) == 2 and hits[0]["value"] == 9 and hits[0]["key"] in providers.cache.data
        assert recorder.names().count("before_node_execute") == 1
        assert list(providers.cache.ttls.values()) == [60]

    def test_a_store_object_and_cache_shorthand(self) -> None:
        store = MemoryCache()
        square, runs = counted()
        cached = d.task(cache=store)(square)
        assert (cached.cache, cached.cache_store) == (True, store)
        assert cached(2) == cached(2) == 4
        assert runs == [2] and len(store.data) == 1

    def test_failed_attempts_are_never_cached(self) -> None:
        store, attempts = MemoryCache(), []

        @d.task(cache_store=store, cache=True, retries=1)
        def flaky(x: int) -> int:
            attempts.append(x)
            if len(attempts) == 1:
                raise ValueError("first")
            return x

        assert flaky(1) == 1
        assert list(store.data.values()) == [1]

        @d.task(cache_store=store, cache=True)
        def always_fails(x: int) -> int:
            raise ValueError("never")

        with pytest.raises(d.TaskError):
            always_fails(1)
        assert len(store.data) == 1

    def test_an_unreadable_entry_is_a_miss_and_one_warning(self) -> None:
        store = MemoryCache()
        square, runs = counted()
        cached = d.task(cache=store)(square)
        cached(4)
        store.broken.update(store.data)
        with pytest.warns(d.CacheWarning, match=r"Task 'square': cache entry \S+ is unreadable and was dropped \(entry is truncated\)"):
            assert cached(4) == 16
        assert runs == [4, 4]

    def test_a_failing_write_returns_the_result_with_a_warning(self) -> None:
        store = MemoryCache()
        store.fail_set = True
        square, _ = counted()
        with pytest.warns(d.CacheWarning, match="Task 'square': result not cached .*No space left"):
            assert d.task(cache=store)(square)(5) == 25

    def test_unhashable_arguments_run_uncached_with_a_warning(self) -> None:
        store = MemoryCache()

        def bad_hash(func: object, inputs: dict[str, object]) -> str:
            raise TypeError("cannot hash a socket")

        square, runs = counted()
        cached = d.task(cache=store, cache_hash=bad_hash)(square)
        with pytest.warns(d.CacheWarning, match="Task 'square': arguments cannot be hashed.*socket.*running uncached"):
            assert cached(2) == 4
        assert runs == [2] and store.data == {}

    def test_cache_hash_is_honoured_and_namespaced_by_function(self) -> None:
        store = MemoryCache()
        square, runs = counted()
        cached = d.task(cache=store, cache_hash=lambda f, inputs: "fixed")(square)
        assert cached(2) == 4 and cached(3) == 4  # same key: the user's hash says so
        assert runs == [2]
        assert list(store.data) == [f"{square.__module__}.{square.__qualname__}:fixed"]

    @pytest.mark.parametrize(("mode", "expected_runs"), [("off", [2, 2]), ("refresh", [2, 2])])
    def test_cache_modes(self, mode: str, expected_runs: list[int]) -> None:
        store = MemoryCache()
        square, runs = counted()
        cached = d.task(cache=store)(square)
        with d.session(settings=d.DagliteSettings(cache_mode=mode)):
            cached(2)
            cached(2)
        assert runs == expected_runs
        assert bool(store.data) is (mode == "refresh")


class TestDatasets:
    @_NO_PLUGINS
    def test_dataset_without_a_provider_names_the_plugin(self) -> None:
        with pytest.raises(d.MissingPluginError, match="pip install daglite-datasets"):
            d.save_dataset("x.json", 1)

    def test_hook_provide_dataset_store_and_before_dataset_load_after_dataset_load(self) -> None:
        providers, recorder = Providers(), RecordingPlugin()
        with d.session(plugins=[providers, recorder], dataset_store="root"):
            assert d.save_dataset("a/b.json", {"k": 1}) == "a/b.json"
            assert d.load_dataset("a/b.json") == {"k": 1}
        assert providers.specs == [("dataset", "root")]
        names = [n for n in recorder.names() if "dataset" in n]
        assert names == ["before_dataset_save", "after_dataset_save", "before_dataset_load", "after_dataset_load"]
        save = recorder.of("before_dataset_save")[0]
        assert (save["key"], save["value"], save["format"], save["options"], save["metadata"]) == ("a/b.json", {"k": 1}, "json", {}, None)
        load = recorder.of("after_dataset_load")[0]
        assert load["result"] == {"k": 1} and load["duration"] >= 0 and load["return_type"] is None

    def test_hook_before_dataset_save_from_a_task_template(self) -> None:
        providers, recorder = Providers(), RecordingPlugin()

        @d.task(dataset="out/{region}.json")
        def totals(region: str) -> dict[str, int]:
            return {"n": len(region)}

        with d.session(plugins=[providers, recorder]):
            totals("north")
        assert providers.datasets.data == {"out/north.json": '{"n": 5}'}
        (call,) = recorder.of("after_dataset_save")
        assert call["metadata"].name == "totals" and call["format"] == "json"

    def test_hook_after_dataset_save_and_load_inside_a_task_fill_placeholders(self) -> None:
        providers = Providers()

        @d.task
        def writer(name: str) -> str:
            return d.save_dataset("notes/{name}.txt", f"hi {name}")

        @d.task
        def reader(name: str) -> str:
            return d.load_dataset("notes/{name}.txt")

        with d.session(plugins=[providers]):
            assert writer("ann") == "notes/ann.txt"
            assert reader("ann") == "hi ann"

    def test_hook_before_dataset_load_outside_a_task_rejects_placeholders(self) -> None:
        with d.session(plugins=[Providers()]):
            with pytest.raises(ValueError, match="the key has placeholders.*no task is running"):
                d.load_dataset("notes/{name}.txt")

    @pytest.mark.parametrize("region", ["../../etc", "a/b", "..", "."])
    def test_bad_template_values_are_rejected_before_the_body_runs(self, region: str) -> None:
        ran = []

        @d.task(dataset="out/{region}.json")
        def totals(region: str) -> int:
            ran.append(region)
            return 1

        with d.session(plugins=[Providers()]), pytest.raises(ValueError, match=f"parameter region={region!r} cannot be used in a key"):
            totals(region)
        assert ran == []

    def test_store_rejections_happen_before_the_body_runs(self) -> None:
        ran = []

        @d.task(dataset="/abs/{x}.json")
        def f(x: int) -> int:
            ran.append(x)
            return x

        with d.session(plugins=[Providers()]), pytest.raises(ValueError, match="would leave the store"):
            f(1)
        assert ran == []

    def test_a_failing_save_is_the_final_error_and_the_body_is_not_rerun(self) -> None:
        class Failing(MemoryDatasets):
            def save(self, *args: object, **kwargs: object) -> None:
                raise OSError("disk full")

        runs = []

        @d.task(dataset="x.json", dataset_store=Failing(), retries=2)
        def f() -> int:
            runs.append(1)
            return 1

        with pytest.raises(d.TaskError, match="disk full"):
            f()
        assert runs == [1]

    def test_cache_hit_saves_a_missing_dataset_again(self) -> None:
        cache, datasets = MemoryCache(), MemoryDatasets()

        @d.task(cache=cache, dataset="r.json", dataset_store=datasets)
        def f() -> int:
            return 7

        f()
        datasets.delete("r.json")
        assert f() == 7
        assert datasets.data == {"r.json": "7"}


def test_hook_provide_dataset_formats_through_call_hook() -> None:
    class Formats:
        @d.hookimpl
        def provide_dataset_formats(self) -> list[object]:
            return ["yaml-format"]

    with d.session(plugins=[Formats()]):
        assert d.call_hook("provide_dataset_formats") == [["yaml-format"]]
    # Any hook can be called by keyword; its arguments are checked against the spec.
    with pytest.raises(TypeError, match=r"Hook 'before_node_execute' called with missing argument\(s\) 'metadata', 'reporter'"):
        d.call_hook("before_node_execute")
    with pytest.raises(ValueError, match=r"Unknown hook 'provide_dataset_format' \(did you mean 'provide_dataset_formats'\?\)"):
        d.call_hook("provide_dataset_format")


def test_hook_provide_backends_adds_a_backend() -> None:
    class Reversed:
        name = "reversed"
        aliases = ("rev",)

        def __init__(self, settings: d.DagliteSettings) -> None:
            self.closed = False
            instances.append(self)

        def run(self, runner: d.ItemRunner, items: list[d.WorkItem]) -> list[d.Outcome]:
            return list(reversed([runner(item) for item in reversed(items)]))

        def close(self) -> None:
            self.closed = True

    class Provider:
        @d.hookimpl
        def provide_backends(self) -> list[type]:
            return [Reversed]

    instances: list[Reversed] = []
    with d.session(plugins=[Provider()], backend="rev"):
        assert d.map_tasks(lambda x: x * 2, [1, 2, 3]) == [2, 4, 6]
        assert d.map_tasks(lambda x: x, [1]) == [1]
    assert len(instances) == 1 and instances[0].closed


def test_a_miss_asks_the_store_once_and_a_hit_runs_nothing() -> None:
    class Counting(MemoryCache):
        gets = 0

        def get(self, key: str) -> object:
            Counting.gets += 1
            return super().get(key)

    store = Counting()
    square, runs = counted()
    cached = d.task(cache=store, retries=1)(square)
    assert cached(3) == 9 and Counting.gets == 1
    assert cached(3) == 9 and Counting.gets == 2
    assert runs == [3]
    recorder = RecordingPlugin(hooks=["on_cache_hit"])
    with d.session(plugins=[recorder]):
        assert cached(3) == 9
    assert len(recorder.calls) == 1 and Counting.gets == 3
