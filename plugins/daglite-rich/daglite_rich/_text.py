"""Plain text: time formatting, the line-based progress and the summary without rich markup."""

from __future__ import annotations

from collections.abc import Sequence

from ._records import Failure, TaskSummary

PREFIX = "[daglite]"
COLUMNS = ("task", "calls", "cache hits", "retries", "failures", "total", "mean")


def seconds(value: float) -> str:
    """A duration for people: ``850 us``, ``12.3 ms``, ``4.21 s``, ``2m05s``."""
    if value < 0.001:
        return f"{value * 1e6:.0f} us"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    if value < 60:
        return f"{value:.2f} s"
    minutes, rest = divmod(int(round(value)), 60)
    return f"{minutes}m{rest:02d}s"


def milestone_line(name: str, finished: int, total: int, failed: int, elapsed: float) -> str:
    """``[daglite] inc: 250/1000 (25%), 3 failed, 1.20 s``."""
    percent = int(100 * finished / total) if total else 100
    fails = f", {failed} failed" if failed else ""
    return f"{PREFIX} {name}: {finished}/{total} ({percent}%){fails}, {seconds(elapsed)}"


def map_done_line(name: str, total: int, failed: int, duration: float) -> str:
    """``[daglite] inc: 1000/1000 (100%), 3 failed, done in 4.00 s``."""
    fails = f", {failed} failed" if failed else ""
    return f"{PREFIX} {name}: {total}/{total} (100%){fails}, done in {seconds(duration)}"


def failure_line(failure: Failure) -> str:
    """``[daglite] FAILED inc[3]: ValueError: boom``."""
    return f"{PREFIX} FAILED {failure.task}: {failure.error}"


def call_done_line(name: str, duration: float) -> str:
    """``[daglite] load done in 1.20 s``."""
    return f"{PREFIX} {name} done in {seconds(duration)}"


def summary_cells(row: TaskSummary) -> tuple[str, ...]:
    """A summary row's cells, as text."""
    return (
        row.task, str(row.calls), str(row.cache_hits), str(row.retries), str(row.failures),
        seconds(row.total_time), seconds(row.mean_time),
    )


def summary_text(rows: Sequence[TaskSummary], failures: Sequence[Failure], failure_count: int, duration: float) -> str:
    """The end-of-session summary as plain, aligned text (no ANSI codes)."""
    calls = sum(r.calls for r in rows)
    head = f"{PREFIX} summary: {len(rows)} task{'s' if len(rows) != 1 else ''}, {calls} call{'s' if calls != 1 else ''}"
    head += f", {failure_count} failed" if failure_count else ""
    head += f", {seconds(duration)}"
    lines = [head]
    if rows:
        table = [COLUMNS, *(summary_cells(r) for r in rows)]
        widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
        for line in table:
            cells = [line[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(line[1:], widths[1:])]
            lines.append("  ".join(cells).rstrip())
    lines.extend(failure_lines(failures, failure_count))
    return "\n".join(lines)


def failure_lines(failures: Sequence[Failure], failure_count: int) -> list[str]:
    """``Failures (N):`` and one indented line per kept failure."""
    if not failure_count:
        return []
    lines = [f"Failures ({failure_count}):"]
    lines.extend(f"  {f.task}: {f.error}" for f in failures)
    if failure_count > len(failures):
        lines.append(f"  ... and {failure_count - len(failures)} more")
    return lines
