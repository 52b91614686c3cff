"""New-style hook wrappers around each attempt of a task's body (``node_attempt``).

A plugin implements :func:`~daglite_core._hooks._specs.node_attempt` as pluggy's
new-style wrapper, a generator marked ``@hookimpl(wrapper=True)`` that yields once::

    @hookimpl(wrapper=True)
    def node_attempt(self, metadata):
        with tracer.start_as_current_span(metadata.name):
            return (yield)

The code before ``yield`` runs just before the attempt, in the thread (or worker
process, or event loop task) that runs the body; ``yield`` gives back the
attempt's result, or raises the attempt's exception; the code after it runs
just after. Wrappers nest in pluggy's call order: the first called (``tryfirst``,
then the last registered) is the outermost.

Isolation (a wrapper never loses or changes a task's outcome):

* a wrapper that raises before its ``yield``, or returns without yielding, is
  reported (once per plugin and session, as any hook failure) and left out of
  that attempt; the attempt runs with the other wrappers;
* what a wrapper does after its ``yield`` cannot change the outcome: a value it
  returns is ignored (the body's result is the call's result), an exception it
  raises is reported and the body's own result or exception stands, and an
  exception it swallows still propagates;
* a wrapper that yields a second time is closed and reported;
* in strict mode (``DAGLITE_STRICT_HOOKS=1``) every such failure raises
  :class:`~daglite_core.PluginError` instead, from inside the attempt: the
  attempt fails with it (a :class:`~daglite_core.TaskError` chained to the
  ``PluginError``, retried like any failed attempt).

``KeyboardInterrupt``/``SystemExit`` raised by a wrapper are never swallowed.
A session without a ``node_attempt`` implementation pays one attribute lookup per
observed call and nothing on the unobserved fast path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._tables import PluginSet

HOOK = "node_attempt"
WRAPPER_HOOKS = frozenset({HOOK})

_Table = tuple[tuple[Callable[..., Any], str], ...]
_Open = list[tuple[Generator[None, Any, Any], str]]


def _enter(plugins: PluginSet, table: _Table, args: tuple[Any, ...]) -> _Open:
    """Run every wrapper up to its ``yield``; those that fail are reported and left out."""
    opened: _Open = []
    for func, name in table:
        try:
            gen = func(*args)
            next(gen)
        except StopIteration:
            plugins.hook_failed(name, HOOK, RuntimeError("the wrapper returned without yielding"))
        except Exception as exc:  # noqa: BLE001 - isolated: the attempt runs without it
            plugins.hook_failed(name, HOOK, exc)
        else:
            opened.append((gen, name))
    return opened


def _exit_ok(plugins: PluginSet, opened: _Open, result: Any) -> None:
    """Send the attempt's result into every open wrapper, innermost first."""
    for gen, name in reversed(opened):
        try:
            gen.send(result)
        except StopIteration:
            continue
        except Exception as exc:  # noqa: BLE001 - the result stands
            plugins.hook_failed(name, HOOK, exc)
            continue
        gen.close()
        plugins.hook_failed(name, HOOK, RuntimeError("the wrapper yielded more than once"))


def _exit_error(plugins: PluginSet, opened: _Open, error: BaseException) -> None:
    """Throw the attempt's exception into every open wrapper, innermost first."""
    for gen, name in reversed(opened):
        try:
            gen.throw(error)
        except StopIteration:
            continue  # swallowed: the error propagates all the same
        except BaseException as exc:  # the error itself, the wrapper's own failure, or an interrupt
            if exc is error:
                continue
            if not isinstance(exc, Exception):
                raise
            plugins.hook_failed(name, HOOK, exc)
            continue
        gen.close()
        plugins.hook_failed(name, HOOK, RuntimeError("the wrapper yielded more than once"))


def run_wrapped(
    plugins: PluginSet, table: _Table, hook_args: tuple[Any, ...],
    func: Callable[..., Any], *args: Any, **kwargs: Any,
) -> Any:
    """Call ``func(*args, **kwargs)`` (one attempt) inside the ``node_attempt`` wrappers."""
    opened = _enter(plugins, table, hook_args)
    try:
        result = func(*args, **kwargs)
    except BaseException as error:
        _exit_error(plugins, opened, error)
        raise
    _exit_ok(plugins, opened, result)
    return result


async def arun_wrapped(
    plugins: PluginSet, table: _Table, hook_args: tuple[Any, ...],
    func: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any,
) -> Any:
    """Await ``func(*args, **kwargs)`` (one attempt of an async body) inside the wrappers."""
    opened = _enter(plugins, table, hook_args)
    try:
        result = await func(*args, **kwargs)
    except BaseException as error:
        _exit_error(plugins, opened, error)
        raise
    _exit_ok(plugins, opened, result)
    return result


def wrap_attempt(plugins: PluginSet, call: Any, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (a task body) made to run inside the ``node_attempt`` wrappers of ``plugins``.

    For :class:`~daglite_core._lifecycle.Call`: the hook arguments are the call's
    metadata, the session's reporter and the attempt number (0, then the retry
    number as :func:`before_node_retry` counts it).
    """
    import functools

    hook_args = (call.metadata, call.state.reporter, call.attempt)
    runner = arun_wrapped if call.task.is_async else run_wrapped
    return functools.partial(runner, plugins, plugins.hook.node_attempt, hook_args, func)
