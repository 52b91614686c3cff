"""The live event channel, client side: one topic subscription per client.

Workers publish a batch's hook events with ``Worker.log_event(topic, message)``;
the scheduler forwards them to the subscribed client, whose event-loop thread
calls :meth:`Router.handle`, which puts each message on the queue of the map it
belongs to (the map's thread replays it on the session's plugins).

The topic is the client's own id. The scheduler keeps the last messages of every
topic (``distributed.admin.low-level-log-length``, 1000 by default) and never
forgets a topic, except the one named after a client, which it truncates once
that client has disconnected (``distributed.scheduler.events-cleanup-delay``):
so a long-lived scheduler does not keep daglite's events of finished sessions.
The scheduler's own events on that topic (``cancel``, ``retry``) are ignored.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

_routers: dict[str, Router] = {}
_lock = threading.Lock()


class Router:
    """Routes the client's topic messages to each running map's queue, by the map's token."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.topic: str = client.id
        self.queues: dict[str, queue.SimpleQueue[Any]] = {}
        self.users = 0

    def handle(self, event: Any) -> None:
        """Called by the client for every message of the topic: ``(timestamp, message)``."""
        message = event[1]
        if isinstance(message, (list, tuple)) and len(message) == 5:
            target = self.queues.get(message[0])
            if target is not None:
                target.put(("event", message))

    def add(self, token: str, target: queue.SimpleQueue[Any]) -> None:
        self.queues[token] = target

    def remove(self, token: str) -> None:
        self.queues.pop(token, None)


def acquire(client: Any) -> Router:
    """The router of ``client``, subscribing its topic on first use."""
    with _lock:
        router = _routers.get(client.id)
        if router is None:
            router = _routers[client.id] = Router(client)
            client.subscribe_topic(router.topic, router.handle)
        router.users += 1
        return router


def release(router: Router) -> None:
    """Give back a router from :func:`acquire`; the last user unsubscribes."""
    with _lock:
        router.users -= 1
        if router.users > 0:
            return
        _routers.pop(router.topic, None)
    client = router.client
    if client.status == "running":
        try:
            client.unsubscribe_topic(router.topic)
        except ValueError:  # pragma: no cover - the handler was already removed
            pass
