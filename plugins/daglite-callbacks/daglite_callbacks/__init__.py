"""daglite-callbacks: task signatures with bound kwargs and success/error callbacks.

After MageFlow's ``asign``: ``sign(task, **kwargs)`` builds a blueprint of one task
call; ``chain([...])`` and ``swarm([...])`` compose them. See the README for the
policies (dispatch order, failing callbacks, strict mode, retries, cache hits,
generator tasks, cycles, shared callbacks).
"""

from __future__ import annotations

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
