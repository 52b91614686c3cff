"""Signing: task by object, plain function or name; bound kwargs; calling; input validation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import daglite_callbacks
from daglite_callbacks import InputError, Signature, SignatureError, asign, sign
from daglite_core import DagliteSettings, TaskError, session, task
from daglite_core.testing import RecordingPlugin

from callbacks_helpers import Point, cb_add, cb_double

LAX = DagliteSettings(strict_hooks=False)


def test_public_names_are_exported_sorted() -> None:
    assert daglite_callbacks.__all__ == sorted(daglite_callbacks.__all__, key=lambda n: (not n.isupper(), n))
    for name in ("sign", "asign", "ReturnValue", "ErrorValue", "chain", "swarm", "Signature", "CallbackError"):
        assert name in daglite_callbacks.__all__


def test_sign_a_task_object_runs_it_eagerly() -> None:
    sig = sign(cb_double, x=4)
    assert isinstance(sig, Signature)
    assert sig.task is cb_double
    assert sig() == 8
    assert sig.run() == 8


def test_sign_a_plain_function_makes_it_a_task_that_fires_hooks() -> None:
    def triple(x: int) -> int:
        return 3 * x

    recorder = RecordingPlugin(hooks=["before_node_execute", "after_node_execute"])
    with session(plugins=[recorder]):
        assert sign(triple)(x=2) == 6
    assert [c["metadata"].name for c in recorder.calls] == ["triple", "triple"]


def test_sign_by_registered_name() -> None:
    sig = sign("cb_double", x=5)
    assert sig.task is cb_double
    assert sig() == 10
    assert sign("callbacks_helpers:cb_add", x=1)() == 11


def test_unknown_name_is_rejected_at_signing_with_the_known_names() -> None:
    with pytest.raises(SignatureError) as info:
        sign("no_such_task_anywhere", x=1)
    message = str(info.value)
    assert "no_such_task_anywhere" in message
    assert "cb_double" in message  # the known names are listed
    assert isinstance(info.value.__cause__, LookupError)


def test_signing_a_class_or_a_non_callable_is_an_error() -> None:
    with pytest.raises(SignatureError, match="int"):
        sign(42)
    with pytest.raises(SignatureError, match="Signature 'cb_double'"):
        sign(sign(cb_double))


def test_positional_only_parameters_cannot_be_signed() -> None:
    def positional(a: int, /) -> int:
        return a

    with pytest.raises(SignatureError, match=r"positional-only parameter\(s\) \['a'\]"):
        sign(positional)


def test_bound_kwargs_merge_with_the_call_and_the_call_wins() -> None:
    sig = sign(cb_add, x=1, y=2)
    assert sig() == 3
    assert sig(y=5) == 6
    assert dict(sig.kwargs) == {"x": 1, "y": 2}  # the call does not change the binding


def test_kwargs_update_and_aupdate_change_later_calls() -> None:
    sig = sign(cb_add, x=1)
    sig.kwargs.update(y=100)
    assert sig() == 101
    asyncio.run(sig.kwargs.aupdate(x=5))
    assert sig() == 105
    sig.kwargs["y"] = 0
    assert sig() == 5


def test_kwargs_update_rejects_an_unknown_argument_naming_task_and_argument() -> None:
    sig = sign(cb_add, x=1)
    with pytest.raises(SignatureError, match=r"'cb_add'.*\['z'\].*\['x', 'y'\]"):
        sig.kwargs.update(z=3)
    assert dict(sig.kwargs) == {"x": 1}
    with pytest.raises(SignatureError, match="'z'"):
        sign(cb_add, z=3)


def test_asign_signs_like_sign() -> None:
    async def main() -> int:
        sig = await asign(cb_add, x=2)
        result: int = sig(y=3)
        return result

    assert asyncio.run(main()) == 5


def test_an_async_task_signature_returns_an_awaitable() -> None:
    @task
    async def slow_double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    sig = sign(slow_double, x=3)
    assert sig.is_async
    assert asyncio.run(sig()) == 6
    assert asyncio.run(sig.arun(x=4)) == 8
    assert sig.run(x=5) == 10  # run() drives it on its own loop


def test_a_sync_signature_awaited_through_arun_runs_off_the_loop() -> None:
    import threading

    seen: list[str] = []

    def where(x: int) -> int:
        seen.append(threading.current_thread().name)
        return x

    async def main() -> int:
        loop_thread = threading.current_thread().name
        result: int = await sign(where).arun(x=1)
        assert seen == [seen[0]] and seen[0] != loop_thread
        return result

    assert asyncio.run(main()) == 1


def test_missing_argument_is_a_clear_error_before_the_task_runs() -> None:
    recorder = RecordingPlugin(hooks=["before_node_execute"])
    with (
        session(plugins=[recorder], settings=LAX),
        pytest.raises(InputError, match=r"Task 'cb_add'.*missing a required argument: 'x'") as info,
    ):
        sign(cb_add, y=1)()
    assert recorder.calls == []
    assert info.value.task_name == "cb_add"
    assert info.value.kwargs == {"y": 1}
    assert isinstance(info.value.__cause__, TypeError)


def test_unknown_call_argument_is_a_clear_error_before_the_task_runs() -> None:
    recorder = RecordingPlugin(hooks=["before_node_execute"])
    with (
        session(plugins=[recorder]),
        pytest.raises(InputError, match=r"Task 'cb_double'.*unexpected keyword argument 'nope'"),
    ):
        sign(cb_double, x=1)(nope=2)
    assert recorder.calls == []


def test_input_errors_fire_no_error_callbacks() -> None:
    seen: list[Any] = []

    def on_error(x: int, daglite_error: Exception) -> None:
        seen.append(x)

    with pytest.raises(InputError):
        sign(cb_double, error_callbacks=[on_error])()
    assert seen == []


def test_model_validators_attrs_class_converts_the_input() -> None:
    @task
    def norm(x: int, y: int) -> int:
        assert isinstance(x, int) and isinstance(y, int)
        return x * x + y * y

    sig = sign(norm, model_validators=Point, x="3")
    assert sig(y="4") == 25
    assert sig() == 9  # the model's default for y


def test_model_validators_callable_and_its_rejection() -> None:
    def positive(kwargs: dict[str, Any]) -> dict[str, Any]:
        if kwargs["x"] <= 0:
            msg = "x must be positive"
            raise ValueError(msg)
        return {**kwargs, "x": kwargs["x"] * 10}

    sig = sign(cb_double, model_validators=positive)
    assert sig(x=1) == 20
    with pytest.raises(InputError, match=r"'cb_double'.*validator 'positive'.*x must be positive") as info:
        sig(x=-1)
    assert isinstance(info.value.__cause__, ValueError)


def test_model_validators_must_be_a_class_or_callable() -> None:
    with pytest.raises(SignatureError, match="model_validators"):
        sign(cb_double, model_validators=3)


def test_a_failing_task_raises_its_task_error() -> None:
    @task
    def broken(x: int) -> int:
        raise KeyError(x)

    with pytest.raises(TaskError, match="Task 'broken' failed"):
        sign(broken, x=1)()


def test_invalid_options_are_rejected() -> None:
    with pytest.raises(SignatureError, match="dispatch must be one of sequential, concurrent"):
        sign(cb_double, dispatch="parallel")
    with pytest.raises(SignatureError, match="strict"):
        sign(cb_double, strict="yes")  # type: ignore[arg-type]
