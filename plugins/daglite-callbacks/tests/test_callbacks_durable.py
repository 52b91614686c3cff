"""Durable callbacks: the outbox records before acting and marks done after finishing."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daglite_callbacks import (
    Outbox,
    ReturnValue,
    SignatureError,
    _outbox,
    chain,
    default_outbox_path,
    delivery_key,
    sign,
)
from daglite_callbacks import plugin as callbacks_plugin
from daglite_core import session, signing, task

import callbacks_durable_jobs as jobs
from callbacks_durable_jobs import cb_first, cb_parent

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("DAGLITE_SIGNING_KEY", "durable-callbacks-tests")
    monkeypatch.setenv("CB_LOG", str(tmp_path / "log.txt"))
    for name in ("DAGLITE_CALLBACKS_OUTBOX", "DAGLITE_CALLBACKS_DURABLE", "DAGLITE_CALLBACKS_RESUME", "CB_SLOW"):
        monkeypatch.delenv(name, raising=False)
    signing.reset()
    monkeypatch.setenv("CB_OUTBOX", str(tmp_path / "ob.sqlite3"))
    monkeypatch.chdir(tmp_path)
    jobs.SEEN.clear()
    yield
    _outbox._compact_all(os.getpid())  # this test's journals, while its signing key is set
    signing.reset()


def _log_lines(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "log.txt"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _job(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", "import callbacks_durable_jobs as j; j.main()", *args],
        env=full, capture_output=True, text=True, timeout=120, check=False,
    )


def _rows(path: Path) -> list[tuple[Any, ...]]:
    Outbox(path).flush()  # fold the journals (this process's included) into the database
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT key, state, owner, attempts, failed FROM signatures ORDER BY created, position").fetchall()
    finally:
        db.close()


# -- in one process -----------------------------------------------------------------


def test_callbacks_are_recorded_then_marked_done_in_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    seen = jobs.SEEN
    # Each callback sees its own row recorded and running (claimed by this process).
    sig = sign(cb_parent, durable=box, success_callbacks=[jobs.probe, jobs.probe])
    assert sig(i=4) == 4
    keys = [key for key, _ in seen]
    assert [state for _, state in seen] == ["running", "running"]
    assert keys[0].endswith(":success:0") and keys[1].endswith(":success:1")
    assert keys[0].split(":")[0] == keys[1].split(":")[0]  # one signature id per call
    assert [state for _, state, *_ in _rows(box.path)] == ["done", "done"]
    assert box.pending() == []
    assert delivery_key() is None


def test_error_callbacks_are_durable_too_and_get_the_failing_kwargs(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    with pytest.raises(Exception, match="boom"):
        sign(jobs.boom, durable=box, error_callbacks=[jobs.on_error])(i=3)
    assert jobs.SEEN == [(3, "TaskError")]
    [(key, state, _, _, failed)] = _rows(box.path)
    assert key.endswith(":error:0") and state == "done" and failed == 0


def test_a_failing_callback_is_done_and_marked_failed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    with caplog.at_level(logging.ERROR, "daglite.callbacks"):
        assert sign(cb_parent, durable=box, success_callbacks=[jobs.fails], strict=False)(i=1) == 1
    [(_, state, _, _, failed)] = _rows(box.path)
    assert (state, failed) == ("done", 1)
    assert "RuntimeError" in caplog.text


def test_a_durable_callbacks_own_callbacks_are_recorded_with_its_done_mark(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    inner_states = jobs.SEEN
    sig = sign(cb_parent, durable=box, success_callbacks=[sign(jobs.middle, success_callbacks=[jobs.leaf])])
    sig(i=2)
    # When the leaf runs, the middle callback is already done (its body finished and
    # the leaf was recorded in the same transaction); only the leaf is running.
    assert inner_states == [["done", "running"]]
    assert [state for _, state, *_ in _rows(box.path)] == ["done", "done"]


def test_chain_steps_inside_a_durable_callback_inherit_the_outbox(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    pipeline = chain([sign(jobs.step), sign(jobs.step, success_callbacks=[cb_first])])
    sign(cb_parent, durable=box, success_callbacks=[pipeline])(i=1)
    rows = _rows(box.path)
    assert len(rows) == 2 and {state for _, state, *_ in rows} == {"done"}
    assert _log_lines(tmp_path) == [["first", "3", rows[1][0]]]


def test_async_durable_call(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    assert asyncio.run(sign(jobs.aparent, durable=box, success_callbacks=[cb_first]).arun(i=1)) == 2
    [(key, state, *_)] = _rows(box.path)
    assert state == "done"
    assert _log_lines(tmp_path) == [["first", "2", key]]


def test_env_switch_makes_every_signature_durable_in_the_default_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGLITE_CALLBACKS_DURABLE", "1")
    sign(cb_parent, success_callbacks=[cb_first])(i=1)
    assert default_outbox_path() == tmp_path / ".daglite" / "callbacks" / "outbox.sqlite3"
    assert [state for _, state, *_ in _rows(default_outbox_path())] == ["done"]
    assert oct(os.stat(default_outbox_path().parent).st_mode & 0o777) == oct(0o700)
    sign(cb_parent, durable=False, success_callbacks=[cb_first])(i=2)  # opted out: not recorded
    assert len(_rows(default_outbox_path())) == 1


def test_durable_false_is_not_recorded_and_no_outbox_is_created(tmp_path: Path) -> None:
    sign(cb_parent, success_callbacks=[cb_first])(i=1)
    assert not default_outbox_path().exists()


def test_an_unpicklable_callback_is_refused_when_attached_to_a_durable_signature(tmp_path: Path) -> None:
    @task
    def local(value: ReturnValue[int], lock: Any = None) -> None:
        pass

    with pytest.raises(SignatureError, match="durable node: it cannot be pickled"):
        sign(cb_parent, durable=Outbox(tmp_path / "ob.sqlite3"), success_callbacks=[sign(local, lock=threading.Lock())])


def test_an_unpicklable_result_runs_its_callbacks_without_durability(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    with caplog.at_level(logging.ERROR, "daglite.callbacks"):
        sign(jobs.makes_lock, durable=box, success_callbacks=[jobs.take])(i=1)
    assert len(jobs.SEEN) == 1
    assert "cannot be recorded in the outbox" in caplog.text
    assert not box.path.exists() or _rows(box.path) == []


def test_bad_durable_option_is_a_clear_error() -> None:
    with pytest.raises(SignatureError, match="durable must be True, False, None"):
        sign(cb_parent, durable=3)


def test_a_keyboard_interrupt_in_a_callback_releases_it_for_a_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    monkeypatch.setenv("CB_INTERRUPT", "1")
    with pytest.raises(KeyboardInterrupt):
        sign(cb_parent, durable=box, success_callbacks=[jobs.interrupted, cb_first])(i=1)
    # The interrupted callback and the one never started both wait for a resume.
    assert [(row.state, row.owner) for row in box.pending()] == [("pending", None), ("pending", None)]
    monkeypatch.setenv("CB_INTERRUPT", "0")
    assert box.resume().delivered == 2  # both run on resume (the interrupted one again)
    assert box.pending() == []


# -- TTL and sweeping ---------------------------------------------------------------


def test_expired_waiting_and_done_rows_are_swept(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    box = Outbox(tmp_path / "ob.sqlite3", active_ttl=0.2, done_ttl=0.2)
    sign(cb_parent, durable=box, success_callbacks=[cb_first])(i=1)
    assert box.count_done() == 1
    waiting = box.record("parent", "success", [("cb_first", b"never-loaded")])
    assert len(box.pending()) == 1 and waiting[0].key.endswith(":success:0")
    time.sleep(0.3)
    with caplog.at_level(logging.WARNING, "daglite.callbacks"):
        assert box.sweep() == 2
    assert "1 recorded callback(s) expired unrun" in caplog.text
    assert box.pending() == [] and box.count_done() == 0


def test_ttl_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    box = Outbox("x.sqlite3")
    assert (box.active_ttl, box.done_ttl) == (7 * 24 * 3600.0, 3 * 3600.0)
    monkeypatch.setenv("DAGLITE_CALLBACKS_ACTIVE_TTL", "60")
    monkeypatch.setenv("DAGLITE_CALLBACKS_DONE_TTL", "5")
    assert (Outbox("x.sqlite3").active_ttl, Outbox("x.sqlite3").done_ttl) == (60.0, 5.0)
    monkeypatch.setenv("DAGLITE_CALLBACKS_DONE_TTL", "soon")
    with pytest.raises(Exception, match="DAGLITE_CALLBACKS_DONE_TTL must be a number"):
        Outbox("x.sqlite3")


def test_outbox_pickles_by_path(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "ob.sqlite3", active_ttl=10, done_ttl=2)
    copy = pickle.loads(pickle.dumps(box))
    assert (copy.path, copy.active_ttl, copy.done_ttl) == (box.path, 10.0, 2.0)


# -- resuming -----------------------------------------------------------------------


def test_rows_held_by_a_live_process_are_not_resumed(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    box.record("cb_parent", "success", [("cb_first", b"payload")])  # claimed by this (live) process
    report = Outbox(box.path).resume()
    assert (report.held, report.delivered) == (1, 0)
    [row] = box.pending()
    assert row.state == "running" and row.owner_alive


def test_tampered_payload_is_rejected_never_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "ob.sqlite3"
    result = _job("run", str(path), str(tmp_path / "log.txt"), "3", "cb_first@1")
    assert result.returncode == -9, result.stderr
    Outbox(path).flush()  # the dead process's journal into the database
    db = sqlite3.connect(path)
    db.execute("UPDATE signatures SET payload = ? WHERE position = 0 AND state != 'done'", (b"\x00" * 40,))
    db.commit()
    db.close()
    report = Outbox(path).resume()
    assert report.unloadable == 1 and report.delivered == 2
    states = Counter(row.state for row in Outbox(path).pending())
    assert states == {"rejected": 1}



# -- crashes: SIGKILL between the task's end and its callbacks' end --------------------


def _keys(tmp_path: Path) -> Counter[str]:
    return Counter(line[2] for line in _log_lines(tmp_path))


def test_killed_before_any_callback_then_resumed_runs_each_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "ob.sqlite3"
    result = _job("run", str(path), str(tmp_path / "log.txt"), "5", "cb_first@2")
    assert result.returncode == -9, result.stderr
    assert sorted(tag for tag, value, _ in _log_lines(tmp_path) if value == "2") == []
    waiting = Outbox(path).pending()
    assert [(row.callback, row.state, row.owner_alive) for row in waiting] == [
        ("cb_first", "running", False), ("cb_second", "running", False), ("cb_third", "running", False),
    ]
    report = Outbox(path).resume()
    assert (report.delivered, report.failed, report.held) == (3, 0, 0)
    keys = _keys(tmp_path)
    assert len(keys) == 3 * 3 and set(keys.values()) == {1}  # calls 0, 1, 2: every callback exactly once
    # Resumed in their order, with the recorded result.
    assert [tuple(line[:2]) for line in _log_lines(tmp_path)[-3:]] == [("first", "2"), ("second", "2"), ("third", "2")]
    assert Outbox(path).pending() == []
    assert Outbox(path).resume().delivered == 0  # nothing twice


@pytest.mark.parametrize("resumers", [1, 2])
def test_killed_between_callbacks_then_resumed_at_once_by_several_processes(tmp_path: Path, resumers: int) -> None:
    path = tmp_path / "ob.sqlite3"
    log = str(tmp_path / "log.txt")
    result = _job("run", str(path), log, "10", "cb_second@7")
    assert result.returncode == -9, result.stderr
    before = _keys(tmp_path)
    assert len(before) == 7 * 3 + 1  # calls 0..6 and the first callback of call 7
    go = tmp_path / "go"
    env = {"CB_SLOW": "0.05"}  # callbacks take a while: the resumers overlap
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", "import callbacks_durable_jobs as j; j.main()", "resume", str(path), log, str(go)],
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]), **env},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(resumers)
    ]
    time.sleep(0.5)  # let both import and wait at the start line
    go.touch()
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    keys = _keys(tmp_path)
    assert set(keys.values()) == {1}, [k for k, n in keys.items() if n > 1]  # none twice
    assert len(keys) == 8 * 3  # none lost: calls 0..7, three callbacks each
    assert sum(r["delivered"] for r in reports) == 2
    assert Outbox(path).pending() == []


def test_a_callback_killed_while_running_runs_again_at_least_once(tmp_path: Path) -> None:
    """The documented window: a callback killed mid-run did not finish, so it runs again."""
    path = tmp_path / "ob.sqlite3"
    # Killed in the second callback's hook, *after* the first had logged: simulate a
    # callback killed after its effect but before its done mark by deleting the mark.
    result = _job("run", str(path), str(tmp_path / "log.txt"), "1", "cb_second@0")
    assert result.returncode == -9
    Outbox(path).flush()  # the dead process's journal into the database
    db = sqlite3.connect(path)
    db.execute("UPDATE signatures SET state = 'running', finished = NULL WHERE position = 0")
    db.commit()
    db.close()
    assert Outbox(path).resume().delivered == 3
    keys = _keys(tmp_path)
    first = next(key for key in keys if key.endswith(":success:0"))
    assert keys[first] == 2  # at least once: the same key, so the callback can dedupe on delivery_key()
    assert sorted(keys.values()) == [1, 1, 2]


# -- the command line and resuming at session start ------------------------------------


def _cli(*args: str) -> tuple[int, str]:
    import argparse
    import contextlib
    import io

    parser = argparse.ArgumentParser(prog="daglite")
    callbacks_plugin.provide_cli_commands(subparsers=parser.add_subparsers())
    parsed = parser.parse_args(list(args))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = parsed.handler(parsed)
    return code, out.getvalue()


def test_cli_pending_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ob.sqlite3"
    assert _cli("callbacks", "pending", "--outbox", str(path)) == (0, f"No callbacks outbox at {path}: nothing recorded.\n")
    assert _job("run", str(path), str(tmp_path / "log.txt"), "2", "cb_third@1").returncode == -9
    code, text = _cli("callbacks", "pending", "--outbox", str(path))
    assert code == 0
    assert "1 callback(s) wait:" in text and "'cb_third' of 'cb_parent': claimable (its process is gone)" in text
    code, text = _cli("callbacks", "pending", "--outbox", str(path), "--json")
    [row] = json.loads(text)
    assert row["callback"] == "cb_third" and row["key"].endswith(":success:2")
    monkeypatch.setenv("DAGLITE_CALLBACKS_OUTBOX", str(path))
    code, text = _cli("callbacks", "resume")
    assert (code, text) == (0, "Delivered 1 callback(s) (0 failed); 0 held by live processes; 0 could not be loaded; 0 expired row(s) swept.\n")
    assert _cli("callbacks", "pending")[1].endswith("No callback waits.\n")
    assert _cli("callbacks", "sweep")[0] == 0


def test_cli_through_the_daglite_command(tmp_path: Path) -> None:
    path = tmp_path / "ob.sqlite3"
    assert _job("run", str(path), str(tmp_path / "log.txt"), "1", "cb_first@0").returncode == -9
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    daglite = [sys.executable, "-m", "daglite_core.cli"]
    listed = subprocess.run([*daglite, "callbacks", "pending", "--outbox", str(path)], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    assert "3 callback(s) wait" in listed.stdout
    resumed = subprocess.run([*daglite, "callbacks", "resume", "--outbox", str(path)], env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert "Delivered 3 callback(s)" in resumed.stdout
    assert len(_keys(tmp_path)) == 3


def test_resume_at_session_start_is_off_by_default_and_on_with_the_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ob.sqlite3"
    assert _job("run", str(path), str(tmp_path / "log.txt"), "1", "cb_first@0").returncode == -9
    monkeypatch.setenv("DAGLITE_CALLBACKS_OUTBOX", str(path))
    with session(plugins=[callbacks_plugin]):
        pass
    assert len(Outbox(path).pending()) == 3  # off by default
    monkeypatch.setenv("DAGLITE_CALLBACKS_RESUME", "1")
    callbacks_plugin._resumed.clear()
    with session(plugins=[callbacks_plugin]):
        assert Outbox(path).pending() == []  # delivered before the session's own work
    assert len(_keys(tmp_path)) == 3
