"""``node_attempt``: pluggy new-style wrappers around each attempt of a task's body (issue 19.2)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
from collections.abc import Generator
from typing import Any

import pytest

import daglite_core as d
from daglite_core.testing import RecordingPlugin

REQUEST: contextvars.ContextVar[str | None] = contextvars.ContextVar("request", default=None)


class SetsContext:
    """Sets a context variable around each attempt and records what it saw."""

    def __init__(self, tag: str = "ctx") -> None:
        self.tag = tag
        self.log: list[Any] = []

    @d.hookimpl(wrapper=True)
    def node_attempt(self, metadata: d.TaskMetadata, attempt: int) -> Generator[None, Any, Any]:
        token = REQUEST.set(f"{self.tag}:{metadata.name}:{attempt}")
        self.log.append(("enter", self.tag, attempt, threading.get_ident()))
        try:
            result = yield
        except BaseException as exc:
            self.log.append(("error", self.tag, type(exc).__name__))
            raise
        finally:
            REQUEST.reset(token)
        self.log.append(("result", self.tag, result))
        return result


@d.task
def reads_context() -> tuple[str | None, int]:
    return REQUEST.get(), threading.get_ident()


def test_hook_node_attempt_wraps_a_plain_call_in_its_thread() -> None:
    wrapper = SetsContext()
    with d.session(plugins=[wrapper]):
        seen, thread = reads_context()
    assert seen == "ctx:reads_context:0"
    assert REQUEST.get() is None  # reset after the attempt
    assert wrapper.log == [("enter", "ctx", 0, thread), ("result", "ctx", (seen, thread))]


def test_hook_node_attempt_wraps_each_attempt_with_its_number() -> None:
    wrapper = SetsContext()
    calls: list[str | None] = []

    @d.task(retries=2)
    def flaky() -> str:
        calls.append(REQUEST.get())
        if len(calls) < 3:
            raise ValueError("again")
        return "ok"

    with d.session(plugins=[wrapper]):
        assert flaky() == "ok"
    assert calls == ["ctx:flaky:0", "ctx:flaky:1", "ctx:flaky:2"]
    assert [e[:3] for e in wrapper.log if e[0] != "result"] == [
        ("enter", "ctx", 0), ("error", "ctx", "ValueError"),
        ("enter", "ctx", 1), ("error", "ctx", "ValueError"),
        ("enter", "ctx", 2),
    ]


def test_hook_node_attempt_runs_in_the_watched_thread_of_a_timed_attempt() -> None:
    wrapper = SetsContext()

    @d.task(timeout=30)
    def timed() -> tuple[str | None, int]:
        return REQUEST.get(), threading.get_ident()

    with d.session(plugins=[wrapper]):
        seen, thread = timed()
    assert thread != threading.get_ident()
    assert seen == "ctx:timed:0"
    assert wrapper.log[0][3] == thread  # entered in the thread that ran the body


def test_hook_node_attempt_wraps_async_bodies() -> None:
    wrapper = SetsContext()

    @d.task
    async def reads() -> str | None:
        await asyncio.sleep(0)
        return REQUEST.get()

    @d.task(timeout=30)
    async def reads_timed() -> str | None:
        await asyncio.sleep(0)
        return REQUEST.get()

    async def main() -> tuple[str | None, str | None]:
        async with d.async_session(plugins=[wrapper]):
            return await reads(), await reads_timed()

    assert asyncio.run(main()) == ("ctx:reads:0", "ctx:reads_timed:0")


def test_hook_node_attempt_nests_in_call_order() -> None:
    class First(SetsContext):
        @d.hookimpl(wrapper=True, tryfirst=True)
        def node_attempt(self, metadata: d.TaskMetadata, attempt: int) -> Generator[None, Any, Any]:
            return (yield from SetsContext.node_attempt(self, metadata, attempt))

    outer, inner, first = SetsContext("outer"), SetsContext("inner"), First("first")
    with d.session(plugins=[inner, outer, first]):
        seen, _ = reads_context()
    # tryfirst outermost, then the last registered: the innermost wrapper set the value seen.
    assert seen == "inner:reads_context:0"
    entered = [e[1] for e in first.log + outer.log + inner.log if e[0] == "enter"]
    assert entered == ["first", "outer", "inner"]


def test_hook_node_attempt_wraps_thread_backend_items_in_their_thread() -> None:
    wrapper = SetsContext()
    with d.session(plugins=[wrapper], backend="thread"):
        results = d.map_tasks(item_context, range(8))
    assert [r[0] for r in results] == [f"ctx:item_context[{i}]:0" for i in range(8)]
    entered = {e[3] for e in wrapper.log if e[0] == "enter"}
    assert entered == {r[1] for r in results}  # each item wrapped in the thread that ran it


@d.task
def item_context(i: int) -> tuple[str | None, int]:
    return REQUEST.get(), threading.get_ident()


class InWorkers:
    """Shipped to process workers: reports the worker's pid from around each attempt."""

    daglite_in_workers = True

    @d.hookimpl(wrapper=True)
    def node_attempt(self, metadata: d.TaskMetadata, reporter: Any) -> Generator[None, Any, Any]:
        token = REQUEST.set("worker")
        try:
            result = yield
        finally:
            REQUEST.reset(token)
        reporter.report("wrapped", (metadata.map_index, os.getpid(), result))
        return result


def test_hook_node_attempt_runs_in_the_worker_process() -> None:
    recorder = RecordingPlugin(hooks=["on_report"])
    with d.session(plugins=[InWorkers(), recorder], backend="process"):
        results = d.map_tasks(item_context, range(4))
    assert [r[0] for r in results] == ["worker"] * 4
    reports = sorted(c["data"] for c in recorder.calls if c["event"] == "wrapped")
    assert [r[0] for r in reports] == [0, 1, 2, 3]
    assert all(pid != os.getpid() for _, pid, _ in reports)
    assert [r[2][0] for r in reports] == ["worker"] * 4  # the result the wrapper saw


# -- isolation -----------------------------------------------------------------------


class Misbehaving:
    """A wrapper that does one wrong thing, chosen by ``how``."""

    daglite_plugin_name = "Misbehaving"

    def __init__(self, how: str) -> None:
        self.how = how

    @d.hookimpl(wrapper=True)
    def node_attempt(self) -> Generator[None, Any, Any]:
        if self.how == "before":
            raise RuntimeError("setup broke")
        if self.how == "no-yield":
            return "nothing"
        try:
            result = yield
        except ValueError:
            if self.how == "swallow":
                return "swallowed"
            if self.how == "replace-error":
                raise KeyError("other") from None
            raise
        if self.how == "after":
            raise RuntimeError("teardown broke")
        if self.how == "twice":
            yield
        if self.how == "replace":
            return "replaced"
        return result


@d.task
def answer() -> int:
    return 42


@d.task
def fails() -> int:
    raise ValueError("body failed")


@pytest.mark.parametrize("how", ["before", "no-yield", "after", "twice", "replace"])
def test_hook_node_attempt_failures_never_change_a_result(how: str, caplog: pytest.LogCaptureFixture) -> None:
    others = SetsContext()
    with caplog.at_level(logging.ERROR, logger="daglite"), d.session(plugins=[others, Misbehaving(how)]):
        assert answer() == 42
        assert answer() == 42
    assert [e[0] for e in others.log] == ["enter", "result"] * 2  # the other wrapper still ran
    messages = [r.getMessage() for r in caplog.records]
    if how == "replace":
        assert messages == []  # a returned value is ignored, not an error
    else:
        assert len(messages) == 2  # reported once, then counted (summary at session end)
        assert messages[0].startswith("Plugin 'Misbehaving' raised in hook 'node_attempt'")
        assert "1 more time(s)" in messages[1]


@pytest.mark.parametrize("how", ["before", "after", "swallow", "replace-error"])
def test_hook_node_attempt_failures_never_change_a_task_error(how: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="daglite"), d.session(plugins=[Misbehaving(how)]):
        with pytest.raises(d.TaskError, match="body failed") as info:
            fails()
    assert isinstance(info.value.error, ValueError)
    reported = [r.getMessage() for r in caplog.records]
    assert bool(reported) == (how in ("before", "replace-error"))


def test_hook_node_attempt_failures_raise_in_strict_mode() -> None:
    with d.session(plugins=[Misbehaving("after")], settings=d.DagliteSettings(strict_hooks=True)):
        with pytest.raises(d.TaskError, match="Plugin 'Misbehaving' raised in hook 'node_attempt': RuntimeError: teardown broke") as info:
            answer()
    assert isinstance(info.value.error, d.PluginError)  # the attempt failed with it


# -- declaration rules and cost ---------------------------------------------------------


def test_node_attempt_takes_new_style_generator_wrappers_only() -> None:
    class Plain:
        @d.hookimpl
        def node_attempt(self) -> None: ...

    class NotGenerator:
        @d.hookimpl(wrapper=True)
        def node_attempt(self) -> None: ...

    class OldStyle:
        @d.hookimpl(hookwrapper=True)
        def node_attempt(self) -> Generator[None, Any, None]:
            yield

    class WrapsOther:
        @d.hookimpl(wrapper=True)
        def before_node_execute(self) -> Generator[None, Any, None]:
            yield

    for plugin, message in [
        (Plain(), "takes wrappers only"),
        (NotGenerator(), "is not a generator function"),
        (OldStyle(), "old-style hookwrapper"),
        (WrapsOther(), "supports wrappers only on node_attempt"),
    ]:
        with pytest.raises(d.PluginError, match=message):
            d.register_plugins(plugin)


def test_a_session_without_wrappers_keeps_the_unobserved_fast_path() -> None:
    with d.session() as state:
        assert not state.plugins.wraps_attempts and not state.observed
    with d.session(plugins=[SetsContext()]) as state:
        assert state.plugins.wraps_attempts and state.observed
