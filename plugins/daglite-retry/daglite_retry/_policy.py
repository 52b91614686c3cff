"""One retry policy: how many retries, the delay formula, which errors, a deadline."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs


def _non_negative(name: str, value: float | None, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0 or math.isinf(value):
        msg = f"RetryPolicy: {name} must be a finite number >= 0{' or None' if allow_none else ''}, got {value!r}"
        raise ValueError(msg)


def _exception_types(value: Any) -> tuple[type[BaseException], ...]:
    types = value if isinstance(value, tuple) else (value,)
    for cls in types:
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            msg = f"RetryPolicy: retry_on must be Exception subclasses (or a tuple of them), got {cls!r}"
            raise TypeError(msg)
    if not types:
        msg = "RetryPolicy: retry_on is empty; give at least one exception type (Exception: any)"
        raise ValueError(msg)
    return types


@attrs.frozen
class Decision:
    """What a policy decided for one failed attempt.

    :ivar delay: seconds to wait before the retry, or ``None``: do not retry.
    :ivar max_retries: the call's maximum number of retries under this policy.
    :ivar reason: why it is not retried (empty when it is).
    """

    delay: float | None
    max_retries: int
    reason: str = ""


@attrs.frozen
class RetryPolicy:
    """When and whether a failing task call is retried.

    The delay before retry ``k`` (``k`` counting from 1) is::

        min(max_delay, delay * backoff ** (k - 1) + jitter * U)

    with ``U`` uniform in ``[0, 1)`` drawn per retry (no cap when ``max_delay`` is
    ``None``). So ``backoff=1`` is a fixed delay (see :func:`fixed`) and
    ``backoff=2`` doubles it each time (see :func:`exponential`); jitter spreads
    the retries of many calls that failed together. This is stamina's formula.

    A failed attempt is retried when all of these hold, checked in this order
    (the first that fails is the ``reason`` reported):

    1. retries are left: ``k <= retries``, where ``retries`` is this policy's
       when given, else the task's own ``retries=`` (the policy's count *replaces*
       the task's, in both directions);
    2. it is not the task's ``timeout`` expiring, unless ``retry_timeouts=True``
       (a ``TimeoutError`` the body raises itself is an ordinary error);
    3. the error is an instance of ``retry_on`` (timeouts with
       ``retry_timeouts=True`` skip this check);
    4. ``retry_if(error)`` is true, when given;
    5. the wait ends within ``deadline`` seconds of the call's first attempt
       (attempts and earlier waits included).

    ``KeyboardInterrupt``, ``SystemExit`` and other non-``Exception`` errors are
    never retried (the core does not even ask), nor are generator tasks.

    :ivar retries: maximum retries (``N`` retries: up to ``N + 1`` attempts);
        ``None``: the task's ``retries=``.
    :ivar delay: seconds before the first retry.
    :ivar backoff: factor applied to the delay for each further retry (``> 0``).
    :ivar max_delay: cap of one delay in seconds, jitter included; ``None``: none.
    :ivar jitter: up to this many seconds added at random to each delay.
    :ivar retry_on: exception types worth retrying.
    :ivar retry_if: a predicate on the error; must be picklable (a module-level
        function) for tasks on the process backend.
    :ivar deadline: seconds from the call's first attempt after which no retry
        starts; ``None``: none.
    :ivar retry_timeouts: retry attempts that ran out of the task's ``timeout``.
    """

    retries: int | None = None
    delay: float = 0.0
    backoff: float = 1.0
    max_delay: float | None = None
    jitter: float = 0.0
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = attrs.field(default=Exception, converter=_exception_types)
    retry_if: Callable[[BaseException], bool] | None = None
    deadline: float | None = None
    retry_timeouts: bool = False

    def __attrs_post_init__(self) -> None:
        if self.retries is not None and (isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0):
            msg = f"RetryPolicy: retries must be an int >= 0 or None, got {self.retries!r}"
            raise ValueError(msg)
        _non_negative("delay", self.delay, allow_none=False)
        _non_negative("jitter", self.jitter, allow_none=False)
        _non_negative("max_delay", self.max_delay)
        _non_negative("deadline", self.deadline)
        _non_negative("backoff", self.backoff, allow_none=False)
        if self.backoff == 0:
            msg = "RetryPolicy: backoff must be > 0 (1 for a fixed delay), got 0"
            raise ValueError(msg)
        if self.retry_if is not None and not callable(self.retry_if):
            msg = f"RetryPolicy: retry_if must be callable, got {self.retry_if!r}"
            raise TypeError(msg)

    def delay_for(self, retry: int, uniform: float = 0.0) -> float:
        """The delay before retry number ``retry`` (from 1), for a draw ``uniform`` in [0, 1)."""
        if retry < 1:
            msg = f"RetryPolicy.delay_for: retry counts from 1, got {retry}"
            raise ValueError(msg)
        try:
            value = self.delay * self.backoff ** (retry - 1)
        except OverflowError:
            value = math.inf
        value += self.jitter * uniform
        if self.max_delay is not None:
            value = min(self.max_delay, value)
        return value

    def decide(
        self,
        error: BaseException,
        retry: int,
        task_retries: int,
        *,
        timed_out: bool = False,
        elapsed: float = 0.0,
        uniform: float = 0.0,
    ) -> Decision:
        """Whether retry number ``retry`` (from 1) happens after ``error``, and after how long.

        :param task_retries: the task's own ``retries=``.
        :param timed_out: the attempt ran out of the task's ``timeout``.
        :param elapsed: seconds since the call's first attempt started.
        :param uniform: the jitter draw in [0, 1).
        """
        limit = self.retries if self.retries is not None else task_retries
        if retry > limit:
            return Decision(None, limit, f"no retries left ({limit} allowed)")
        if timed_out:
            if not self.retry_timeouts:
                return Decision(None, limit, "the attempt timed out (retry_timeouts=False)")
        elif not isinstance(error, self.retry_on):
            names = ", ".join(t.__name__ for t in self.retry_on)  # type: ignore[union-attr]
            return Decision(None, limit, f"{type(error).__name__} is not in retry_on ({names})")
        if self.retry_if is not None and not self.retry_if(error):
            return Decision(None, limit, f"retry_if({type(error).__name__}) is false")
        delay = self.delay_for(retry, uniform)
        if self.deadline is not None and elapsed + delay > self.deadline:
            return Decision(None, limit, f"the deadline of {self.deadline:g} s would pass ({elapsed:.3g} s spent, next delay {delay:.3g} s)")
        return Decision(delay, limit)


def fixed(delay: float, *, retries: int | None = None, **options: Any) -> RetryPolicy:
    """A fixed ``delay`` (seconds) before every retry (``backoff=1``).

    Other options as :class:`RetryPolicy` (``jitter``, ``retry_on``, ...).
    """
    return RetryPolicy(retries=retries, delay=delay, backoff=1.0, **options)


def exponential(
    initial: float = 1.0,
    *,
    base: float = 2.0,
    max_delay: float | None = 60.0,
    jitter: float = 0.0,
    retries: int | None = None,
    **options: Any,
) -> RetryPolicy:
    """Exponential backoff: ``min(max_delay, initial * base ** (k - 1) + jitter * U)``.

    Defaults: 1 s, doubling, capped at 60 s, no jitter (give ``jitter=`` when many
    calls may fail at once). Other options as :class:`RetryPolicy`.
    """
    return RetryPolicy(retries=retries, delay=initial, backoff=base, max_delay=max_delay, jitter=jitter, **options)
