"""Resolving ``daglite`` command-line targets to modules and workflows.

A target is one of:

* ``pkg.mod:attr`` — import ``pkg.mod``, then follow ``attr`` (dots allowed);
* ``pkg.mod.attr`` — the same without a colon: the longest importable module
  prefix wins, the rest is the attribute path;
* ``path/to/file.py:attr`` (or ``path/to/file.py`` for ``list``) — a file.

Decisions:

* Only the named module is imported. ``daglite list pkg`` does **not** walk and
  import every submodule (daglite did, running arbitrary import-time code); it
  names the submodules it did not search, found without importing them.
* A file is imported under an importable name, so that the ``process`` backend's
  workers (which import tasks by module name) can find its tasks: inside a
  package (a directory with ``__init__.py``) it gets its dotted name with the
  package root on ``sys.path``; otherwise its directory goes on ``sys.path`` and
  it is imported by its stem, as ``python path/to/file.py`` would put it on the
  path. A stem that is already imported from another file is an error naming both,
  rather than silently running the other module.
* "Not found" (no such module, file or attribute) is a :class:`TargetError`, a
  usage error (exit code 2). An exception raised *by* the module while importing
  is the user's code failing and propagates as :class:`TargetImportError`.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
import types
from pathlib import Path
from typing import Any

from .._session import Workflow
from .._task import BaseTask


class TargetError(Exception):
    """A target that does not name an importable module, file or workflow."""


class TargetImportError(Exception):
    """Importing the target's module raised; ``__cause__`` is the module's own error."""

    def __init__(self, module: str, error: BaseException) -> None:
        self.module = module
        self.error = error
        super().__init__(f"importing {module!r} failed: {type(error).__name__}: {error}")


def is_path(spec: str) -> bool:
    """Whether ``spec`` (the part before any ``:``) names a file rather than a module."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def _package_root(path: Path) -> tuple[Path, str]:
    """The ``sys.path`` entry and dotted module name for the file ``path``."""
    parts = [path.stem] if path.name != "__init__.py" else []
    directory = path.parent
    while (directory / "__init__.py").is_file():
        parts.insert(0, directory.name)
        directory = directory.parent
    return directory, ".".join(parts)


def import_file(spec: str) -> types.ModuleType:
    """Import the Python file ``spec`` under an importable module name."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "__init__.py").is_file():
            files = ", ".join(str(Path(spec) / p.name) for p in sorted(path.glob("*.py"))) or "none"
            msg = f"{spec!r} is a directory, not a package (no __init__.py); name one of its files: {files}"
            raise TargetError(msg)
        path = path / "__init__.py"
    if not path.is_file():
        msg = f"no such file: {spec!r}"
        raise TargetError(msg)
    if path.suffix != ".py":
        msg = f"{spec!r} is not a Python file (expected a .py file)"
        raise TargetError(msg)
    path = path.resolve()
    root, name = _package_root(path)
    if not name:
        msg = f"cannot derive a module name for {spec!r}"
        raise TargetError(msg)
    existing = sys.modules.get(name)
    if existing is not None:
        existing_file = getattr(existing, "__file__", None)
        if existing_file is not None and Path(existing_file).resolve() == path:
            return existing
        where = existing_file or "a built-in module"
        msg = (
            f"{spec!r} would be imported as module {name!r}, but {name!r} is already "
            f"imported from {where}; rename the file"
        )
        raise TargetError(msg)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return import_module(name)


def import_module(name: str) -> types.ModuleType:
    """Import module ``name``; not-found is a :class:`TargetError`, errors inside it propagate."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            msg = f"no module named {name!r} (looked in the working directory and sys.path)"
            raise TargetError(msg) from None
        raise TargetImportError(name, exc) from exc
    except Exception as exc:
        raise TargetImportError(name, exc) from exc


def _module_exists(name: str) -> bool:
    """Whether module ``name`` can be found; finding it imports its parent packages."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ModuleNotFoundError, ValueError):
        return False
    except Exception as exc:  # a parent package raised while importing
        # A package that failed to import is not left in sys.modules: the first
        # missing ancestor is the one that raised.
        parts = name.split(".")[:-1]
        ancestors = (".".join(parts[:i]) for i in range(1, len(parts) + 1))
        culprit = next((a for a in ancestors if a not in sys.modules), name)
        raise TargetImportError(culprit, exc) from exc


def load_module(spec: str) -> types.ModuleType:
    """The module named by ``spec``: a dotted module name or a path to a ``.py`` file."""
    if not spec:
        msg = "empty target; expected a module name or a path to a .py file"
        raise TargetError(msg)
    return import_file(spec) if is_path(spec) else import_module(spec)


def _follow(module: types.ModuleType, attr: str, target: str) -> Any:
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            found = ", ".join(n for n, _ in find_workflows(module)) or "none"
            msg = f"{target!r}: module {module.__name__!r} has no attribute {attr!r} (workflows in it: {found})"
            raise TargetError(msg) from None
    return obj


def resolve(target: str) -> Any:
    """The object ``target`` names (see the module docstring for the forms)."""
    if ":" in target:
        module_spec, _, attr = target.rpartition(":")
        if not attr or not module_spec:
            msg = f"bad target {target!r}; expected module:workflow or path/file.py:workflow"
            raise TargetError(msg)
        return _follow(load_module(module_spec), attr, target)
    if is_path(target):
        msg = f"{target!r} names a file; add the workflow, as in {target}:my_workflow"
        raise TargetError(msg)
    parts = target.split(".")
    # The longest importable prefix is the module; the rest is the attribute path.
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        if _module_exists(module_name):
            module = import_module(module_name)
            return module if cut == len(parts) else _follow(module, ".".join(parts[cut:]), target)
    msg = f"no module named {parts[0]!r} for target {target!r} (looked in the working directory and sys.path)"
    raise TargetError(msg)


def resolve_runnable(target: str) -> Workflow[..., Any] | BaseTask[..., Any]:
    """The workflow (or task) ``target`` names; anything else is a :class:`TargetError`.

    Tasks are accepted too: ``daglite run mod:some_task`` runs one task in a session.
    Generator tasks are not (there is no single value to print).
    """
    obj = resolve(target)
    if isinstance(obj, types.ModuleType):
        found = ", ".join(n for n, _ in find_workflows(obj)) or "none"
        msg = f"{target!r} is a module; name a workflow in it, as in {target}:NAME (workflows: {found})"
        raise TargetError(msg)
    if isinstance(obj, BaseTask) and obj.is_generator:
        msg = f"{target!r} is a generator task; daglite run needs a workflow or a task that returns a value"
        raise TargetError(msg)
    if not isinstance(obj, (Workflow, BaseTask)):
        msg = f"{target!r} is a {type(obj).__name__}, not a @workflow (decorate it with daglite_core.workflow)"
        raise TargetError(msg)
    return obj


def find_workflows(module: types.ModuleType) -> list[tuple[str, Workflow[..., Any]]]:
    """The module's workflows as ``(attribute, workflow)``, sorted by attribute."""
    return sorted(
        ((name, obj) for name, obj in vars(module).items() if isinstance(obj, Workflow)),
        key=lambda item: item[0],
    )


def unsearched_submodules(module: types.ModuleType) -> list[str]:
    """A package's direct submodules, found without importing them."""
    paths = getattr(module, "__path__", None)
    if paths is None:
        return []
    return sorted(f"{module.__name__}.{info.name}" for info in pkgutil.iter_modules(paths))
