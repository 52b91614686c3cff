"""``daglite run``: the two-pass parse, the run's session, and how a failure is reported.

The first pass (the ``run`` subparser) finds the target and ``run``'s own options
(the core's and those plugins add through ``provide_run_options``); unknown
options are left for the second pass, which parses everything again with one
parser that also holds an option per workflow parameter. So ``daglite run mod:wf
--help`` shows the workflow's docstring and typed parameters next to the run
options, and a bad value is argparse's own error (exit code 2). The target comes
before the workflow's options.

The session's options: the workflow's own ``@workflow(...)`` options, overridden
by the flags given; its plugins are the workflow's, those named with ``--plugin``
and those plugins return from ``provide_run_plugins``. Nothing is registered
globally and no log file is written (daglite registered a logging plugin globally
and wrote ``run.log`` into the working directory).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import sys
import traceback
from typing import Any

from .._context import call_hook
from .._errors import BackendError, PluginError, TaskError
from .._session import Workflow, session
from .._settings import CACHE_MODES, DagliteSettings
from ._info import result_text
from ._params import Parameter, add_parameters, collect_arguments, split_docstring
from ._target import resolve_runnable

PROG = "daglite"
USAGE_ERROR = 2


class UsageError(Exception):
    """A usage error found after parsing (exit code 2)."""


class RunSetupError(Exception):
    """A plugin failed while the run's session was being prepared (exit code 1)."""


def err(message: str) -> None:
    """Print ``daglite: error: MESSAGE`` on stderr."""
    print(f"{PROG}: error: {message}", file=sys.stderr)


def run_options() -> argparse.ArgumentParser:
    """``run``'s own options: the core's and the plugins' (a parent parser)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    group = parser.add_argument_group("run options")
    group.add_argument("--backend", metavar="NAME", help="default backend of map_tasks (inline, thread, process, ...)")
    group.add_argument("--cache-store", metavar="PATH", help="cache store for cache=True tasks (default: DAGLITE_CACHE_STORE or the plugin's)")
    group.add_argument("--dataset-store", metavar="PATH", help="root of the dataset store (default: DAGLITE_DATASET_STORE or the plugin's)")
    group.add_argument("--cache-mode", choices=CACHE_MODES, help="on: use the cache; refresh: rerun and overwrite; off: bypass it")
    group.add_argument("--max-workers", type=int, metavar="N", help="workers of the thread/process backends")
    group.add_argument("--plugin", action="append", default=[], metavar="NAME", help="an installed plugin (entry-point name) for this run's session; repeatable")
    group.add_argument("--json", action="store_true", help="print the result as JSON instead of its repr")
    group.add_argument("--traceback", action="store_true", help="print the full traceback when the run fails")
    guarded_hook("provide_run_options", parser=parser)
    return parser


def guarded_hook(hook: str, **kwargs: Any) -> None:
    """Call a parser-building provider hook; a plugin that raises is reported, not fatal."""
    try:
        call_hook(hook, **kwargs)
    except PluginError as exc:  # names the plugin and hook
        print(f"{PROG}: warning: {exc}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - one broken plugin must not break the CLI
        where = traceback.extract_tb(exc.__traceback__)[-1]
        print(
            f"{PROG}: warning: a plugin's {hook} hook raised ({where.filename}:{where.lineno}): "
            f"{type(exc).__name__}: {exc}",
            file=sys.stderr,
        )


def _workflow_parser(runnable: Workflow[..., Any] | Any, target: str) -> tuple[argparse.ArgumentParser, list[Parameter]]:
    """The second-pass parser of ``run``: run options, target and the workflow's options."""
    description, _ = split_docstring(runnable.description or "")
    parser = argparse.ArgumentParser(
        prog=f"{PROG} run {target}", usage=f"{PROG} run {target} [options]",
        description=description or None, parents=[run_options()], allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", help=argparse.SUPPRESS)
    specs = add_parameters(parser, runnable.func, runnable.signature, runnable.description or "")
    hidden = [s for s in specs if not s.exposed]
    if hidden:
        names = ", ".join(f"{s.name} ({s.type_text})" for s in hidden)
        parser.epilog = f"Not settable from the command line (their defaults are used): {names}"
    return parser, specs


def cmd_run(first: argparse.Namespace, run_argv: list[str]) -> int:
    """``daglite run``: ``first`` is the first pass's namespace, ``run_argv`` what follows ``run``."""
    if first.target is None:
        if first.help:
            first.run_parser.print_help()
            return 0
        err("daglite run needs a TARGET (module:workflow or path/file.py:workflow)")
        return USAGE_ERROR
    runnable = resolve_runnable(first.target)
    parser, specs = _workflow_parser(runnable, first.target)
    args = parser.parse_args(run_argv)
    positional, keywords = collect_arguments(args, specs)
    options = _session_options(runnable, args)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(session(**options))
        except (BackendError, PluginError) as exc:
            raise UsageError(str(exc)) from exc
        try:
            # A workflow's function runs directly in this session (the flags already
            # merged its own options); a task is called, so its lifecycle runs.
            call: Any = runnable.func if isinstance(runnable, Workflow) else runnable
            result = call(*positional, **keywords)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - reported; sets the exit status
            return _failed(exc, runnable.name, args.traceback)
    try:
        text = result_text(result, args.json)
    except TypeError as exc:
        err(str(exc))
        return 1
    if text is not None:
        print(text)
    return 0


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _session_options(runnable: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The run's session: the workflow's own options, overridden by the flags given."""
    options: dict[str, Any] = dict(getattr(runnable, "session_options", {}))
    for name in ("backend", "cache_store", "dataset_store"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    changes = {k: v for k in ("cache_mode", "max_workers") if (v := getattr(args, k)) is not None}
    if changes:
        settings = options.get("settings") or DagliteSettings()
        try:
            options["settings"] = settings.evolve(**changes)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    try:
        answers = call_hook("provide_run_plugins", args=args)
    except PluginError as exc:  # names the plugin
        raise RunSetupError(str(exc)) from exc
    except Exception as exc:  # a plugin error, reported as such
        msg = f"a plugin's provide_run_plugins hook raised: {type(exc).__name__}: {exc}"
        raise RunSetupError(msg) from exc
    provided = [p for answer in answers for p in answer]
    options["plugins"] = [*options.get("plugins", ()), *args.plugin, *provided]
    return options


def _failed(exc: BaseException, name: str, show_traceback: bool) -> int:
    """Report a failed run on stderr; return its exit code."""
    if isinstance(exc, KeyboardInterrupt):
        err("interrupted")
        return 130
    if show_traceback:
        traceback.print_exception(exc)
    if isinstance(exc, TaskError):
        message = str(exc)
    else:
        message = f"workflow {name!r} failed: {type(exc).__name__}: {exc}"
    lines = message.splitlines() or [""]
    hint = "" if show_traceback else " (use --traceback for details)"
    err(f"{lines[0]}{' ...' if len(lines) > 1 else ''}{hint}")
    return 1
