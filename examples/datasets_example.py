"""Datasets: ``save_dataset``/``load_dataset`` and ``@task(dataset=...)`` with daglite-datasets.

    python examples/datasets_example.py
    daglite run examples/datasets_example.py:datasets_demo --out /tmp/demo

Shows: a task whose result is saved under a key template filled from its
arguments; formats chosen by extension (csv, json, txt, bin) or by name
(``format="pickle"``); loading with a format; and a key that would leave the
store's root being refused with ``ValueError`` before anything is written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from daglite_core import load_dataset, map_tasks, save_dataset, session, task, workflow

CITIES = {"Lisbon": 545_000, "Porto": 232_000, "Braga": 193_000}


@task(dataset="cities/{city}.json")
def city_report(city: str, population: int) -> dict[str, Any]:
    """A small report, saved as cities/<city>.json by the task itself."""
    return {"city": city, "population": population, "large": population > 300_000}


@workflow
def datasets_demo(out: Path = Path("daglite-demo")) -> dict[str, Any]:
    """Save and load datasets in each built-in format.

    :param out: directory that holds the store (in datasets-example/)
    """
    with session(dataset_store=out / "datasets-example"):
        reports = map_tasks(city_report, list(CITIES), list(CITIES.values()))
        saved = [
            save_dataset("tables/cities.csv", reports),  # csv: a list of dicts
            save_dataset("notes/readme.txt", "Populations of three cities.\n"),
            save_dataset("raw/blob.bin", bytes(range(8))),
            save_dataset("state/reports", reports, format="pickle"),  # no extension: name it
        ]
        table = load_dataset("tables/cities.csv")  # csv cells load as text
        state = load_dataset("state/reports", format="pickle")
        assert state == reports
        try:
            save_dataset("../outside.txt", "nope")
        except ValueError as exc:
            print(f"refused: {exc}", file=sys.stderr)
        lisbon = load_dataset("cities/Lisbon.json")
    for key in saved:
        print(f"saved {key}", file=sys.stderr)
    return {"saved": saved, "csv_rows": len(table), "lisbon": lisbon}


if __name__ == "__main__":
    from daglite_core.cli import main

    sys.exit(main(["run", f"{__file__}:datasets_demo", *sys.argv[1:]]))
