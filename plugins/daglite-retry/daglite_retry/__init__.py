"""daglite-retry: retry policies (delay, backoff, jitter, retry_on, deadline) and retry reporting.

Installed, the ``retry`` plugin (:data:`reporter`) logs every retry on the
``daglite.retry`` logger and a summary at the end of each session. Policies are
given per session (or process) as a plugin::

    from daglite_retry import RetryPolicies, exponential, fixed

    policies = RetryPolicies(
        {"fetch-*": exponential(0.5, max_delay=30, jitter=0.5, retries=5, retry_on=ConnectionError)},
        default=fixed(1.0),
    )
    with session(plugins=[policies]):
        ...

Without policies, retries stay as the core makes them: immediate, up to the
task's ``retries=``. See the README for the formula and every rule.
"""

from __future__ import annotations

from ._policies import RetryPolicies
from ._policy import Decision, RetryPolicy, exponential, fixed
from ._records import EVENT, CallRetries, RetryEvent, RetrySummary
from ._reporter import RetryReporter, logger, reporter

__all__ = [
    "EVENT",
    "CallRetries",
    "Decision",
    "RetryEvent",
    "RetryPolicies",
    "RetryPolicy",
    "RetryReporter",
    "RetrySummary",
    "exponential",
    "fixed",
    "logger",
    "reporter",
]
