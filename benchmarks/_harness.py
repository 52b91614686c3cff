"""Measurement machinery shared by every benchmark area.

The method is the one of ``/work/shared/reference/perf-anchors.md``:

* a *case* is one operation timed with ``timeit`` (``perf_counter_ns``, GC on), or one
  whole batch (fan-out, interpreter start) timed with a wall clock;
* the cases of one *group* are sampled **interleaved**: every round takes one sample
  of every case, so that a noisy neighbour slows all of them alike;
* ratios are computed **inside each round** (same-round ratios) and then medianed;
  the suite's headline figures are medians of those, and spreads are min–max of the
  per-process-run medians (see :mod:`run`).
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import statistics
import time
import timeit
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Sampler = Callable[[int], float]
"""``sampler(n)`` runs the operation ``n`` times and returns seconds per operation."""


@dataclass
class Case:
    """One measured operation.

    :ivar key: unique id, ``area.name`` (used by rows and ratios).
    :ivar label: what is measured, for the tables.
    :ivar sampler: see :data:`Sampler`; ``None`` when the case is skipped.
    :ivar skip: why the case is skipped (e.g. ``"daglite not installed"``).
    :ivar batch: the sampler's ``n`` is ignored (one sample is one whole batch).
    :ivar profile: a zero-argument callable running the operation once, for cProfile.
    :ivar explain: a zero-argument callable returning a text profile (when cProfile
        cannot see the cost, e.g. an interpreter start).
    :ivar items: how many items one operation handles (a generator's yields): the
        sampler is calibrated per operation, the figure is reported per item.
    """

    key: str
    label: str
    sampler: Sampler | None = None
    skip: str | None = None
    batch: bool = False
    profile: Callable[[], Any] | None = None
    explain: Callable[[], str] | None = None
    items: int = 1
    number: int = 0


@dataclass
class Group:
    """Cases sampled interleaved, ``rounds`` times; ``derive`` adds per-round figures."""

    name: str
    cases: list[Case]
    rounds: int
    target_seconds: float = 0.025
    derive: Callable[[dict[str, float]], dict[str, float]] | None = None
    labels: dict[str, str] = field(default_factory=dict)


def per_call(func: Callable[[], Any], context: contextvars.Context | None = None) -> Sampler:
    """A sampler timing ``func()`` with ``timeit`` (inside ``context`` when given).

    Running the whole timeit loop inside the context (rather than ``context.run`` per
    call) keeps the context switch out of the figure.
    """
    timer = timeit.Timer(func, timer=time.perf_counter_ns)

    def sample(n: int) -> float:
        ns = context.run(timer.timeit, n) if context is not None else timer.timeit(n)
        return ns / n / 1e9

    return sample


def per_item(run_batch: Callable[[], int], context: contextvars.Context | None = None) -> Sampler:
    """A sampler for a batch: ``run_batch()`` returns how many items it processed."""

    def sample(_n: int) -> float:
        gc.collect()
        start = time.perf_counter()
        items = context.run(run_batch) if context is not None else run_batch()
        return (time.perf_counter() - start) / items

    return sample


def in_context(enter: contextlib.AbstractContextManager[Any], stack: contextlib.ExitStack) -> contextvars.Context:
    """A fresh context in which ``enter`` was entered once; exited when ``stack`` closes."""
    context = contextvars.Context()
    context.run(enter.__enter__)
    stack.callback(context.run, enter.__exit__, None, None, None)
    return context


def calibrate(case: Case, target: float) -> int:
    """Iterations per sample so that one sample takes about ``target`` seconds."""
    assert case.sampler is not None
    if case.batch:
        return 1
    case.sampler(1)  # warm-up: a first call that imports a lazily loaded module must not set n
    n = 1
    while True:
        per = case.sampler(n)
        total = per * n
        if total >= target / 10 or n >= 10_000_000:
            return max(1, int(target / max(per, 1e-9)))
        n *= 10


def sample_group(group: Group, log: Callable[[str], None]) -> dict[str, list[float]]:
    """Per-round samples (seconds per op) of every live case, plus derived figures."""
    live = [c for c in group.cases if c.sampler is not None]
    for case in live:
        case.number = calibrate(case, group.target_seconds)
    samples: dict[str, list[float]] = {c.key: [] for c in live}
    for index in range(group.rounds):
        values: dict[str, float] = {}
        for case in live:
            assert case.sampler is not None
            values[case.key] = case.sampler(case.number) / case.items
        if group.derive is not None:
            values.update(group.derive(values))
        for key, value in values.items():
            samples.setdefault(key, []).append(value)
        log(f"  {group.name}: round {index + 1}/{group.rounds}")
    return samples


def median(values: list[float]) -> float:
    """The median (``nan`` for no values)."""
    return statistics.median(values) if values else float("nan")


def round_ratios(num: list[float], den: list[float]) -> list[float]:
    """Same-round ratios ``num[i] / den[i]``."""
    return [a / b for a, b in zip(num, den, strict=False) if b > 0]


@contextlib.contextmanager
def gc_collected() -> Iterator[None]:
    """Collect garbage before a group so earlier groups' leftovers do not bill it."""
    gc.collect()
    yield
