"""daglite's dispatch against a real ``pluggy.PluginManager``: same order, same argument rules.

Random plugin sets (seeded, so a failure is reproducible from its seed) are
registered in both; every call must reach the same implementations in the same
order with the same arguments, and a plugin pluggy rejects must be rejected by
daglite too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pluggy
import pytest

import daglite_core as d
import daglite_core._hooks._manager as _plugins

SPEC_ARGS = ("alpha", "beta", "gamma")


class Specs:
    @d.hookspec
    def random_event(self, alpha: Any, beta: Any, gamma: Any) -> Any:
        """An observer hook for the comparison."""

    @d.hookspec(firstresult=True)
    def random_first(self, alpha: Any, beta: Any, gamma: Any) -> Any:
        """A firstresult hook for the comparison."""


@pytest.fixture
def specs() -> Iterator[None]:
    d.add_hookspecs(Specs)
    yield
    d.remove_hookspecs(Specs)


def _plugin(tag: str, hook: str, params: list[str], opts: dict[str, bool], log: list[Any], answer: Any) -> object:
    """A fresh class with one implementation of ``hook`` taking ``params``."""
    source = (
        f"class P_{tag}:\n"
        f"    def {hook}(self, {', '.join(params)}):\n"
        f"        log.append(({tag!r}, {{k: v for k, v in locals().items() if k != 'self'}}))\n"
        f"        return answer\n"
    )
    namespace: dict[str, Any] = {"log": log, "answer": answer}
    exec(source, namespace)  # noqa: S102 - generated test plugins
    cls = namespace[f"P_{tag}"]
    setattr(cls, hook, d.hookimpl(**opts)(getattr(cls, hook)))
    return cls()


def _random_params(rng: random.Random, valid_only: bool) -> list[str]:
    names = rng.sample(SPEC_ARGS, rng.randint(0, 3))
    if not valid_only and rng.random() < 0.3:
        names.insert(rng.randint(0, len(names)), "delta")  # not in the spec: both must reject
    unused = [n for n in (*SPEC_ARGS, "omega") if n not in names]
    if rng.random() < 0.4:
        names.append(f"{rng.choice(unused)}=None")  # defaulted: passed when the spec has it
    return names


def _random_opts(rng: random.Random) -> dict[str, bool]:
    return rng.choice([{}, {}, {"tryfirst": True}, {"trylast": True}])


@pytest.mark.parametrize("seed", range(40))
def test_same_order_and_arguments_as_pluggy(seed: int, specs: None) -> None:
    rng = random.Random(seed)
    hook = rng.choice(["random_event", "random_first"])
    ours: list[Any] = []
    theirs: list[Any] = []
    pm = pluggy.PluginManager("daglite")
    pm.add_hookspecs(Specs)
    global_plugins, session_plugins = [], []
    for index in range(rng.randint(1, 9)):
        params = _random_params(rng, valid_only=True)
        opts = _random_opts(rng)
        answer = rng.choice([None, None, f"answer-{index}"])
        ours_plugin = _plugin(f"p{index}", hook, params, opts, ours, answer)
        theirs_plugin = _plugin(f"p{index}", hook, params, opts, theirs, answer)
        pm.register(theirs_plugin, name=f"p{index}")
        # Registration order is global plugins first, then the session's: the same
        # sequence pluggy sees.
        (global_plugins if rng.random() < 0.4 and not session_plugins else session_plugins).append(ours_plugin)
    d.register_plugins(*global_plugins)
    try:
        with d.session(plugins=session_plugins):
            got = d.call_hook(hook, alpha=1, beta="b", gamma=[3])
    finally:
        d.unregister_plugins(*global_plugins)
    expected = getattr(pm.hook, hook)(alpha=1, beta="b", gamma=[3])
    assert ours == theirs, f"seed {seed}: order or arguments differ"
    if hook == "random_first":
        assert got == expected
    else:
        assert got == [r for r in expected if r is not None]  # daglite drops None answers


@pytest.mark.parametrize("seed", range(40))
def test_same_argument_rules_as_pluggy(seed: int, specs: None) -> None:
    rng = random.Random(1000 + seed)
    params = _random_params(rng, valid_only=False)
    log: list[Any] = []
    plugin = _plugin("x", "random_event", params, _random_opts(rng), log, None)
    pm = pluggy.PluginManager("daglite")
    pm.add_hookspecs(Specs)
    try:
        pm.register(plugin)
        pluggy_accepts = True
    except pluggy.PluginValidationError:
        pluggy_accepts = False
    try:
        with d.session(plugins=[plugin]):
            pass
        daglite_accepts = True
    except d.PluginError as exc:
        assert "random_event" in str(exc) and "'delta'" in str(exc)
        daglite_accepts = False
    assert daglite_accepts == pluggy_accepts, f"seed {seed}: params {params}"


def test_spec_defaults_may_be_left_out_and_are_passed_like_pluggy() -> None:
    class WithDefault:
        @d.hookspec
        def with_default(self, alpha: Any, level: int = 3) -> None:
            """``level`` may be left out of a call."""

    class Impl:
        @d.hookimpl
        def with_default(self, alpha: Any, level: int) -> None:
            seen.append((alpha, level))

    seen: list[Any] = []
    d.add_hookspecs(WithDefault)
    try:
        pm = pluggy.PluginManager("daglite")
        pm.add_hookspecs(WithDefault)
        pm.register(Impl())
        pm.hook.with_default(alpha=1)
        with d.session(plugins=[Impl()]):
            d.call_hook("with_default", alpha=1)
        assert seen == [(1, 3), (1, 3)]
    finally:
        d.remove_hookspecs(WithDefault)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"historic": True}, "historic"),
        ({"warn_on_impl": DeprecationWarning("old")}, "warn_on_impl"),
        ({"warn_on_impl_args": {"alpha": DeprecationWarning("old")}}, "warn_on_impl_args"),
    ],
)
def test_spec_options_daglite_does_not_support_are_rejected(options: dict[str, Any], named: str) -> None:
    class Unsupported:
        @d.hookspec(**options)
        def unsupported_hook(self, alpha: Any) -> None:
            """A hook with an option daglite does not implement."""

    with pytest.raises(ValueError, match=f"hookspec 'unsupported_hook' of .*Unsupported uses option\\(s\\) daglite does not support: {named}"):
        d.add_hookspecs(Unsupported)
    assert "unsupported_hook" not in _plugins.SPECS
