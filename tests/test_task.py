"""@task: kinds, validation at decoration time, names, metadata, errors."""

from __future__ import annotations

import asyncio
import inspect
import pickle

import pytest

import daglite_core as d
from daglite_core.testing import RecordingPlugin


@d.task
def add(x: int, y: int = 1) -> int:
    """Add two numbers."""
    return x + y


class TestKinds:
    def test_sync_task_runs_eagerly_and_returns_the_value(self) -> None:
        assert isinstance(add, d.SyncTask)
        assert add(2, y=3) == 5
        assert add(2) == 3

    def test_async_task_returns_an_awaitable_of_the_value(self) -> None:
        @d.task
        async def double(x: int) -> int:
            await asyncio.sleep(0)
            return 2 * x

        assert isinstance(double, d.AsyncTask)
        assert asyncio.run(double(4)) == 8

    def test_generator_task_streams_items(self) -> None:
        @d.task
        def count(n: int):
            yield from range(n)

        assert isinstance(count, d.SyncTaskStream)
        assert list(count(3)) == [0, 1, 2]

    def test_async_generator_task_streams_items(self) -> None:
        @d.task
        async def count(n: int):
            for i in range(n):
                yield i

        async def consume() -> list[int]:
            return [i async for i in count(3)]

        assert isinstance(count, d.AsyncTaskStream)
        assert asyncio.run(consume()) == [0, 1, 2]

    def test_task_exposes_name_description_signature_and_func(self) -> None:
        assert add.name == "add"
        assert add.description == "Add two numbers."
        assert add.signature == inspect.signature(add.func)
        assert add.__name__ == "add" and add.__doc__ == "Add two numbers."

    def test_task_on_a_method_binds_self(self) -> None:
        class Scaler:
            def __init__(self, k: int) -> None:
                self.k = k

            @d.task
            def scale(self, x: int) -> int:
                return self.k * x

        assert Scaler(3).scale(2) == 6

    def test_with_options_copies_with_other_options(self) -> None:
        other = add.with_options(name="plus", retries=2)
        assert (other.name, other.retries, add.retries) == ("plus", 2, 0)
        with pytest.raises(TypeError, match="unknown option"):
            add.with_options(colour="red")

    def test_module_level_task_pickles_by_reference(self) -> None:
        assert pickle.loads(pickle.dumps(add)) is add

    def test_find_task_by_name_and_qualified_name(self) -> None:
        @d.task(name="core_findable_unique")
        def findable() -> int:
            return 1

        assert d.find_task("core_findable_unique") is findable
        assert d.find_task(f"{__name__}:add") is add
        with pytest.raises(LookupError, match="No task named 'nope'"):
            d.find_task("nope")

    def test_find_task_refuses_an_ambiguous_short_name(self) -> None:
        made = [d.task(name="core_twin")(f) for f in (lambda: 1, lambda: 2)]
        made[1].func.__module__ = "elsewhere"
        made.append(d.task(name="core_twin")(made[1].func))
        with pytest.raises(LookupError, match="'core_twin' is ambiguous"):
            d.find_task("core_twin")


class TestValidation:
    @pytest.mark.parametrize("bad", [42, "text", None])
    def test_non_callables_are_a_type_error(self, bad: object) -> None:
        with pytest.raises(TypeError, match="can only be applied to callable functions.*got"):
            d.task(bad)  # type: ignore[call-overload]

    def test_classes_are_a_type_error(self) -> None:
        with pytest.raises(TypeError, match=r"callable functions, not the class '.*Thing'"):

            @d.task
            class Thing:
                pass

    def test_unknown_name_placeholder_names_task_and_placeholder(self) -> None:
        with pytest.raises(ValueError, match=r"task 'add-\{z\}' name.*references unknown placeholder \{z\}"):

            @d.task(name="add-{z}")
            def f(x: int) -> int:
                return x

    def test_name_with_a_dot_is_rejected(self) -> None:
        with pytest.raises(ValueError, match=r"Task 'a\.b'.*cannot contain '\.'"):
            d.task(name="a.b")(lambda: 1)

    def test_unknown_dataset_placeholder_is_rejected(self) -> None:
        with pytest.raises(ValueError, match=r"task 'f' dataset.*references unknown placeholder \{y\}"):

            @d.task(dataset="out/{y}.json")
            def f(x: int) -> int:
                return x

    @pytest.mark.parametrize(
        ("option", "value"), [("cache", True), ("retries", 1), ("timeout", 1.0), ("dataset", "x.json")]
    )
    def test_generator_tasks_reject_cache_retries_timeout_dataset(self, option: str, value: object) -> None:
        def gen():
            yield 1

        with pytest.raises(ValueError, match=rf"not supported for generator tasks: Task 'gen' sets {option}="):
            d.task(**{option: value})(gen)

    @pytest.mark.parametrize(("option", "value"), [("retries", -1), ("timeout", -1), ("timeout", 0), ("cache_ttl", -5)])
    def test_negative_retries_or_timeout_are_a_value_error(self, option: str, value: int) -> None:
        def f() -> int:
            return 1

        with pytest.raises(ValueError, match=rf"Task 'f': {option} must be"):
            d.task(**{option: value})(f)  # type: ignore[call-overload]

    def test_non_int_retries_is_a_type_error(self) -> None:
        with pytest.raises(TypeError, match="retries must be an int"):
            d.task(retries=1.5)(lambda: 1)  # type: ignore[call-overload]


    def test_unknown_option_names_the_task_and_the_closest_option(self) -> None:
        with pytest.raises(TypeError, match=r"Task 'fetch': unknown option 'retry' \(did you mean 'retries'\?\)"):

            @d.task(retry=2)  # type: ignore[call-overload]
            def fetch() -> int:
                return 1

        with pytest.raises(TypeError, match=r"Task 'renamed': unknown option 'timout' \(did you mean 'timeout'\?\)"):
            d.task(name="renamed", timout=3)(lambda: 1)  # type: ignore[call-overload]
        with pytest.raises(TypeError, match=r"Task 'add': unknown option 'cache_dir' \(did you mean 'cache'\?\)"):
            add.with_options(cache_dir="x")

    def test_an_unknown_backend_is_rejected_when_decorated(self) -> None:
        with pytest.raises(d.BackendError, match=r"Task 'f': unknown backend 'nope'; known backends: inline, .*process.*thread") as info:

            @d.task(backend="nope")
            def f() -> int:
                return 1

        assert info.value.name == "nope"
        with pytest.raises(d.BackendError, match=r"Task 'g': unknown backend 'thraed' \(did you mean 'thread'\?\)"):
            d.task(name="g", backend="thraed")(lambda: 1)
        with pytest.raises(d.BackendError, match="unknown backend 'nope'"):
            add.with_options(backend="nope")
        with pytest.raises(TypeError, match="backend must be a backend name"):
            d.task(backend=3)(lambda: 1)  # type: ignore[call-overload]

    def test_built_in_and_plugin_backends_are_accepted_when_decorated(self) -> None:
        for name in ("inline", "sequential", "thread", "threading", "process", "multiprocessing"):
            d.task(backend=name)(lambda: 1)

        class Fancy:
            name = "fancy"
            aliases = ("fancy-alias",)

        class Provides:
            @d.hookimpl
            def provide_backends(self) -> list[type]:
                return [Fancy]

        plugin = Provides()
        d.register_plugins(plugin)
        try:
            assert d.task(backend="fancy-alias")(lambda: 1).backend == "fancy-alias"
        finally:
            d.unregister_plugins(plugin)

    def test_the_static_built_in_backend_names_match_the_backend_classes(self) -> None:
        from daglite_core._builtin import BUILTIN
        from daglite_core._hooks._manager import BUILTIN_BACKENDS

        assert BUILTIN_BACKENDS == {n for cls in BUILTIN.provide_backends() for n in (cls.name, *cls.aliases)}

    def test_map_index_in_a_name_outside_a_map_is_an_error_naming_the_task(self) -> None:
        @d.task(name="part-{map_index}")
        def part(x: int) -> int:
            return x

        for plugins in ([], [RecordingPlugin()]):
            with d.session(plugins=plugins):
                with pytest.raises(ValueError, match=r"Task 'part-\{map_index\}' uses \{map_index\} in its name, but this call is not an item of map_tasks"):
                    part(1)
                assert d.map_tasks(part, [5, 6]) == [5, 6]

    def test_map_index_in_a_dataset_key_outside_a_map_is_an_error(self) -> None:
        @d.task(dataset="out/{map_index}.json", dataset_store=object())
        def saved(x: int) -> int:
            return x

        with pytest.raises(ValueError, match=r"Task 'saved' dataset key 'out/\{map_index\}.json' uses \{map_index\}, but this call is not an item of map_tasks"):
            saved(1)


class TestNamesAndMetadata:
    def test_name_template_is_filled_from_arguments_with_defaults(self) -> None:
        recorder = RecordingPlugin()

        @d.task(name="add-{x}-{y}")
        def plus(x: int, y: int = 10) -> int:
            return x + y

        with d.session(plugins=[recorder]):
            plus(1)
        (call,) = recorder.of("before_node_execute")
        md = call["metadata"]
        assert md.name == "add-1-10"
        assert md.inputs == {"x": 1, "y": 10}
        assert (md.backend, md.map_index, md.parent_id, md.is_async, md.is_generator) == ("inline", None, None, False, False)

    def test_parent_id_is_the_calling_tasks_id(self) -> None:
        recorder = RecordingPlugin(hooks=["before_node_execute"])

        @d.task
        def outer() -> int:
            return add(1)

        with d.session(plugins=[recorder]):
            outer()
        inner, outer_md = (c["metadata"] for c in reversed(recorder.calls))
        assert inner.name == "add" and inner.parent_id == outer_md.id

    def test_metadata_is_frozen(self) -> None:
        md = d.TaskMetadata(id=__import__("uuid").uuid4(), name="n", backend="inline", inputs={})
        with pytest.raises(AttributeError):
            md.name = "other"  # type: ignore[misc]

    def test_current_metadata_inside_a_task_body(self) -> None:
        seen = []

        @d.task(name="probe-{x}")
        def probe(x: int) -> None:
            seen.append(d.current_metadata())

        probe(7)
        assert seen[0].name == "probe-7" and seen[0].inputs == {"x": 7}
        assert d.current_metadata() is None


class TestErrors:
    def test_task_error_names_task_and_chains_the_original(self) -> None:
        @d.task
        def boom() -> None:
            raise KeyError("missing")

        with pytest.raises(d.TaskError) as info:
            boom()
        assert str(info.value) == "Task 'boom' failed: KeyError: 'missing'"
        assert isinstance(info.value.__cause__, KeyError) and info.value.error is info.value.__cause__

    def test_wrong_arguments_are_a_type_error_naming_the_task(self) -> None:
        with pytest.raises(TypeError, match="Task 'add' called with arguments that do not fit"):
            add(1, 2, 3)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="Task 'add'"):
            add(1, z=2)  # type: ignore[call-arg]

    def test_type_error_inside_the_body_is_a_task_error(self) -> None:
        @d.task
        def bad() -> int:
            return len(5)  # type: ignore[arg-type]

        with pytest.raises(d.TaskError, match="Task 'bad' failed: TypeError"):
            bad()

    def test_task_errors_pickle(self) -> None:
        error = d.TaskError("t", ValueError("v"), 3)
        again = pickle.loads(pickle.dumps(error))
        assert str(again) == str(error) == "Task 't' failed after 3 attempts: ValueError: v"

    def test_keyboard_interrupt_is_never_wrapped(self) -> None:
        @d.task
        def interrupted() -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            interrupted()
