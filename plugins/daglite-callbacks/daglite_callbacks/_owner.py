"""Who holds a claimed delivery, and whether that process is still alive.

A claim's owner is a token ``host|pid|start|nonce``: the host name, the process
id, the process's start time (Linux: field 22 of ``/proc/<pid>/stat``, in clock
ticks since boot; elsewhere empty) and a random nonce. A resumer may take over a
claim only when its owner is **dead**:

* same host, and no process with that pid exists (or it is a zombie); or
* same host and pid, but the process started at another time (the pid was reused).

A claim held by another host is never taken over (the outbox is a local file;
see the README). A process that cannot be checked (``/proc`` unreadable, a pid
owned by another user) counts as alive: taking over a live claim would run a
callback twice, leaving one waiting is only late.

The token is recomputed after ``fork`` (a worker process is not its parent).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading

__all__ = ["is_alive", "owner_token"]

_lock = threading.Lock()
_token: tuple[int, str] | None = None


def _start_time(pid: int) -> tuple[str, bool] | None:
    """(start time, is zombie) of ``pid`` from ``/proc``; ``None`` if there is no ``/proc`` entry."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read().decode("ascii", "replace")
    except FileNotFoundError:
        return None
    except OSError:
        return ("?", False)
    fields = data.rsplit(")", 1)[-1].split()
    if len(fields) < 20:
        return ("?", False)
    return fields[19], fields[0] in ("Z", "X")


def owner_token() -> str:
    """This process's owner token (stable for the process; new after ``fork``)."""
    global _token
    pid = os.getpid()
    token = _token
    if token is not None and token[0] == pid:
        return token[1]
    with _lock:
        if _token is None or _token[0] != pid:
            started = _start_time(pid) if os.path.isdir("/proc") else None
            start = started[0] if started is not None else ""
            _token = (pid, f"{socket.gethostname()}|{pid}|{start}|{secrets.token_hex(4)}")
        return _token[1]


def is_alive(token: str | None) -> bool:
    """Whether the process that holds ``token`` may still be running (see the module docstring)."""
    if not token:
        return False
    if token == owner_token():
        return True
    try:
        host, pid_text, start, _nonce = token.split("|")
        pid = int(pid_text)
    except ValueError:
        return True  # not a token we wrote: leave it alone
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    except OSError:
        return True
    if not os.path.isdir("/proc"):
        return True
    started = _start_time(pid)
    if started is None:
        return False  # gone between the two checks
    now_start, zombie = started
    if zombie:
        return False
    return not (start and now_start != "?" and now_start != start)
