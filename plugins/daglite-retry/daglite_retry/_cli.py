"""``daglite run --retries N --retry-delay S ...``: a default retry policy for the run's session.

:class:`RunOptions` is a base of the ``retry`` entry point, which every process that
opens a session imports: ``argparse`` and the policies are imported when ``daglite
run`` calls these hooks (argparse is loaded by then), not with the entry point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daglite_core import hookimpl

if TYPE_CHECKING:
    import argparse

    from ._policy import RetryPolicy

_FLAGS = ("retries", "retry_delay", "retry_backoff", "retry_max_delay", "retry_jitter", "retry_deadline")


def _type_error(message: str) -> argparse.ArgumentTypeError:
    """The error argparse reports as ``argument --flag: message`` (argparse is loaded: it is parsing)."""
    import argparse

    return argparse.ArgumentTypeError(message)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        msg = f"expected a whole number >= 0, got {text!r}"
        raise _type_error(msg)
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0 <= value < float("inf")):  # NaN compares false
        msg = f"expected a number of seconds >= 0, got {text!r}"
        raise _type_error(msg)
    return value


def _factor(text: str) -> float:
    value = _seconds(text) if text else -1.0
    if value == 0:
        msg = f"expected a factor > 0 (1: fixed delay, 2: doubling), got {text!r}"
        raise _type_error(msg)
    return value


def policy_from_args(args: Any) -> RetryPolicy | None:
    """The run's default policy from the parsed ``--retr*`` options; ``None`` when none was given."""
    from ._policy import RetryPolicy

    given = {name: getattr(args, name, None) for name in _FLAGS}
    if all(value is None for value in given.values()) and not getattr(args, "retry_timeouts", False):
        return None
    options: dict[str, Any] = {"retries": given["retries"], "retry_timeouts": bool(getattr(args, "retry_timeouts", False))}
    for flag, option in (("retry_delay", "delay"), ("retry_backoff", "backoff"), ("retry_max_delay", "max_delay"), ("retry_jitter", "jitter"), ("retry_deadline", "deadline")):
        if given[flag] is not None:
            options[option] = given[flag]
    return RetryPolicy(**options)


class RunOptions:
    """The ``daglite run`` options of daglite-retry (a mixin of the ``retry`` plugin)."""

    @hookimpl
    def provide_run_options(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("retry options (daglite-retry)", "a retry policy for every task of the run")
        group.add_argument("--retries", type=_count, metavar="N", help="retry a failing task up to N times (replaces the tasks' own retries=)")
        group.add_argument("--retry-delay", type=_seconds, metavar="SECONDS", help="wait before the first retry (default 0)")
        group.add_argument("--retry-backoff", type=_factor, metavar="FACTOR", help="multiply the delay by FACTOR for each further retry (default 1: fixed)")
        group.add_argument("--retry-max-delay", type=_seconds, metavar="SECONDS", help="cap of one delay")
        group.add_argument("--retry-jitter", type=_seconds, metavar="SECONDS", help="add up to SECONDS at random to each delay")
        group.add_argument("--retry-deadline", type=_seconds, metavar="SECONDS", help="start no retry later than SECONDS after a call's first attempt")
        group.add_argument("--retry-timeouts", action="store_true", help="also retry attempts that ran out of their timeout")

    @hookimpl
    def provide_run_plugins(self, args: Any) -> list[object] | None:
        policy = policy_from_args(args)
        if policy is None:
            return None
        from ._policies import RetryPolicies

        return [RetryPolicies(default=policy)]
