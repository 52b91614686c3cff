"""The two context variables every layer reads: the active session and the running task.

A leaf module, so that the plugin tables (which key failure reports by session)
can read them without importing the session layer that imports them.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._context import Frame, SessionState

FRAME: ContextVar[Frame | None] = ContextVar("daglite_frame", default=None)
"""The task call whose body is running (read by nested calls and ``save_dataset``)."""
SESSION: ContextVar[SessionState | None] = ContextVar("daglite_session", default=None)
"""The active session's state (``None``: the process default applies)."""
