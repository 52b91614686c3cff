"""rich renderables: the live view (bars, running calls, per-task counts) and the summary table.

Only called a few times a second (rich's ``Live`` refresh) and once at the end; each
call reads one :class:`~daglite_rich._records.Snapshot`, so drawing costs nothing
per task event.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ._records import Failure, Snapshot, TaskSummary
from ._text import COLUMNS, seconds, summary_cells

BAR_WIDTH = 30


def live_view(snapshot: Snapshot) -> RenderableType:
    """The live display for one snapshot."""
    parts: list[RenderableType] = []
    if snapshot.bars:
        bars = Table.grid(padding=(0, 1))
        bars.add_column(no_wrap=True, overflow="ellipsis", max_width=40)
        bars.add_column(no_wrap=True)
        bars.add_column(justify="right", no_wrap=True)
        bars.add_column(no_wrap=True)
        bars.add_column(justify="right", no_wrap=True)
        for bar in snapshot.bars:
            label = Text("  " * bar.depth + ("└ " if bar.depth else "") + bar.name, style="bold" if not bar.depth else "")
            style = "red" if bar.failed else "green"
            drawn = ProgressBar(
                total=max(bar.total, 1), completed=bar.finished if bar.total else 1, width=BAR_WIDTH,
                complete_style="red" if bar.failed else "bar.complete", finished_style=style,
            )
            failed = Text(f"✗ {bar.failed}", style="red") if bar.failed else Text("")
            bars.add_row(label, drawn, f"{bar.finished}/{bar.total}", failed, seconds(bar.elapsed))
        parts.append(bars)
        if snapshot.hidden_bars:
            parts.append(Text(f"  ... {snapshot.hidden_bars} more maps", style="dim"))
    if snapshot.running_count:
        shown = ", ".join(f"{name} ({seconds(age)})" for name, age in snapshot.running)
        more = snapshot.running_count - len(snapshot.running)
        line = Text.assemble(("running ", "cyan"), shown, (f"  +{more} more" if more > 0 else "", "dim"))
        line.no_wrap = True
        line.overflow = "ellipsis"
        parts.append(line)
    if snapshot.tasks:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1))
        for title, justify in (("task", "left"), ("done", "right"), ("cached", "right"), ("retried", "right"),
                               ("failed", "right"), ("running", "right"), ("elapsed", "right")):
            table.add_column(title, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for t in snapshot.tasks:
            table.add_row(
                t.task, str(t.done), str(t.cached), str(t.retried),
                Text(str(t.failed), style="red" if t.failed else ""), str(t.running), seconds(t.elapsed),
            )
        parts.append(table)
    parts.append(Text(f"daglite: {seconds(snapshot.elapsed)}", style="dim"))
    return Group(*parts)


def summary_view(rows: Sequence[TaskSummary], failures: Sequence[Failure], failure_count: int, duration: float) -> RenderableType:
    """The end-of-session summary: a table per task name, then the failures."""
    calls = sum(r.calls for r in rows)
    table = Table(
        title=f"daglite run: {calls} call{'s' if calls != 1 else ''} in {seconds(duration)}",
        box=box.SIMPLE_HEAVY, title_justify="left",
    )
    for i, title in enumerate(COLUMNS):
        table.add_column(title, justify="left" if i == 0 else "right", no_wrap=True)
    for row in rows:
        cells = list(summary_cells(row))
        styled: list[Text | str] = [*cells[:4], Text(cells[4], style="bold red" if row.failures else ""), *cells[5:]]
        table.add_row(*styled)
    parts: list[RenderableType] = [table]
    if failure_count:
        lines = Text(f"Failures ({failure_count}):\n", style="bold red")
        for f in failures:
            lines.append(f"  {f.task}: ", style="red")
            lines.append(f"{f.error}\n")
        if failure_count > len(failures):
            lines.append(f"  ... and {failure_count - len(failures)} more\n", style="dim")
        lines.rstrip()
        parts.append(lines)
    return Group(*parts)
