"""The ``daglite`` command line.

Commands: ``run``, ``list``, ``describe``, ``plugins``, plus those plugins add
through :func:`~daglite_core._hooks._specs.provide_cli_commands`. Exit codes: 0
success, 1 a task (or the workflow) failed, 2 a usage error (bad target, unknown
option, bad value, unknown backend or plugin), 130 interrupted.

Decisions (each fixes something daglite's CLI did):

* ``run`` (see :mod:`daglite_core.cli._run`) builds options from the workflow's
  signature, has flags for the session (``--backend``, ``--cache-store``,
  ``--dataset-store``, ``--cache-mode``, ``--max-workers``, ``--plugin``) and
  prints the result on stdout (``repr``, or JSON with ``--json``); messages go to
  stderr. A failure is one line naming the task; ``--traceback`` adds the
  traceback.
* ``list`` imports only the module it is given (see :mod:`daglite_core.cli._target`).
* A plugin whose ``provide_cli_commands`` raises loses its commands, with a
  warning; the rest of the command line (``daglite plugins`` above all) still works.
* ``daglite plugins`` exits with 1 when a plugin failed to load (after listing
  every plugin), so a CI check catches a broken install.
* A command a known plugin adds (``cache``: daglite-diskcache) asked for when that
  plugin is not available says which plugin adds it and why it is missing
  (not installed, disabled and by what, failed to load).
  A plugin command that raises is reported naming the command (exit code 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence

from .._hooks import list_plugins
from .._session import Workflow
from .._settings import DagliteSettings
from ._info import plugins_json, plugins_text, version_text
from ._params import ParameterError, describe_parameters, show_default, split_docstring
from ._run import PROG, USAGE_ERROR, RunSetupError, UsageError, cmd_run, err, guarded_hook, run_options
from ._target import (
    TargetError,
    TargetImportError,
    find_workflows,
    is_path,
    load_module,
    resolve_runnable,
    unsearched_submodules,
)

__all__ = ["main"]

# ---------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------


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
        "run", parents=[run_options()], add_help=False, allow_abbrev=False,
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

    guarded_hook("provide_cli_commands", subparsers=commands)
    parser.daglite_commands = commands  # type: ignore[attr-defined]  # read by _missing_command
    return parser


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


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
    failed = [p.name for p in infos if p.status == "failed"]
    if failed:
        err(f"{len(failed)} plugin(s) failed to load: {', '.join(failed)}")
        return 1
    return 0


# Commands that plugins add, and the distribution that adds each: when one is
# asked for and is not there, say which plugin adds it (and why it is missing).
PLUGIN_COMMANDS = {"cache": "daglite-diskcache"}


def _missing_command(argv: Sequence[str], parser: argparse.ArgumentParser) -> str | None:
    """The message for a known plugin command that no enabled plugin added, else None."""
    command = next((a for a in argv if not a.startswith("-")), None)
    distribution = PLUGIN_COMMANDS.get(command or "")
    if distribution is None:
        return None
    if command in getattr(parser, "daglite_commands").choices:  # noqa: B009 - set by build_parser, unknown to mypy
        return None
    from .._hooks import missing_plugin_hint

    return f"'{PROG} {command}' is added by the {distribution} plugin, which is not available: {missing_plugin_hint(distribution, DagliteSettings())}"


_CORE_COMMANDS = frozenset({"list", "describe", "plugins"})


def _plugin_command(args: argparse.Namespace) -> int:
    """Run a plugin's subcommand; its exceptions are reported naming the command."""
    handler = getattr(args, "handler", None)
    if not callable(handler):
        err(f"the plugin that added {args.command!r} gave it no handler (set_defaults(handler=...))")
        return 1
    try:
        code = handler(args)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - reported with the command's name
        err(f"'{PROG} {args.command}' failed: {type(exc).__name__}: {exc}")
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
        err(str(exc))
        return USAGE_ERROR
    try:
        parser = build_parser()
        missing = _missing_command(argv, parser)
        if missing is not None:
            err(missing)
            return USAGE_ERROR
        first, extra = parser.parse_known_args(argv)
        if first.version:
            print(version_text(list_plugins()))
            return 0
        if first.command is None:
            parser.print_help(sys.stderr)
            return USAGE_ERROR
        if first.command == "run":
            return cmd_run(first, argv[argv.index("run") + 1:])
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if first.command in _CORE_COMMANDS:
            return int(first.handler(first))
        return _plugin_command(first)
    except SystemExit as exc:  # argparse's own usage errors (2) and --help (0)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else USAGE_ERROR)
    except (TargetError, ParameterError, UsageError) as exc:
        err(str(exc))
        return USAGE_ERROR
    except TargetImportError as exc:
        traceback.print_exception(exc.error)
        err(str(exc))
        return 1
    except RunSetupError as exc:
        err(str(exc))
        return 1
    except KeyboardInterrupt:
        err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
