"""The session's retry policies: a plugin answering the core's ``provide_retry_delay``."""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from daglite_core import hookimpl

from ._policy import RetryPolicy
from ._records import report

if TYPE_CHECKING:
    from daglite_core import Reporter, TaskMetadata

_MAX_TRACKED = 4096


def _as_dict(value: Mapping[str, RetryPolicy]) -> dict[str, RetryPolicy]:
    return dict(value)


def _check_tasks(instance: Any, attribute: Any, value: Mapping[str, RetryPolicy]) -> None:
    for key, policy in value.items():
        if not isinstance(key, str) or not key:
            msg = f"RetryPolicies: task names must be non-empty strings, got {key!r}"
            raise TypeError(msg)
        if not isinstance(policy, RetryPolicy):
            msg = f"RetryPolicies: the policy for task {key!r} must be a RetryPolicy, got {type(policy).__name__}"
            raise TypeError(msg)


def _check_default(instance: Any, attribute: Any, value: RetryPolicy | None) -> None:
    if value is not None and not isinstance(value, RetryPolicy):
        msg = f"RetryPolicies: default must be a RetryPolicy or None, got {type(value).__name__}"
        raise TypeError(msg)


@attrs.frozen
class RetryPolicies:
    """Retry policies per task and a default, as a plugin: ``session(plugins=[RetryPolicies(...)])``.

    ``tasks`` maps a task name to its :class:`RetryPolicy`. A call's name is
    looked up exactly first, then as a glob pattern (``fnmatch``, case-sensitive)
    in the mapping's order, so ``"fetch-*"`` covers the calls of
    ``@task(name="fetch-{i}")``; a map item (``fetch[3]``) is looked up with and
    without its ``[index]`` suffix; calls no key matches get ``default``. With no
    matching policy and no default, the plugin has no opinion and the core's
    default applies (retry at once, up to the task's ``retries=``).

    Give ``RetryPolicies`` to a session (or :func:`daglite_core.register_plugins`
    for every session). It answers the core's ``provide_retry_delay`` hook; the
    core then waits the delay (``time.sleep``, or ``await asyncio.sleep`` for
    async tasks) and retries. Each decision, retry or not, is sent with
    ``reporter.report`` to the session's process, where the ``retry`` plugin
    (``daglite_retry.reporter``) logs it and adds it to the session's summary.

    It declares ``daglite_in_workers = True``: on the process backend it is
    pickled and decides in the workers, so its policies (``retry_on`` types,
    ``retry_if`` predicates) and ``sleep``/``random`` must pickle.

    :ivar tasks: policy per task name or glob pattern.
    :ivar default: policy of every other call, or ``None``.
    :ivar sleep: for tests on a fake clock: when given, the plugin waits each
        delay by calling ``sleep(seconds)`` itself (synchronously, for async tasks
        too) and tells the core to retry at once; the ``deadline`` then counts
        these waits as spent time. ``None``: the core sleeps for real.
    :ivar random: the jitter draw, a callable returning a float in [0, 1);
        ``None``: :func:`random.random`.
    """

    daglite_in_workers: ClassVar[bool] = True
    daglite_plugin_name: ClassVar[str] = "retry-policies"

    tasks: Mapping[str, RetryPolicy] = attrs.field(factory=dict, converter=_as_dict, validator=_check_tasks)
    default: RetryPolicy | None = attrs.field(default=None, validator=_check_default)
    sleep: Callable[[float], object] | None = None
    random: Callable[[], float] | None = None
    _waited: dict[Any, float] = attrs.field(factory=dict, init=False, eq=False, repr=False)

    def policy_for(self, name: str, map_index: int | None = None) -> RetryPolicy | None:
        """The policy of a call named ``name``: exact name, then glob patterns, then ``default``.

        A map item's name ends in ``[map_index]`` (``fetch[3]``); it is tried
        with and without that suffix, so ``"fetch"`` covers every item of a map.
        """
        names = [name]
        suffix = f"[{map_index}]"
        if map_index is not None and name.endswith(suffix):
            names.append(name[: -len(suffix)])
        for candidate in names:
            policy = self.tasks.get(candidate)
            if policy is not None:
                return policy
        for pattern, policy in self.tasks.items():
            if any(fnmatch.fnmatchcase(candidate, pattern) for candidate in names):
                return policy
        return self.default

    @hookimpl
    def provide_retry_delay(
        self,
        metadata: TaskMetadata,
        reporter: Reporter,
        error: BaseException,
        attempt: int,
        retries: int,
        timed_out: bool,
        elapsed: float,
    ) -> float | bool | None:
        """Decide by the call's policy; report the decision; ``None`` without a policy."""
        policy = self.policy_for(metadata.name, metadata.map_index)
        if policy is None:
            return None
        key = metadata.id
        waited = self._waited.get(key, 0.0) if self.sleep is not None else 0.0
        uniform = (self.random or random.random)()
        decision = policy.decide(error, attempt, retries, timed_out=timed_out, elapsed=elapsed + waited, uniform=uniform)
        report(reporter, metadata, error, attempt, decision)
        if decision.delay is None:
            self._waited.pop(key, None)
            return False
        if self.sleep is None:
            return decision.delay
        self.sleep(decision.delay)
        if key not in self._waited and len(self._waited) >= _MAX_TRACKED:
            self._waited.pop(next(iter(self._waited)))  # calls that succeeded after waiting
        self._waited[key] = waited + decision.delay
        return 0.0

