"""Helpers shared by the daglite-rich tests: a tiny cache store, a known run, script runners."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

from daglite_core import CACHE_MISS

FAILING = (3, 7)
TERMINAL_VARS = ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "TERM", "COLUMNS", "LINES")


def child_env(**extra: str) -> dict[str, str]:
    """An environment for a child process: no CI or terminal overrides unless given."""
    from daglite_rich._console import CI_VARIABLES

    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES and k not in TERMINAL_VARS and not k.startswith("DAGLITE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class DictCache:
    """A CacheStore in a dict: enough for the core's cache=True path (pickles with its content)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            return self.data.get(key, CACHE_MISS)

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        with self._lock:
            self.data[key] = value

    def __getstate__(self) -> dict[str, Any]:
        return {"data": dict(self.data)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.data = state["data"]
        self._lock = threading.Lock()


def run_pty(argv: list[str], env: dict[str, str], timeout: float = 60.0, columns: int = 120) -> tuple[int, str]:
    """Run ``argv`` with stdin/stdout/stderr on a pseudo-terminal; return its exit code and output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            raise AssertionError(f"{argv} did not finish in {timeout} s; output so far: {b''.join(chunks)[-2000:]!r}")
    finally:
        code = proc.wait(timeout=10)
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def run_pipe(argv: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with output on pipes (not a terminal)."""
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


PYTHON = sys.executable
