"""The ``daglite.retry`` logger, imported with ``logging`` when first used (a retry, a summary)."""

from __future__ import annotations

import logging

from ._names import LOGGER

logger = logging.getLogger(LOGGER)
"""Where retries are logged: WARNING per retry and for a non-empty session summary,
INFO when a retried call is given up. Every record carries the data as
``record.daglite_retry`` (a :class:`RetryEvent` or :class:`RetrySummary`)."""
