"""The ``daglite`` command line.

Commands: ``run``, ``list``, ``describe``, ``plugins``, plus those plugins add
through :func:`~daglite_core._hookspecs.provide_cli_commands`. Exit codes: 0
success, 1 a task (or the workflow) failed, 2 a usage error (bad target, unknown
option, bad value, unknown backend or plugin), 130 interrupted.

Decisions (each fixes something daglite's CLI did):

* ``run`` parses in two passes. The first finds the target and ``run``'s own
  options (the core's and those plugins add through ``provide_run_options``); the
  second parses everything with one parser that also holds an option per workflow
  parameter, so ``daglite run mod:wf --help`` shows the workflow's docstring and
  typed parameters next to the run options, and a bad value is argparse's own
  error and exit code 2. The target comes before the workflow's options.
* ``run`` has flags for the session (``--backend``, ``--cache-store``,
  ``--dataset-store``, ``--cache-mode``, ``--max-workers``, ``--plugin``); they win
  over the workflow's own ``@workflow(...)`` options, and the plugins of both are
  used. Nothing is registered globally and no log file is written.
* The result is printed on stdout (``repr``, or JSON with ``--json``); messages go
  to stderr. A failure is one line naming the task; ``--traceback`` adds the
  traceback.
* ``list`` imports only the module it is given (see :mod:`daglite_core._cli_target`).
* A plugin whose ``provide_cli_commands`` raises loses its commands, with a
  warning; the rest of the command line (``daglite plugins`` above all) still works.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from ._cli_info import plugins_json, plugins_text, result_text, version_text
from ._cli_params import (
    ParameterError,
    add_parameters,
    collect_arguments,
    describe_parameters,
    show_default,
    split_docstring,
)
from ._cli_target import (
    TargetError,
    TargetImportError,
    find_workflows,
    is_path,
    load_module,
    resolve_runnable,
    unsearched_submodules,
)
from ._errors import BackendError, PluginError, TaskError
from ._plugins import call_hook, list_plugins
from ._session import Workflow, session
from ._settings import CACHE_MODES, DagliteSettings

__all__ = ["main"]

PROG = "daglite"
USAGE_ERROR = 2


class _UsageError(Exception):
    """A usage error found after parsing (exit code 2)."""


def _err(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------


def _run_options() -> argparse.ArgumentParser:
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
    _guarded_hook("provide_run_options", parser=parser)
    return parser


def _guarded_hook(hook: str, **kwargs: Any) -> None:
    """Call a parser-building provider hook; a plugin that raises is reported, not fatal."""
    try:
        call_hook(hook, **kwargs)
    except Exception as exc:  # noqa: BLE001 - one broken plugin must not break the CLI
        where = traceback.extract_tb(exc.__traceback__)[-1]
        print(
            f"{PROG}: warning: a plugin's {hook} hook raised ({where.filename}:{where.lineno}): "
            f"{type(exc).__name__}: {exc}",
            file=sys.stderr,
        )


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command (the plugins' included)."""
    parser = argparse.ArgumentParser(
        prog=PROG, allow_abbrev=False,
        description="Run and inspect daglite workflows.",
        epilog="Run 'daglite run TARGET --help' for a workflow's own options.",
    )
    parser.add_argument("--version", action="store_true", help="print daglite-core's and the plugins' versions")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run", parents=[_run_options()], add_help=False, allow_abbrev=False,
        help="run a workflow: daglite run TARGET [--param VALUE ...]",
        usage="daglite run TARGET [run options] [workflow options]",
    )
    run.add_argument("target", nargs="?", help="module:workflow, pkg.mod.workflow or path/file.py:workflow")
    run.add_argument("-h", "--help", action="store_true", help="show this help (with a TARGET: the workflow's)")
    run.set_defaults(handler=None, run_parser=run)

    listing = commands.add_parser("list", help="list the workflows of one module or file (submodules are not imported)")
    listing.add_argument("module", metavar="MODULE_OR_FILE", help="a module name or a path to a .py file")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_cmd_list)

    describe = commands.add_parser("describe", help="show a workflow's description and parameters")
    describe.add_argument("target", help="module:workflow, pkg.mod.workflow or path/file.py:workflow")
    describe.add_argument("--json", action="store_true", help="print JSON")
    describe.set_defaults(handler=_cmd_describe)

    plugins = commands.add_parser("plugins", help="list every discovered plugin: version, hooks, enabled or why not")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(handler=_cmd_plugins)

    _guarded_hook("provide_cli_commands", subparsers=commands)
    return parser


def _workflow_parser(runnable: Workflow[..., Any] | Any, target: str) -> tuple[argparse.ArgumentParser, list[Any]]:
    """The second-pass parser of ``run``: run options, target and the workflow's options."""
    description, _ = split_docstring(runnable.description or "")
    parser = argparse.ArgumentParser(
        prog=f"{PROG} run {target}", usage=f"{PROG} run {target} [options]",
        description=description or None, parents=[_run_options()], allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", help=argparse.SUPPRESS)
    specs = add_parameters(parser, runnable.func, runnable.signature, runnable.description or "")
    hidden = [s for s in specs if not s.exposed]
    if hidden:
        names = ", ".join(f"{s.name} ({s.type_text})" for s in hidden)
        parser.epilog = f"Not settable from the command line (their defaults are used): {names}"
    return parser, specs


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


def _cmd_run(first: argparse.Namespace, run_argv: list[str]) -> int:
    if first.target is None:
        if first.help:
            first.run_parser.print_help()
            return 0
        _err("daglite run needs a TARGET (module:workflow or path/file.py:workflow)")
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
            raise _UsageError(str(exc)) from exc
        try:
            result = runnable.func(*positional, **keywords) if isinstance(runnable, Workflow) else runnable(*positional, **keywords)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
        except (Exception, KeyboardInterrupt) as exc:
            return _failed(exc, runnable.name, args.traceback)
    try:
        text = result_text(result, args.json)
    except TypeError as exc:
        _err(str(exc))
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
            raise _UsageError(str(exc)) from exc
    provided = [p for answer in call_hook("provide_run_plugins", args=args) for p in answer]
    options["plugins"] = [*options.get("plugins", ()), *args.plugin, *provided]
    return options


def _failed(exc: BaseException, name: str, show_traceback: bool) -> int:
    """Report a failed run on stderr; return its exit code."""
    if isinstance(exc, KeyboardInterrupt):
        _err("interrupted")
        return 130
    if show_traceback:
        traceback.print_exception(exc)
    if isinstance(exc, TaskError):
        message = str(exc)
    else:
        message = f"workflow {name!r} failed: {type(exc).__name__}: {exc}"
    lines = message.splitlines() or [""]
    hint = "" if show_traceback else " (use --traceback for details)"
    _err(f"{lines[0]}{' ...' if len(lines) > 1 else ''}{hint}")
    return 1


def _cmd_list(args: argparse.Namespace) -> int:
    module = load_module(args.module)
    prefix = args.module if is_path(args.module) else module.__name__
    found = [(f"{prefix}:{attr}", wf) for attr, wf in find_workflows(module)]
    if args.json:
        print(json.dumps([{"target": t, "name": wf.name, "description": wf.description} for t, wf in found], indent=2))
    else:
        width = max((len(t) for t, _ in found), default=0)
        for target, wf in found:
            summary = (wf.description.splitlines() or [""])[0]
            print(f"{target:<{width}}  {summary}".rstrip())
    if not found:
        print(f"no workflows in {args.module}", file=sys.stderr)
    skipped = unsearched_submodules(module)
    if skipped:
        print(f"not searched (list one by name): {', '.join(skipped)}", file=sys.stderr)
    return 0


def _cmd_describe(args: argparse.Namespace) -> int:
    runnable = resolve_runnable(args.target)
    description, _ = split_docstring(runnable.description or "")
    params = describe_parameters(runnable.func, runnable.signature, runnable.description or "")
    kind = "workflow" if isinstance(runnable, Workflow) else "task"
    if args.json:
        print(json.dumps({
            "target": args.target, "name": runnable.name, "kind": kind, "is_async": runnable.is_async,
            "description": description,
            "parameters": [
                {"name": p.name, "option": p.option, "type": p.type_text, "required": p.required,
                 "default": None if p.required else show_default(p.default), "help": p.help, "settable": p.exposed}
                for p in params
            ],
        }, indent=2))
        return 0
    print(f"{kind}: {runnable.name}{'  (async)' if runnable.is_async else ''}")
    print(f"target: {args.target}")
    if description:
        print("\n" + description)
    print("\nparameters:" if params else "\nparameters: none")
    for p in params:
        default = "required" if p.required else f"default {show_default(p.default)}"
        note = "" if p.exposed else "  [not settable from the command line]"
        print(f"  {p.option:<20} {p.type_text:<14} {default}{note}")
        if p.help:
            print(f"  {'':<20} {p.help}")
    print(f"\nrun: {PROG} run {args.target} [options]  (--help for all options)")
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    infos = list_plugins()
    print(plugins_json(infos) if args.json else plugins_text(infos))
    return 0


_CORE_COMMANDS = frozenset({"list", "describe", "plugins"})


def _plugin_command(args: argparse.Namespace) -> int:
    """Run a plugin's subcommand; its exceptions are reported naming the command."""
    handler = getattr(args, "handler", None)
    if not callable(handler):
        _err(f"the plugin that added {args.command!r} gave it no handler (set_defaults(handler=...))")
        return 1
    try:
        code = handler(args)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - reported with the command's name
        _err(f"'{PROG} {args.command}' failed: {type(exc).__name__}: {exc}")
        return 1
    return int(code or 0)


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``daglite`` command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        DagliteSettings()
    except ValueError as exc:  # a malformed DAGLITE_* variable: reported before anything runs
        _err(str(exc))
        return USAGE_ERROR
    try:
        parser = build_parser()
        first, extra = parser.parse_known_args(argv)
        if first.version:
            print(version_text(list_plugins()))
            return 0
        if first.command is None:
            parser.print_help(sys.stderr)
            return USAGE_ERROR
        if first.command == "run":
            return _cmd_run(first, argv[argv.index("run") + 1:])
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if first.command in _CORE_COMMANDS:
            return int(first.handler(first))
        return _plugin_command(first)
    except SystemExit as exc:  # argparse's own usage errors (2) and --help (0)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else USAGE_ERROR)
    except (TargetError, ParameterError, _UsageError) as exc:
        _err(str(exc))
        return USAGE_ERROR
    except TargetImportError as exc:
        traceback.print_exception(exc.error)
        _err(str(exc))
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
