"""daglite-callbacks: task signatures with bound kwargs and success/error callbacks.

After MageFlow's ``asign``: ``sign(task, **kwargs)`` builds a blueprint of one task
call; ``chain([...])`` and ``swarm([...])`` compose them. See the README for the
policies (dispatch order, failing callbacks, strict mode, retries, cache hits,
generator tasks, cycles, shared callbacks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daglite_core import lazy_exports

if TYPE_CHECKING:
    from ._chain import Chain, chain
    from ._errors import (
        CallbackError,
        CycleError,
        InputError,
        SignatureError,
        SwarmError,
        TaskOutcome,
    )
    from ._markers import ERROR_PARAM, RESULTS_PARAM, ErrorValue, ReturnValue
    from ._node import Node
    from ._outbox import (
        Outbox,
        OutboxError,
        PendingCallback,
        ResumeReport,
        default_outbox,
        default_outbox_path,
        delivery_key,
    )
    from ._signature import Signature, asign, sign
    from ._swarm import Swarm, swarm

# Names are imported on first use (PEP 562): the ``callbacks`` entry point imports
# only ``daglite_callbacks.plugin``, and a process that never signs a task never
# imports sqlite3, asyncio or the rest of this package.
_LAZY = {
    "CallbackError": "._errors",
    "Chain": "._chain",
    "CycleError": "._errors",
    "ERROR_PARAM": "._markers",
    "ErrorValue": "._markers",
    "InputError": "._errors",
    "Node": "._node",
    "Outbox": "._outbox",
    "OutboxError": "._outbox",
    "PendingCallback": "._outbox",
    "RESULTS_PARAM": "._markers",
    "ResumeReport": "._outbox",
    "ReturnValue": "._markers",
    "Signature": "._signature",
    "SignatureError": "._errors",
    "Swarm": "._swarm",
    "SwarmError": "._errors",
    "TaskOutcome": "._errors",
    "asign": "._signature",
    "chain": "._chain",
    "default_outbox": "._outbox",
    "default_outbox_path": "._outbox",
    "delivery_key": "._outbox",
    "sign": "._signature",
    "swarm": "._swarm",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "ERROR_PARAM",
    "RESULTS_PARAM",
    "CallbackError",
    "Chain",
    "CycleError",
    "ErrorValue",
    "InputError",
    "Node",
    "Outbox",
    "OutboxError",
    "PendingCallback",
    "ResumeReport",
    "ReturnValue",
    "Signature",
    "SignatureError",
    "Swarm",
    "SwarmError",
    "TaskOutcome",
    "asign",
    "chain",
    "default_outbox",
    "default_outbox_path",
    "delivery_key",
    "sign",
    "swarm",
]
