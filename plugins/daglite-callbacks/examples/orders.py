"""daglite-callbacks in one file: sign, callbacks, chain and swarm (MageFlow's examples in daglite).

    python plugins/daglite-callbacks/examples/orders.py            # inline
    python plugins/daglite-callbacks/examples/orders.py thread     # items on the thread backend
    python plugins/daglite-callbacks/examples/orders.py process    # items in worker processes

Callbacks always run in this process; the tasks are module-level so the process
backend can send them to its workers.
"""

from __future__ import annotations

import sys
from typing import Any

from daglite_callbacks import ErrorValue, ReturnValue, chain, sign, swarm
from daglite_core import TaskError, session, task


@task
def load_order(order_id: int, region: str = "eu") -> dict[str, Any]:
    """Fetch an order (order 13 is unlucky and fails)."""
    if order_id == 13:
        msg = f"order {order_id} not found in {region}"
        raise LookupError(msg)
    return {"id": order_id, "region": region, "total": order_id * 10.0}


@task
def add_tax(order: ReturnValue[dict[str, Any]], rate: float = 0.2) -> dict[str, Any]:
    """Chain step: receives the previous step's result."""
    return {**order, "total": round(order["total"] * (1 + rate), 2)}


@task
def notify(order: ReturnValue[dict[str, Any]], channel: str) -> None:
    """Success callback: the result arrives in the ReturnValue parameter."""
    print(f"[{channel}] order {order['id']} ready: {order['total']}")


@task
def summarize(daglite_results: list[dict[str, Any]]) -> None:
    """A swarm's success callback: every item's result, in item order."""
    print(f"[summary] {len(daglite_results)} orders, {sum(o['total'] for o in daglite_results)} in total")


@task
def alert(order_id: int, region: str, error: ErrorValue, level: int = 1) -> None:
    """Error callback: the failing call's own kwargs, its bound kwargs and the error."""
    print(f"[alert level {level}] order {order_id} ({region}) failed: {error}")


def main(backend: str = "inline") -> int:
    with session(backend=backend):
        # 1. A signature with bound kwargs and callbacks; sig(**more) runs it now.
        load = sign(
            load_order,
            region="us",
            success_callbacks=[sign(notify, channel="ops")],
            error_callbacks=[sign(alert, level=2)],
        )
        load(order_id=7)
        load.kwargs.update(region="eu")  # later calls see the new binding
        try:
            load(order_id=13)
        except TaskError as exc:
            print(f"raised after the error callback: {exc}")

        # 2. A chain: load -> add_tax -> notify, each result injected into the next.
        pipeline = chain(
            [sign(load_order, region="eu"), sign(add_tax, rate=0.1)],
            success_callbacks=[sign(notify, channel="billing")],
        )
        pipeline(order_id=5)

        # 3. A swarm: at most 2 at a time on the session's backend; results in item order.
        batch = swarm(
            [sign(load_order, order_id=i) for i in (1, 2, 3)],
            max_concurrency=2,
            success_callbacks=[summarize],
        )
        print(batch(region="apac"))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
