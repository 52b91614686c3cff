"""Callbacks: signatures with bound kwargs, success/error callbacks, chain and swarm (daglite-callbacks).

    python examples/callbacks_example.py
    daglite run examples/callbacks_example.py:callbacks_demo --fail

Shows: ``sign(task, **bound)`` with a success callback that receives the result
through a ``ReturnValue[T]`` parameter and an error callback that receives the
task's own kwargs and the error (``ErrorValue``); ``chain`` feeding each step's
result to the next; ``swarm`` running items side by side and calling its success
callback once with every result. ``--fail`` makes the signed task fail, so the
error callback fires and the run exits with code 1.
"""

from __future__ import annotations

import sys
from typing import Any

from daglite_callbacks import ErrorValue, ReturnValue, chain, sign, swarm
from daglite_core import task, workflow


@task
def fetch_prices(symbol: str, days: int, fail: bool = False) -> list[float]:
    """Fake daily prices for ``symbol``."""
    if fail:
        msg = f"price feed for {symbol} is down"
        raise ConnectionError(msg)
    return [100 + (i * 7 + len(symbol)) % 11 for i in range(days)]


@task
def average(prices: ReturnValue[list[float]]) -> float:
    """Chain step: gets the previous step's result."""
    return round(sum(prices) / len(prices), 2)


@task
def announce(value: ReturnValue[Any], channel: str) -> None:
    """Success callback: the result arrives in the ReturnValue parameter."""
    print(f"[{channel}] success: {value}", file=sys.stderr)


@task
def announce_batch(values: ReturnValue[list[Any]], channel: str) -> None:
    """A swarm's success callback: every item's result, in item order."""
    print(f"[{channel}] all {len(values)} items succeeded", file=sys.stderr)


@task
def alert(symbol: str, error: ErrorValue, channel: str, **_: Any) -> None:
    """Error callback: the failed task's kwargs (symbol, days, ...) and its error."""
    print(f"[{channel}] failure for {symbol}: {error}", file=sys.stderr)


@workflow
def callbacks_demo(symbol: str = "ACME", days: int = 5, fail: bool = False) -> dict[str, Any]:
    """Run a signed task, a chain and a swarm, with callbacks.

    :param symbol: the ticker to fetch
    :param days: how many daily prices
    :param fail: make the signed task fail (the error callback fires, exit code 1)
    """
    fetch = sign(
        fetch_prices, days=days,
        success_callbacks=[sign(announce, channel="ops")],
        error_callbacks=[sign(alert, channel="pager")],
    )
    prices = fetch(symbol=symbol, fail=fail)
    mean = chain([sign(fetch_prices, days=days), average])(symbol=symbol)
    symbols = ["ACME", "GLOBEX", "INITECH"]
    every = swarm(
        [sign(fetch_prices, symbol=s) for s in symbols], max_concurrency=2,
        success_callbacks=[sign(announce_batch, channel="batch")],
    )(days=days)
    return {"prices": prices, "mean": mean, "swarm": dict(zip(symbols, every, strict=True))}


if __name__ == "__main__":
    from daglite_core.cli import main

    sys.exit(main(["run", f"{__file__}:callbacks_demo", *sys.argv[1:]]))
