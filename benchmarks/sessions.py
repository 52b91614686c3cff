"""Session open + close with no backend used: the core against daglite 0.9."""

from __future__ import annotations

import peers
from _harness import Case, Group, per_call
from env import Env


def _open_close_core() -> None:
    from daglite_core import session

    with session():
        pass


def build(env: Env) -> list[Group]:
    """The ``session`` group."""
    cases = [
        Case("session.core", "core: `with session(): pass`", per_call(_open_close_core), profile=_open_close_core),
    ]
    reason = peers.skip_reason("daglite")
    label = "daglite 0.9: `with session(): pass`"
    if reason is not None:
        cases.append(Case("session.old", label, skip=reason))
    else:
        old = peers.DagliteOld()
        settings = old.settings()

        def open_close_old() -> None:
            with old.daglite.session(settings=settings):
                pass

        cases.append(Case("session.old", label, per_call(open_close_old)))
    return [Group("session", cases, env.rounds_slow, env.target_seconds)]
