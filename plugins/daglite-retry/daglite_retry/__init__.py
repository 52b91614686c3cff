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

from typing import TYPE_CHECKING

from daglite_core import lazy_exports

from ._names import EVENT
from ._reporter import RetryReporter, reporter

if TYPE_CHECKING:
    from ._log import logger
    from ._policies import RetryPolicies
    from ._policy import Decision, RetryPolicy, exponential, fixed
    from ._records import CallRetries, RetryEvent, RetrySummary

# The entry point is this package's ``reporter``: every process that opens a session
# imports the package, most never retry. The rest is imported on first use (PEP 562):
# the policies (random, fnmatch), the attrs records, the logger (logging).
_LAZY = {
    "CallRetries": "._records",
    "Decision": "._policy",
    "RetryEvent": "._records",
    "RetryPolicies": "._policies",
    "RetryPolicy": "._policy",
    "RetrySummary": "._records",
    "exponential": "._policy",
    "fixed": "._policy",
    "logger": "._log",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

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
