"""The summary's numbers against a known run, and the plain (non-terminal) output, on every backend."""

from __future__ import annotations

import io
import re

import pytest
from daglite_core import DagliteSettings, MapError, map_tasks, session, task

from daglite_rich import Failure, RichProgress, TaskSummary
from rich_helpers import FAILING, DictCache


@task(cache=True, retries=1)
def square(x: int) -> int:
    if x in FAILING:
        raise ValueError(f"bad item {x}")
    return x * x


@task
def prepare() -> int:
    return 10


def known_run(backend: str, cache: DictCache, progress: RichProgress) -> None:
    """10 items of ``square``: 3 cache hits (0, 1, 2), 2 failures after one retry each (3, 7)."""
    with session(backend=backend, cache_store=cache, settings=DagliteSettings(max_workers=2), plugins=[progress]):
        n = prepare()
        with pytest.raises(MapError) as caught:
            map_tasks(square, range(n))
    assert "3" in str(caught.value) and "7" in str(caught.value)


def warm(cache: DictCache) -> None:
    with session(cache_store=cache):
        assert map_tasks(square, [0, 1, 2], backend="inline") == [0, 1, 4]


@pytest.mark.parametrize("backend", ["inline", "thread", "process"])
def test_summary_numbers_of_a_known_run(backend: str) -> None:
    cache = DictCache()
    warm(cache)
    out = io.StringIO()
    progress = RichProgress(file=out)
    known_run(backend, cache, progress)

    rows = {r.task: r for r in progress.summary_rows()}
    assert set(rows) == {"prepare", "square"}
    sq = rows["square"]
    assert (sq.calls, sq.cache_hits, sq.retries, sq.failures) == (10, 3, 2, 2)
    assert sq.total_time > 0
    assert sq.mean_time == pytest.approx(sq.total_time / 7)  # seven calls ran their body
    assert rows["prepare"] == TaskSummary("prepare", 1, 0, 0, 0, rows["prepare"].total_time, rows["prepare"].total_time)
    assert sorted(progress.failures(), key=lambda f: f.map_index or 0) == [
        Failure("square[3]", "ValueError: bad item 3", 3),
        Failure("square[7]", "ValueError: bad item 7", 7),
    ]

    text = out.getvalue()
    assert "\x1b" not in text  # not a terminal: no ANSI codes at all
    lines = text.splitlines()
    # The summary as text: a header, a table row per task with these numbers, the failures.
    assert any(re.fullmatch(r"\[daglite\] summary: 2 tasks, 11 calls, 2 failed, .+", line) for line in lines), text
    assert re.search(r"^task\s+calls\s+cache hits\s+retries\s+failures\s+total\s+mean$", text, re.M), text
    assert re.search(r"^square\s+10\s+3\s+2\s+2\s+\S+ \S+\s+\S+ \S+$", text, re.M), text
    assert re.search(r"^prepare\s+1\s+0\s+0\s+0\s", text, re.M), text
    assert "Failures (2):\n  square[3]: ValueError: bad item 3\n  square[7]: ValueError: bad item 7" in text or \
        "Failures (2):\n  square[7]: ValueError: bad item 7\n  square[3]: ValueError: bad item 3" in text
    # Progress lines: the failures as they happen, the milestones and the map's end.
    assert "[daglite] FAILED square[3]: ValueError: bad item 3" in lines
    assert "[daglite] FAILED square[7]: ValueError: bad item 7" in lines
    milestones = [m.group(1) for line in lines if (m := re.match(r"\[daglite\] square: (\d+)/10 \(\d+%\)", line))]
    assert milestones == ["1", "3", "5", "8", "9", "10"], text  # 10%, 25%, 50%, 75%, 90%, done
    assert re.search(r"^\[daglite\] square: 10/10 \(100%\), 2 failed, done in ", text, re.M), text
    assert re.search(r"^\[daglite\] prepare done in ", text, re.M), text


def test_summary_can_be_switched_off_and_mode_off_prints_nothing() -> None:
    out = io.StringIO()
    quiet = RichProgress(file=out, summary=False)
    with session(plugins=[quiet]):
        prepare()
    assert "summary" not in out.getvalue()
    assert "prepare done" in out.getvalue()

    out = io.StringIO()
    silent = RichProgress(file=out, mode="off")
    with session(plugins=[silent]):
        prepare()
    assert out.getvalue() == ""
    assert [r.calls for r in silent.summary_rows()] == [1]  # still recorded


def test_many_failures_are_capped_in_the_output() -> None:
    @task
    def always(x: int) -> int:
        raise RuntimeError(f"no {x}")

    out = io.StringIO()
    progress = RichProgress(file=out)
    with session(plugins=[progress], backend="inline"), pytest.raises(MapError):
        map_tasks(always, range(30))
    text = out.getvalue()
    assert text.count("[daglite] FAILED always[") == 20
    assert "[daglite] more failures: listed in the summary" in text
    assert "Failures (30):" in text
    assert progress.summary_rows()[0].failures == 30


def test_a_reused_instance_starts_afresh_for_each_session() -> None:
    out = io.StringIO()
    progress = RichProgress(file=out)
    for _ in range(2):
        with session(plugins=[progress]):
            prepare()
            prepare()
    assert [(r.task, r.calls) for r in progress.summary_rows()] == [("prepare", 2)]


def test_bad_options_name_the_argument() -> None:
    with pytest.raises(ValueError, match="unknown mode 'fancy'"):
        RichProgress(mode="fancy")
    with pytest.raises(ValueError, match=r"report path 'run\.pdf' must end in \.html or \.svg"):
        RichProgress(report="run.pdf")
    with pytest.raises(ValueError, match="refresh_per_second must be positive"):
        RichProgress(refresh_per_second=0)
    with pytest.raises(ValueError, match="log_handler"):
        RichProgress(log_handler="sometimes")
