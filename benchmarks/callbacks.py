"""daglite-callbacks: a durable dispatch (through the outbox's journal) against the same dispatch without it.

One operation is ``sig(i=1)`` for a signature with one success callback, in a
session with no plugin: the task call, the callback's task call, and (durable)
recording the callback in this process's outbox journal before it runs plus marking it done after
(a signed record line and a text done mark, stored into the memory-mapped journal; the journal is
folded into SQLite when the outbox closes).
Task bodies are trivial, so the figure is the outbox's whole cost against the
smallest possible dispatch. The outbox lives in the run's scratch directory
(``synchronous=NORMAL``, the default).

The first durable call opens the outbox (SQLite database, sweep, journal file), a
once-per-process cost of milliseconds; ``_harness.calibrate`` makes one warm-up
call of every case before sizing its samples, so it is not part of the figure.
(Sized on that first call, a sample was about 4 cold calls instead of hundreds:
the 2.7× alone and 7.5× in a full run this row once showed were that artefact.)
"""

from __future__ import annotations

import importlib.util

from _harness import Case, Group, in_context, per_call
from env import Env

from daglite_core import task

INSTALLED = importlib.util.find_spec("daglite_callbacks") is not None


@task
def cb_parent(i: int) -> int:
    """The signed task."""
    return i + 1


@task
def cb_after(daglite_results: int) -> None:
    """The success callback (the result goes to ``daglite_results``)."""


def build(env: Env) -> list[Group]:
    """The ``callbacks`` group."""
    keys = [
        ("callbacks.plain", "daglite-callbacks: `sig(i=1)`, one success callback, not durable"),
        ("callbacks.durable", "daglite-callbacks: the same, durable (outbox record + done mark)"),
    ]
    if not INSTALLED:
        return [Group("callbacks", [Case(key, label, skip="daglite-callbacks not installed") for key, label in keys],
                      env.rounds_calls, env.target_seconds)]
    from daglite_callbacks import Outbox, sign
    from daglite_core import session

    box = Outbox(env.tmp / "callbacks-outbox.sqlite3")
    env.stack.callback(box.close)
    plain = sign(cb_parent, success_callbacks=[cb_after], durable=False)
    durable = sign(cb_parent, success_callbacks=[cb_after], durable=box)
    context = in_context(session(), env.stack)
    cases = [
        Case(keys[0][0], keys[0][1], per_call(lambda: plain(i=1), context), profile=lambda: context.run(plain, i=1)),
        Case(keys[1][0], keys[1][1], per_call(lambda: durable(i=1), context), profile=lambda: context.run(durable, i=1)),
    ]
    return [Group("callbacks", cases, env.rounds_calls, env.target_seconds)]
