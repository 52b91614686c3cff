"""Module-level tasks and predicates: they pickle, so they run on the process backend."""

from __future__ import annotations

import os
import time
from pathlib import Path

import daglite_core as d


def _attempt(marker_dir: str, key: str) -> int:
    """This attempt's number for ``key``, counted in files (a call's attempts run one after another)."""
    number = len(list(Path(marker_dir).glob(f"{key}.*"))) + 1
    (Path(marker_dir) / f"{key}.{number}.{os.getpid()}").touch()
    return number


@d.task(name="flaky-{i}")
def flaky(i: int, marker_dir: str, failures: int) -> int:
    """Fails ``failures`` times per ``i`` (counted across processes), then returns ``i``."""
    if _attempt(marker_dir, f"flaky-{i}") <= failures:
        raise ConnectionError(f"item {i} refused")
    return i


@d.task(name="broken-{i}")
def broken(i: int) -> int:
    """Always fails, with an error no policy retries."""
    raise KeyError(f"item {i}")


def is_transient(error: BaseException) -> bool:
    """A picklable ``retry_if`` predicate."""
    return "refused" in str(error)


@d.task(name="waits")
def waits_for_report(marker_dir: str) -> str:
    """Fails once; the retry then waits (up to 30 s) for the session's process to have
    received the first failure's retry report, which it marks with a file."""
    if _attempt(marker_dir, "waits") == 1:
        raise ConnectionError("first attempt")
    seen = Path(marker_dir) / "reported"
    for _ in range(3000):
        if seen.exists():
            return "report arrived while the item ran"
        time.sleep(0.01)
    raise AssertionError("the retry report did not reach the session's process while the item ran")
