"""Eager task-call overhead: the floors, the core's call paths, daglite 0.9's.

Floors: ``F_call`` (a plain call) and ``F_hook`` (one pluggy hook call with one
implementation, keyword arguments, as a plugin framework calls it). In-session cases
run inside a ``contextvars.Context`` where the session was entered once.
"""

from __future__ import annotations

from typing import Any

import peers
import pluggy
import workloads
from _harness import Case, Group, in_context, per_call
from env import Env

GENERATOR_ITEMS = 1000

_spec = pluggy.HookspecMarker("bench")
_impl = pluggy.HookimplMarker("bench")


class _Spec:
    @_spec
    def before_node_execute(self, metadata: Any, reporter: Any) -> None:
        """The floor hook: same shape as the core's."""


class _Impl:
    @_impl
    def before_node_execute(self, metadata: Any, reporter: Any) -> None:
        """One no-op implementation."""


def pluggy_hook() -> Any:
    """The ``F_hook`` callable: a pluggy hook with one implementation."""
    manager = pluggy.PluginManager("bench")
    manager.add_hookspecs(_Spec)
    manager.register(_Impl())
    return manager.hook.before_node_execute


def _drain(iterator: Any) -> None:
    for _ in iterator:
        pass


def build(env: Env) -> list[Group]:
    """The ``calls`` group."""
    from daglite_core import session

    add, gen, n = workloads.add, workloads.count_task, GENERATOR_ITEMS
    task = workloads.add_task
    hook = pluggy_hook()
    sess0 = in_context(session(), env.stack)
    sess1 = in_context(session(plugins=[workloads.Observer()]), env.stack)
    sess3 = in_context(session(plugins=[workloads.Observer() for _ in range(3)]), env.stack)
    sess_it = in_context(session(plugins=[workloads.IterationObserver()]), env.stack)

    cases = [
        Case("calls.f_call", "F_call: plain call `add(1, 2)`", per_call(lambda: add(1, 2))),
        Case("calls.f_hook", "F_hook: pluggy hook, 1 impl", per_call(lambda: hook(metadata=1, reporter=2))),
        Case("calls.core_bare", "core: task call, no session", per_call(lambda: task(1, 2)), profile=lambda: task(1, 2)),
        Case("calls.core_session", "core: task call in a session, no plugin", per_call(lambda: task(1, 2), sess0),
             profile=lambda: sess0.run(task, 1, 2)),
        Case("calls.core_plugin1", "core: task call in a session, 1 observer plugin", per_call(lambda: task(1, 2), sess1),
             profile=lambda: sess1.run(task, 1, 2)),
        Case("calls.core_plugin3", "core: task call in a session, 3 observer plugins", per_call(lambda: task(1, 2), sess3),
             profile=lambda: sess3.run(task, 1, 2)),
        Case("calls.plain_gen_item", "plain generator, per item", per_call(lambda: _drain(workloads.count(n))), items=n),
        Case("calls.core_gen_item", "core: generator task, per item (1 plugin with node_iteration)",
             per_call(lambda: _drain(gen(n)), sess_it), items=n,
             profile=lambda: sess_it.run(_drain, gen(100))),
    ]
    cases += _daglite_cases(env)
    return [Group("calls", cases, env.rounds_calls, env.target_seconds)]


def _daglite_cases(env: Env) -> list[Case]:
    keys = [
        ("calls.old_bare", "daglite 0.9: task call, no session"),
        ("calls.old_session", "daglite 0.9: task call in a session, no plugin"),
        ("calls.old_plugin1", "daglite 0.9: task call in a session, 1 observer plugin"),
        ("calls.old_gen_item", "daglite 0.9: generator task, per item (1 plugin)"),
    ]
    reason = peers.skip_reason("daglite")
    if reason is not None:
        return [Case(key, label, skip=reason) for key, label in keys]
    old = peers.DagliteOld()
    sess0 = in_context(old.daglite.session(settings=old.settings()), env.stack)
    sess1 = in_context(old.daglite.session(settings=old.settings(), plugins=[old.Observer()]), env.stack)
    add, gen, n = old.add, old.count, GENERATOR_ITEMS
    samplers = [
        per_call(lambda: add(1, 2)),
        per_call(lambda: add(1, 2), sess0),
        per_call(lambda: add(1, 2), sess1),
        per_call(lambda: _drain(gen(n)), sess1),
    ]
    items = [1, 1, 1, n]
    return [Case(key, label, sampler, items=i) for (key, label), sampler, i in zip(keys, samplers, items, strict=True)]
