"""``daglite cache stats | clear | check [--fix]``.

Every command takes ``--dir`` (default: ``DAGLITE_CACHE_STORE``, else
``.daglite/cache`` under the current directory, as for ``cache=True``). A missing
directory is reported, never created. ``stats`` and ``clear`` leave an unreadable
database alone and tell the user to run ``check --fix``; only ``check --fix``
moves it aside.

``check`` runs a consistency check (see ``_consistency``: orphan ``.val`` files
left by a crash, sizes, rows naming files that are not regular value files inside
the directory) and verifies every entry's signature *without unpickling it*;
``--fix`` repairs what it can and removes entries that do not verify. Only regular
files inside the cache directory are ever opened or removed; a symlink, FIFO or
device found there is reported and left alone. Exit codes: 0 clean (or fixed),
1 problems found or left for the user (or the database is unreadable), 2 usage
errors (argparse).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from daglite_core.signing import SignatureError

from ._consistency import check_cache
from ._envelope import verify_blob, verify_file
from ._files import UnsafeValueFileError, open_value
from ._handles import is_corruption
from ._paths import default_cache_dir, resolve_dir
from ._store import DiskCacheStore

__all__ = ["add_commands"]


def add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``cache`` command and its subcommands to ``subparsers``."""
    cache = subparsers.add_parser(
        "cache", help="inspect and maintain the daglite-diskcache cache",
        description="Inspect and maintain a daglite-diskcache cache directory.",
    )
    cache.set_defaults(handler=lambda args: _usage(cache))
    commands = cache.add_subparsers(dest="cache_command", metavar="{stats,clear,check}")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--dir", default=None, metavar="DIR",
            help="cache directory (default: $DAGLITE_CACHE_STORE or ./.daglite/cache)",
        )

    stats = commands.add_parser("stats", help="entries, size and the functions that use the cache")
    common(stats)
    stats.set_defaults(handler=_stats)

    clear = commands.add_parser("clear", help="remove entries (all, or one function's)")
    common(clear)
    clear.add_argument(
        "--function", metavar="MODULE.QUALNAME", default=None,
        help="only the entries of this function (as listed by 'daglite cache stats')",
    )
    clear.add_argument("--expired", action="store_true", help="only entries whose TTL has passed")
    clear.set_defaults(handler=_clear)

    check = commands.add_parser("check", help="verify the database and every entry's signature")
    common(check)
    check.add_argument("--fix", action="store_true", help="repair: remove bad entries and orphan files")
    check.set_defaults(handler=_check)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _directory(args: argparse.Namespace) -> Path:
    return resolve_dir(args.dir) if args.dir else default_cache_dir()


def _open(args: argparse.Namespace, out: TextIO) -> DiskCacheStore | None:
    directory = _directory(args)
    if not (directory / "cache.db").exists():
        print(f"No cache at {directory}", file=out)
        return None
    return DiskCacheStore(directory)


def _unreadable(directory: Path, exc: BaseException) -> int:
    print(
        f"Cache database in {directory} is unreadable ({type(exc).__name__}: {exc}); "
        "run 'daglite cache check --fix' to move it aside and start empty",
        file=sys.stderr,
    )
    return 1


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _stats(args: argparse.Namespace) -> int:
    out = sys.stdout
    store = _open(args, out)
    if store is None:
        return 0
    try:
        cache = store._handle()  # noqa: SLF001
        now = time.time()
        rows = cache._sql("SELECT key, raw, expire_time FROM Cache").fetchall()  # noqa: SLF001
        volume = cache.volume()
    except sqlite3.DatabaseError as exc:
        return _unreadable(store.directory, exc)
    finally:
        store.close()
    expired = sum(1 for _, _, expire in rows if expire is not None and expire <= now)
    functions = Counter(str(key).rpartition(":")[0] or "?" for key, raw, _ in rows if raw)
    print(f"Cache directory: {store.directory}", file=out)
    print(f"Entries:         {len(rows)} ({expired} expired, removed on later writes)", file=out)
    print(f"Size on disk:    {_size(volume)} of {_size(cache.size_limit)} limit "
          f"({cache.eviction_policy})", file=out)
    if functions:
        print("Entries per function:", file=out)
        for name, count in sorted(functions.items(), key=lambda item: (-item[1], item[0])):
            print(f"  {count:8d}  {name}", file=out)
    return 0


def _clear(args: argparse.Namespace) -> int:
    out = sys.stdout
    store = _open(args, out)
    if store is None:
        return 0
    try:
        if args.expired:
            count = int(store._handle().expire(retry=True))  # noqa: SLF001
        elif args.function:
            count = store.clear(prefix=f"{args.function}:")
        else:
            count = store.clear()
    except sqlite3.DatabaseError as exc:
        return _unreadable(store.directory, exc)
    finally:
        store.close()
    print(f"Removed {count} entr{'y' if count == 1 else 'ies'} from {store.directory}", file=out)
    return 0


def _check(args: argparse.Namespace) -> int:
    out = sys.stdout
    directory = _directory(args)
    if not (directory / "cache.db").exists():
        print(f"No cache at {directory}", file=out)
        return 0
    store = DiskCacheStore(directory)
    try:
        opened = store._open(recover_corrupt=args.fix)  # noqa: SLF001
        if opened.moved_to is not None:
            print(f"Database was unreadable ({opened.cause}); moved aside to {opened.moved_to}; "
                  f"{directory} now holds an empty cache", file=out)
            return 0
        cache = opened.cache
        findings = check_cache(cache, fix=args.fix)
        problems = findings.problems
        bad = _bad_entries(store, cache)
        if args.fix:
            for key in bad:
                cache.delete(key, retry=True)
            cache._sql("DELETE FROM Cache WHERE raw = 0")  # noqa: SLF001 - never written by daglite
    except sqlite3.DatabaseError as exc:
        if is_corruption(exc) and not args.fix:
            return _unreadable(directory, exc)
        raise
    finally:
        store.close()
    for line in problems:
        print(line, file=out)
    for key in bad:
        print(f"bad entry {key} ({bad[key]})", file=out)
    for line in findings.left_alone:
        print(line, file=out)
    total = len(problems) + len(bad)
    if findings.left_alone:
        done = f"fixed {total} problem{'s' if total != 1 else ''}; " if args.fix and total else ""
        print(f"{directory}: {done}{len(findings.left_alone)} left for you to inspect", file=out)
        return 1
    if not total:
        print(f"{directory}: OK", file=out)
        return 0
    if args.fix:
        print(f"{directory}: fixed {total} problem{'s' if total != 1 else ''}", file=out)
        return 0
    print(f"{directory}: {total} problem{'s' if total != 1 else ''}; run with --fix to repair", file=out)
    return 1


def _bad_entries(store: DiskCacheStore, cache: Any) -> dict[str, str]:
    """Entries whose signature does not verify (checked without unpickling).

    Value files are read only through :func:`._files.read_value`: regular files
    inside the directory, never a planted path, symlink, FIFO or device.
    """
    bad: dict[str, str] = {}
    rows = cache._sql("SELECT key, raw, mode, filename, value FROM Cache").fetchall()  # noqa: SLF001
    for key, raw, mode, filename, value in rows:
        if not raw or not isinstance(key, str):
            bad[repr(key)] = "pickled key, not written by daglite"
            continue
        try:
            if mode == 1 and isinstance(value, bytes):
                verify_blob(key, value)
            elif mode == 2 and filename:
                try:
                    fd = open_value(store.config.directory, filename)
                except (FileNotFoundError, UnsafeValueFileError):
                    continue  # reported (and with --fix removed) by check_cache
                with os.fdopen(fd, "rb") as file:
                    verify_file(key, file, os.fstat(fd).st_size)
            else:
                bad[key] = f"diskcache mode {mode}, not written by daglite"
                continue
        except (OSError, SignatureError) as exc:
            bad[key] = f"{type(exc).__name__}: {exc}"
    return bad
