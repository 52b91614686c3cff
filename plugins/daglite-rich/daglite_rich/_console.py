"""The console progress is drawn on, and whether it can be animated.

The rules (``reference/ecosystem.md`` §A3, rich's own): one :class:`rich.console.Console`
on stderr; rich decides what a terminal is (``TTY_COMPATIBLE``, ``FORCE_COLOR``,
``isatty()``), whether it is dumb (``TERM=dumb``/``unknown``: not animated) and
whether to colour (``NO_COLOR`` removes colour, and beats ``FORCE_COLOR``).
One thing is added, after pip: on a CI service (``CI``, ``BUILD_ID``, ...) the
console is never *interactive*, even when ``FORCE_COLOR`` makes it a terminal,
because an animated display would be logged as hundreds of lines; rich's own
``TTY_INTERACTIVE=1`` still forces animation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

CI_VARIABLES = (
    "CI", "BUILD_ID", "BUILD_BUILDID", "GITHUB_ACTIONS", "GITLAB_CI", "TF_BUILD",
    "JENKINS_URL", "BUILDKITE", "TEAMCITY_VERSION", "CIRCLECI", "TRAVIS",
)


def looks_like_ci(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a CI service seems to run this process (one of :data:`CI_VARIABLES` is set)."""
    env = os.environ if environ is None else environ
    return any(env.get(name) for name in CI_VARIABLES)


def make_console(file: IO[str] | None = None) -> Console:
    """A console on ``file`` (default: stderr), following the rules above."""
    from rich.console import Console

    force_interactive: bool | None = None
    if "TTY_INTERACTIVE" not in os.environ and looks_like_ci():
        force_interactive = False
    if file is None:
        return Console(stderr=True, force_interactive=force_interactive)
    return Console(file=file, force_interactive=force_interactive)
