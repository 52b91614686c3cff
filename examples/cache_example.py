"""Cache: ``@task(cache=True)`` with daglite-diskcache.

    python examples/cache_example.py
    daglite run examples/cache_example.py:cache_demo --text "to be or not to be"

Shows: the second call with equal arguments is served from the cache (the body
does not run and ``on_cache_hit`` fires); other arguments are another entry;
``cache_mode="refresh"`` (``--cache-mode refresh`` on ``daglite run``, or
``DAGLITE_CACHE_MODE=refresh``) runs the body again and overwrites the entry. The
cache lives in ``--out``/cache-example; inspect it with
``daglite cache stats --dir daglite-demo/cache-example``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from daglite_core import DagliteSettings, TaskMetadata, hookimpl, session, task, workflow


class Events:
    """Records, per task call, whether it ran or came from the cache."""

    def __init__(self) -> None:
        self.log: list[str] = []

    @hookimpl
    def after_node_execute(self, metadata: TaskMetadata) -> None:
        self.log.append(f"{metadata.name}: computed")

    @hookimpl
    def on_cache_hit(self, metadata: TaskMetadata) -> None:
        self.log.append(f"{metadata.name}: cache hit")


@task(name="count-{mode}", cache=True, cache_ttl=24 * 3600)
def word_count(text: str, mode: str) -> dict[str, int]:
    """Count words (mode "words") or letters (mode "letters")."""
    items = text.split() if mode == "words" else [c for c in text if c.isalpha()]
    counts: dict[str, int] = {}
    for item in items:
        counts[item.lower()] = counts.get(item.lower(), 0) + 1
    return counts


@workflow
def cache_demo(text: str = "the quick brown fox jumps over the lazy dog the end", out: Path = Path("daglite-demo")) -> list[str]:
    """Call a cached task twice, with other arguments, then refresh it.

    :param text: the text to count
    :param out: directory that holds the cache (in cache-example/)
    """
    events = Events()
    store = out / "cache-example"
    with session(cache_store=store, plugins=[events]):
        first = word_count(text, "words")  # computed (or a hit if you ran this before)
        again = word_count(text, "words")  # a hit: equal arguments
        assert again == first
        word_count(text, "letters")  # other arguments: another entry
    refresh = DagliteSettings(cache_mode="refresh")
    with session(cache_store=store, plugins=[events], settings=refresh):
        word_count(text, "words")  # runs again and overwrites the entry
    for line in events.log:
        print(line, file=sys.stderr)
    return events.log


if __name__ == "__main__":
    from daglite_core.cli import main

    sys.exit(main(["run", f"{__file__}:cache_demo", *sys.argv[1:]]))
