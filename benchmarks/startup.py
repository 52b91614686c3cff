"""Interpreter start and imports: fresh ``python -c`` processes, sampled interleaved.

Each figure is reported minus ``python -c pass`` measured in the same round.

``import daglite_core`` loads pluggy but not attrs (the attrs records are created by
the first session or observed call); ``startup.core_own`` (informational) imports
the core after both, so its figure minus ``import pluggy, attrs`` is what the core's
own modules cost.

The cold start (issue 17.3) is what a script pays before its first result: ``import
daglite_core``, the first ``session()`` (which loads every installed entry-point plugin:
the bench environment installs daglite-diskcache, -datasets, -callbacks, -dask, -retry
and -rich when present) and the first task call.

Bytecode: an installed package imports from ``.pyc`` files (pip compiles them), a
source checkout run with ``PYTHONDONTWRITEBYTECODE=1`` compiles every module on every
import (~30 ms for the core). So that every package is measured as installed, the
children write and read their bytecode under a private ``PYTHONPYCACHEPREFIX`` (one
warm-up run of each command fills it) with ``PYTHONDONTWRITEBYTECODE`` unset.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import peers
from _harness import Case, Group, per_item
from env import Env

COLD = (
    "from daglite_core import session, task\n"
    "def add(x, y):\n"
    "    return x + y\n"
    "with session():\n"
    "    task(add)(1, 2)\n"
)
"""Cold start: import, the first session (every installed entry-point plugin loaded), the
first task call."""

COMMANDS = {
    "startup.pass": ("`python -c pass`", "pass"),
    "startup.pluggy_attrs": ("`import pluggy, attrs`", "import pluggy, attrs"),
    "startup.core": ("`import daglite_core`", "import daglite_core"),
    "startup.core_own": ("`import pluggy, attrs, daglite_core`", "import pluggy, attrs, daglite_core"),
    "startup.cold": ("cold start: import + first session + first task call", COLD),
    "startup.old": ("`import daglite` (0.9)", "import daglite"),
}


_ENV: dict[str, str] = {}


def _spawn(code: str) -> int:
    subprocess.run([sys.executable, "-c", code], check=True, env=_ENV or None)
    return 1


def _set_env(pycache: str) -> None:
    _ENV.update(os.environ)
    _ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    _ENV["PYTHONPYCACHEPREFIX"] = pycache


def import_profile(module: str = "daglite_core", top: int = 14, code: str | None = None) -> str:
    """What ``import module`` (or running ``code``) adds after ``import pluggy, attrs``, by ``-X importtime`` self time."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import pluggy, attrs\n{code or f'import {module}'}"],
        capture_output=True, text=True, check=True, env=_ENV or None,
    )
    rows, after_baseline = [], False
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line.split("|")
        if parts[2].rstrip() == " attrs":  # the baseline's last top-level line
            after_baseline = True
            continue
        if after_baseline:
            rows.append((int(parts[0].split(":")[1]), int(parts[1]), parts[2].rstrip()))
    if code is not None:
        total = sum(c for _, c, name in rows if not name.startswith("  "))
        what = "the cold start's imports"
    else:
        total = next((c for _, c, name in rows if name.strip() == module), 0)
        what = f"`import {module}`"
    rows.sort(reverse=True)
    lines = [f"{what} after `import pluggy, attrs`: {total / 1000:.1f} ms cumulative (-X importtime)",
             "self µs | cumulative µs | module"]
    lines += [f"{s:7d} | {c:13d} | {name}" for s, c, name in rows[:top]]
    return "\n".join(lines)


def installed_plugins() -> list[str]:
    """The installed entry points of the ``daglite`` group, by name."""
    import importlib.metadata

    return sorted(ep.name for ep in importlib.metadata.entry_points(group="daglite"))


def _derive(values: dict[str, float]) -> dict[str, float]:
    base = values["startup.pass"]
    derived = {}
    for key in ("startup.pluggy_attrs", "startup.core", "startup.cold", "startup.old"):
        if key in values:
            derived[key + "_net"] = values[key] - base
    if "startup.core_own" in values:  # informational: the core's own modules, its dependencies already loaded
        derived["startup.core_own_net"] = values["startup.core_own"] - values["startup.pluggy_attrs"]
    return derived


def build(env: Env) -> list[Group]:
    """The ``startup`` group (derived: each import minus ``pass``)."""
    _set_env(str(env.tmp / "pycache"))
    reason = peers.skip_reason("daglite")
    cases = []
    for key, (label, code) in COMMANDS.items():
        if key == "startup.old" and reason is not None:
            cases.append(Case(key, label, skip=reason))
            continue
        if key == "startup.cold":
            label += f" (entry-point plugins installed: {', '.join(installed_plugins()) or 'none'})"
        _spawn(code)  # warm-up: writes the bytecode
        explain = {
            "startup.core": import_profile,
            "startup.cold": functools.partial(import_profile, code=COLD, top=20),
        }.get(key)
        cases.append(Case(key, label, per_item(functools.partial(_spawn, code)), batch=True, explain=explain))
    labels = {
        "startup.pluggy_attrs_net": "`import pluggy, attrs` minus `pass`",
        "startup.core_net": "`import daglite_core` minus `pass`",
        "startup.core_own_net": "`import pluggy, attrs, daglite_core` minus `import pluggy, attrs` (the core's own modules)",
        "startup.cold_net": "cold start (import + first session + first task call, every plugin) minus `pass`",
        "startup.old_net": "`import daglite` (0.9) minus `pass`",
    }
    if reason is not None:
        cases.append(Case("startup.old_net", labels.pop("startup.old_net"), skip=reason))
    return [Group("startup", cases, 3 if env.smoke else 7, env.target_seconds, derive=_derive, labels=labels)]
