"""Sales pipeline: generated sales partitions → clean → summarize → aggregate → notify.

Run it either way (both use the same module name, so they share the cache)::

    python examples/sales_pipeline.py --regions 4
    daglite run examples/sales_pipeline.py:sales_pipeline --regions 4

What it shows, on the embedded defaults (nothing to start):

* ``map_tasks`` fans each stage out over the region partitions (``--backend
  thread`` or ``process`` runs them in parallel);
* ``@task(cache=True)`` (daglite-diskcache) stores every stage's result; a second
  run with the same options is served from the cache and says so
  (``cache hits: 13 of 14 tasks``), counted by :class:`CacheReport`, a small
  plugin registered for the run's session;
* ``@task(dataset=...)`` (daglite-datasets) writes each partition as CSV and the
  summary as JSON, under ``--out`` (default ``./daglite-demo``);
* a daglite-callbacks signature around the final step notifies on success and
  on failure (``--min-revenue 1e12`` makes the revenue check fail, to see the
  error callback and exit code 1).

Everything the run writes lives under ``--out``: ``cache/`` (the cache),
``data/`` (the datasets) and ``notifications.log``. The workflow opens its own
session for that, so ``--out`` wins over ``daglite run --cache-store`` and
``--dataset-store``; ``--backend``, ``--max-workers``, ``--cache-mode refresh`` and
``--plugin`` apply as usual (the inner session extends the one ``daglite run`` opens).
"""

from __future__ import annotations

import random
import sys
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from daglite_callbacks import ErrorValue, ReturnValue, sign
from daglite_core import TaskMetadata, hookimpl, map_tasks, session, task, workflow

REGIONS = ("north", "south", "east", "west", "central", "coast", "mountain", "islands")
PRODUCTS = {"widget": 4.50, "gadget": 12.00, "gizmo": 27.25, "doohickey": 8.75, "sprocket": 2.10}


class CacheReport:
    """A plugin that counts tasks and cache hits, and reports them when the session ends.

    ``after_node_execute`` fires for a task whose body ran, ``on_cache_hit`` for one
    served from the cache (the body does not run then), so together they count
    every task call of the session.
    """

    def __init__(self) -> None:
        self.hits = 0
        self.ran = 0
        self.failed = 0
        self._lock = threading.Lock()  # the thread backend calls hooks from its workers

    @hookimpl
    def on_cache_hit(self, metadata: TaskMetadata) -> None:
        with self._lock:
            self.hits += 1

    @hookimpl
    def after_node_execute(self, metadata: TaskMetadata) -> None:
        with self._lock:
            self.ran += 1

    @hookimpl
    def on_node_error(self, metadata: TaskMetadata) -> None:
        with self._lock:
            self.failed += 1

    @hookimpl
    def after_session_end(self, session_id: str, duration: float) -> None:
        total = self.hits + self.ran + self.failed
        failed = f", {self.failed} failed" if self.failed else ""
        print(f"cache hits: {self.hits} of {total} tasks{failed} ({duration:.2f}s)", file=sys.stderr)


# -- stages ---------------------------------------------------------------------


@task(name="generate-{region}", cache=True, dataset="raw/{region}.csv")
def generate_sales(region: str, rows: int, seed: int) -> list[dict[str, Any]]:
    """Deterministic fake orders for one region, with ~4% bad rows to clean up."""
    rng = random.Random(f"{seed}:{region}")  # noqa: S311 - reproducible fake data, not secrets
    start = date(2024, 1, 1)
    orders = []
    for i in range(rows):
        product = rng.choice(sorted(PRODUCTS))
        price = PRODUCTS[product] * rng.uniform(0.9, 1.1)
        order = {
            "order_id": f"{region[:3].upper()}-{i:05d}",
            "day": (start + timedelta(days=rng.randrange(365))).isoformat(),
            "region": region,
            "product": product,
            "units": rng.randint(1, 20),
            "unit_price": f"{price:.2f}",
        }
        defect = rng.random()
        if defect < 0.02:
            order["units"] = -order["units"]  # a refund booked as a sale
        elif defect < 0.03:
            order["unit_price"] = ""  # a missing price
        elif defect < 0.04 and orders:
            order = dict(orders[-1])  # a duplicated line
        orders.append(order)
    return orders


@task(name="clean-{region}", cache=True, dataset="clean/{region}.csv")
def clean_sales(orders: list[dict[str, Any]], region: str) -> list[dict[str, Any]]:
    """Drop refunds, rows without a price and duplicated order ids; add revenue."""
    seen: set[str] = set()
    clean = []
    for order in orders:
        if order["order_id"] in seen or not order["unit_price"] or int(order["units"]) <= 0:
            continue
        seen.add(order["order_id"])
        units, price = int(order["units"]), float(order["unit_price"])
        clean.append({**order, "units": units, "unit_price": price, "revenue": round(units * price, 2)})
    return clean


@task(name="summarize-{region}", cache=True, dataset="summaries/{region}.json")
def summarize_region(orders: list[dict[str, Any]], region: str) -> dict[str, Any]:
    """Orders, units, revenue and best-selling product of one region."""
    by_product: dict[str, float] = {}
    for order in orders:
        by_product[order["product"]] = by_product.get(order["product"], 0.0) + order["revenue"]
    return {
        "region": region,
        "orders": len(orders),
        "units": sum(o["units"] for o in orders),
        "revenue": round(sum(by_product.values()), 2),
        "top_product": max(by_product, key=lambda p: by_product[p]) if by_product else None,
    }


@task(cache=True, dataset="summary.json")
def aggregate(summaries: list[dict[str, Any]], min_revenue: float) -> dict[str, Any]:
    """Totals over every region; fails when total revenue is below ``min_revenue``."""
    revenue = round(sum(s["revenue"] for s in summaries), 2)
    if revenue < min_revenue:
        msg = f"total revenue {revenue:,.2f} is below the alert threshold {min_revenue:,.2f}"
        raise ValueError(msg)
    best = max(summaries, key=lambda s: s["revenue"])
    return {
        "regions": len(summaries),
        "orders": sum(s["orders"] for s in summaries),
        "revenue": revenue,
        "best_region": best["region"],
    }


# -- notifications (daglite-callbacks) --------------------------------------------


@task
def notify_success(summary: ReturnValue[dict[str, Any]], log: str) -> None:
    """Success callback: gets the aggregate's return value."""
    line = f"OK: {summary['orders']} orders, revenue {summary['revenue']:,.2f}, best region {summary['best_region']}"
    _notify(log, line)


@task
def notify_failure(error: ErrorValue, log: str, **task_kwargs: Any) -> None:
    """Error callback: gets the failed task's own arguments and its error."""
    _notify(log, f"FAILED ({len(task_kwargs['summaries'])} regions): {error}")


def _notify(log: str, line: str) -> None:
    print(f"[notify] {line}", file=sys.stderr)
    with open(log, "a", encoding="utf-8") as file:
        file.write(line + "\n")


# -- the workflow ---------------------------------------------------------------------


@workflow
def sales_pipeline(
    regions: int = 4,
    rows: int = 500,
    seed: int = 7,
    out: Path = Path("daglite-demo"),
    min_revenue: float = 0.0,
) -> dict[str, Any]:
    """Generate, clean and summarize sales per region, then aggregate and notify.

    :param regions: how many region partitions to generate (1-8)
    :param rows: orders per region
    :param seed: seed of the generated data (same seed, same data, cache hits)
    :param out: directory for the cache, the datasets and notifications.log
    :param min_revenue: alert threshold; a lower total revenue fails the run
    """
    if not 1 <= regions <= len(REGIONS):
        msg = f"regions must be between 1 and {len(REGIONS)}, got {regions}"
        raise ValueError(msg)
    names = list(REGIONS[:regions])
    out.mkdir(parents=True, exist_ok=True)
    log = str(out / "notifications.log")
    report = CacheReport()
    # Outputs stay under --out: this session's stores win over the defaults.
    with session(cache_store=out / "cache", dataset_store=out / "data", plugins=[report]):
        raw = map_tasks(generate_sales, names, [rows] * len(names), [seed] * len(names))
        cleaned = map_tasks(clean_sales, raw, names)
        summaries = map_tasks(summarize_region, cleaned, names)
        checked = sign(
            aggregate,
            success_callbacks=[sign(notify_success, log=log)],
            error_callbacks=[sign(notify_failure, log=log)],
        )
        summary = checked(summaries=summaries, min_revenue=min_revenue)
    return {**summary, "dropped_rows": sum(map(len, raw)) - sum(map(len, cleaned)), "out": str(out)}


if __name__ == "__main__":
    # Delegate to the daglite CLI so that both ways of running it parse the same
    # options and import this file under the same module name (one shared cache).
    from daglite_core.cli import main

    sys.exit(main(["run", f"{__file__}:sales_pipeline", *sys.argv[1:]]))
