"""Module-level tasks and a command line for the durable-callbacks crash tests.

Run as ``python -c "import callbacks_durable_jobs as j; j.main()" MODE ...`` with this
directory on ``PYTHONPATH`` (the outbox pickles the tasks by this module's name):

* ``run OUTBOX LOG CALLS KILL_AT``: call a durable signature ``CALLS`` times; each
  call has three success callbacks that append their delivery key to ``LOG``. A
  plugin SIGKILLs the process when the callback task named by ``KILL_AT`` (e.g.
  ``cb_second@7``: the second callback of call 7) is about to run.
* ``resume OUTBOX LOG GO``: wait until the file ``GO`` exists (so two resumers
  start together), resume the outbox, print the report as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from daglite_callbacks import ErrorValue, Outbox, ReturnValue, delivery_key, sign
from daglite_core import hookimpl, session, task


def _log(tag: str, value: Any) -> None:
    line = f"{tag} {value} {delivery_key()}\n"
    fd = os.open(os.environ["CB_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    time.sleep(float(os.environ.get("CB_SLOW", "0")))


@task
def cb_parent(i: int) -> int:
    return i


@task
def cb_first(value: ReturnValue[int]) -> None:
    _log("first", value)


@task
def cb_second(value: ReturnValue[int]) -> None:
    _log("second", value)


@task
def cb_third(value: ReturnValue[int]) -> None:
    _log("third", value)


class Killer:
    """SIGKILLs this process before the callback task ``name`` runs for parent value ``at``."""

    def __init__(self, name: str, at: int) -> None:
        self.name = name
        self.at = at

    @hookimpl
    def before_node_execute(self, metadata: Any) -> None:
        if metadata.name == self.name and metadata.inputs.get("value") == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    mode, outbox, log = sys.argv[1:4]
    os.environ["CB_LOG"] = log
    box = Outbox(outbox)
    if mode == "run":
        calls, kill_at = int(sys.argv[4]), sys.argv[5]
        name, _, at = kill_at.partition("@")
        sig = sign(cb_parent, durable=box, success_callbacks=[cb_first, cb_second, cb_third])
        with session(plugins=[Killer(name, int(at))]):
            for i in range(calls):
                sig(i=i)
        return
    go = sys.argv[4]
    while not os.path.exists(go):
        time.sleep(0.005)
    with session():
        report = box.resume()
    print(json.dumps({"delivered": report.delivered, "held": report.held, "failed": report.failed}))


# -- tasks for the in-process tests (module level: durable callbacks must pickle) ------

SEEN: list[Any] = []


def _states(path: str) -> dict[str, str]:
    import sqlite3

    Outbox(path).flush()  # fold the journals (this process's included) into the database
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT key, state FROM signatures ORDER BY created, position").fetchall())
    finally:
        db.close()


@task
def probe(value: ReturnValue[int]) -> None:
    key = delivery_key() or ""
    SEEN.append((key, _states(os.environ["CB_OUTBOX"])[key]))


@task
def boom(i: int) -> int:
    raise ValueError(i)


@task
def on_error(i: int, error: ErrorValue) -> None:
    SEEN.append((i, type(error).__name__))


@task
def fails(value: ReturnValue[int]) -> None:
    msg = "no"
    raise RuntimeError(msg)


@task
def middle(value: ReturnValue[int]) -> int:
    return value * 10


@task
def leaf(value: ReturnValue[int]) -> None:
    SEEN.append(list(_states(os.environ["CB_OUTBOX"]).values()))


@task
def step(value: ReturnValue[int]) -> int:
    return value + 1


@task
async def aparent(i: int) -> int:
    return i + 1


@task
def interrupted(value: ReturnValue[int]) -> None:
    if os.environ.get("CB_INTERRUPT") == "1":
        raise KeyboardInterrupt


@task
def makes_lock(i: int) -> Any:
    import threading

    return threading.Lock()


@task
def take(daglite_results: Any) -> None:
    SEEN.append(daglite_results)
