"""daglite-rich: live console progress, an end-of-run summary and a picture of a daglite run.

``session(plugins=[RichProgress()])``, ``daglite run --progress`` or
``DAGLITE_PROGRESS=1``; see :class:`RichProgress` and the package README.

Importing this package imports neither rich nor the plugin's modules (PEP 562): the
entry point is loaded by every daglite process, and rich is needed only once
something is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daglite_core import lazy_exports

if TYPE_CHECKING:
    from ._logging import RichLogHandler
    from ._plugin import RichProgress
    from ._records import Failure, TaskSummary

__all__ = ["Failure", "RichLogHandler", "RichProgress", "TaskSummary"]

# Imported on first use (PEP 562): the entry point, loaded by every daglite process,
# needs none of these unless progress is switched on.
_LAZY = {"Failure": "._records", "RichLogHandler": "._logging", "RichProgress": "._plugin", "TaskSummary": "._records"}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


