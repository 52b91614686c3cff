"""``daglite callbacks pending | resume | sweep``: the outbox from the command line.

Every command takes ``--outbox PATH`` (default: ``DAGLITE_CALLBACKS_OUTBOX``, else
``.daglite/callbacks/outbox.sqlite3`` under the current directory, as for
``durable=True``). A missing outbox is reported ("nothing recorded"), never created.

* ``pending`` lists every recorded callback that has not finished: its key, parent,
  callback, outcome, state and who holds it (``--json`` for machines). Exit code 0.
* ``resume`` claims and runs every callback whose process is gone (inside a
  session, so plugins see the callbacks' task calls); tasks must be importable
  from here (``--path DIR`` adds a directory to ``sys.path``, repeatable).
  Exit code 0 when everything claimable was delivered, 1 when a callback failed
  or could not be loaded.
* ``sweep`` deletes expired rows. Exit code 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import attrs

from daglite_core import session

from ._outbox import Outbox, OutboxError, default_outbox_path

__all__ = ["add_commands"]


def add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``callbacks`` command and its subcommands to ``subparsers``."""
    top = subparsers.add_parser(
        "callbacks", help="list and deliver durable callbacks (daglite-callbacks outbox)",
        description="Inspect and resume the daglite-callbacks outbox of durable callbacks.",
    )
    top.set_defaults(handler=lambda args: _usage(top))
    commands = top.add_subparsers(dest="callbacks_command", metavar="{pending,resume,sweep}")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--outbox", default=None, metavar="PATH",
            help="outbox database (default: $DAGLITE_CALLBACKS_OUTBOX or ./.daglite/callbacks/outbox.sqlite3)",
        )

    pending = commands.add_parser("pending", help="list recorded callbacks that have not finished")
    common(pending)
    pending.add_argument("--json", action="store_true", help="print JSON")
    pending.set_defaults(handler=_pending)

    resume = commands.add_parser("resume", help="run the callbacks whose process is gone")
    common(resume)
    resume.add_argument("--path", action="append", default=[], metavar="DIR",
                        help="add DIR to sys.path so the callbacks' tasks import (repeatable)")
    resume.set_defaults(handler=_resume)

    sweep = commands.add_parser("sweep", help="delete expired rows (active and done TTLs)")
    common(sweep)
    sweep.set_defaults(handler=_sweep)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _open(args: argparse.Namespace) -> Outbox | None:
    path = Path(args.outbox).expanduser().absolute() if args.outbox else default_outbox_path()
    if not path.exists():
        print(f"No callbacks outbox at {path}: nothing recorded.", file=sys.stdout)
        return None
    return Outbox(path)


def _pending(args: argparse.Namespace) -> int:
    box = _open(args)
    if box is None:
        if args.json:
            print("[]")
        return 0
    try:
        rows = box.pending()
    finally:
        box.close()
    if args.json:
        print(json.dumps([attrs.asdict(row) for row in rows], indent=2))
        return 0
    print(f"Outbox: {box.path}")
    if not rows:
        print("No callback waits.")
        return 0
    now = time.time()
    print(f"{len(rows)} callback(s) wait:")
    for row in rows:
        holder = (
            "in flight (held by a live process)" if row.owner_alive
            else "claimable (its process is gone)" if row.state == "running"
            else "claimable" if row.state == "pending" else row.state
        )
        age = now - row.created
        line = (f"  {row.key}  {row.outcome} callback {row.callback!r} of {row.parent!r}: {holder}; "
                f"attempts {row.attempts}, recorded {age:.0f} s ago, expires in {row.expires - now:.0f} s")
        print(line + (f"; last error: {row.error}" if row.error else ""))
    return 0


def _resume(args: argparse.Namespace) -> int:
    box = _open(args)
    if box is None:
        return 0
    for directory in reversed(args.path):
        sys.path.insert(0, str(Path(directory).absolute()))
    try:
        with session():
            report = box.resume()
    except OutboxError as exc:
        print(f"daglite callbacks resume: {exc}", file=sys.stderr)
        return 1
    finally:
        box.close()
    print(f"Delivered {report.delivered} callback(s) ({report.failed} failed); "
          f"{report.held} held by live processes; {report.unloadable} could not be loaded; "
          f"{report.swept} expired row(s) swept.")
    return 1 if report.failed or report.unloadable else 0


def _sweep(args: argparse.Namespace) -> int:
    box = _open(args)
    if box is None:
        return 0
    try:
        swept = box.sweep()
    finally:
        box.close()
    print(f"Swept {swept} expired row(s) from {box.path}.")
    return 0
