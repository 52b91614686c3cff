"""A run to watch: nested maps, retries and two failures.

    python plugins/daglite-rich/examples/progress_demo.py [inline|thread|process] [report.html]

On a terminal it draws the live view, then the summary; piped (``... 2>&1 | cat``) it
prints plain lines. With a second argument it also writes the picture of the run.
"""

from __future__ import annotations

import random
import sys
import time

from daglite_core import MapError, map_tasks, session, task

from daglite_rich import RichProgress


@task(retries=1)
def fetch(page: int) -> list[int]:
    time.sleep(random.uniform(0.01, 0.05))
    if page in (7, 19):
        raise ConnectionError(f"page {page}: connection reset")
    return list(range(page % 5 + 1))


@task
def parse(row: int) -> int:
    time.sleep(0.005)
    return row * 2


@task
def crawl(page: int) -> int:
    rows = fetch(page)
    return sum(map_tasks(parse, rows))


@task
def publish(total: int) -> str:
    return f"published {total}"


def main() -> None:
    backend = sys.argv[1] if len(sys.argv) > 1 else "thread"
    report = sys.argv[2] if len(sys.argv) > 2 else None
    with session(backend=backend, plugins=[RichProgress(report=report)]):
        try:
            totals = map_tasks(crawl, range(40))
        except MapError as exc:
            totals = [0]
            print(f"some pages failed: {exc}")
        print(publish(sum(totals)))


if __name__ == "__main__":
    main()
