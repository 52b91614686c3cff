"""The outbox's per-process journals: torn and planted lines, folding, compaction."""

from __future__ import annotations

import binascii
import logging
import os
import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daglite_callbacks import Outbox, _journal, _outbox, sign
from daglite_core import signing

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
    _outbox._compact_all(os.getpid())
    signing.reset()


def _job(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", "import callbacks_durable_jobs as j; j.main()", *args],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def _raw_rows(path: Path) -> list[tuple[str, str]]:
    """The database as it is, without folding any journal."""
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT key, state FROM signatures ORDER BY created, position").fetchall()
    finally:
        db.close()


def _journals(path: Path) -> list[Path]:
    return [p for p, _ in _journal.journals(_journal.journal_dir(path))]


def _written(journal: Path) -> bytes:
    """The lines a journal holds (its file is preallocated: zeros follow the last line)."""
    return journal.read_bytes().rstrip(b"\0")


def _log_keys(tmp_path: Path) -> list[str]:
    log = tmp_path / "log.txt"
    return [line.split()[2] for line in log.read_text().splitlines()] if log.exists() else []


def test_records_stay_in_the_journal_until_folded(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    sign(cb_parent, durable=box, success_callbacks=[cb_first, cb_first])(i=1)
    assert _raw_rows(box.path) == []  # the hot path wrote no transaction
    [journal] = _journals(box.path)
    assert oct(journal.stat().st_mode & 0o777) == oct(0o600)
    assert oct(journal.parent.stat().st_mode & 0o777) == oct(0o700)
    assert box.count_done() == 2  # folded on read
    assert [state for _, state in _raw_rows(box.path)] == ["done", "done"]
    assert box.flush() == 0  # folded once: nothing new


def test_close_compacts_this_process_journal(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    sig = sign(cb_parent, durable=box, success_callbacks=[cb_first])
    sig(i=1)
    box.close()
    assert _journals(box.path) == []
    assert [state for _, state in _raw_rows(box.path)] == ["done"]
    sig(i=2)  # a new journal file after compaction
    assert len(_journals(box.path)) == 1
    assert box.count_done() == 2


def test_clean_exit_compacts_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "ob.sqlite3"
    result = _job("run", str(path), str(tmp_path / "log.txt"), "3", "never@0")
    assert result.returncode == 0, result.stderr
    assert _journals(path) == []  # folded and deleted at interpreter exit
    assert [state for _, state in _raw_rows(path)] == ["done"] * 9


def test_a_torn_last_line_after_sigkill_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ob.sqlite3"
    result = _job("run", str(path), str(tmp_path / "log.txt"), "3", "cb_first@2")
    assert result.returncode == -9, result.stderr
    [journal] = _journals(path)
    data = _written(journal)
    last = data.rstrip(b"\n").rfind(b"\n") + 1  # the record of call 2, written just before the kill
    journal.write_bytes(data[: last + (len(data) - last) // 2])  # as if killed inside that write
    with caplog.at_level(logging.WARNING, "daglite.callbacks"):
        assert Outbox(path).pending() == []  # the torn record never happened: its callbacks never started
    assert "rejected" not in caplog.text  # an unfinished line is not an attack
    assert Outbox(path).count_done() == 6  # calls 0 and 1 are intact
    assert Outbox(path).resume().delivered == 0
    assert _journals(path) == []  # the dead process's journal is gone once folded


class _Bomb:
    def __reduce__(self) -> tuple[object, ...]:
        return (open, (os.environ["CB_BOMB"], "w"))


def test_planted_and_tampered_lines_are_rejected_never_unpickled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ob.sqlite3"
    bomb = tmp_path / "bomb"
    monkeypatch.setenv("CB_BOMB", str(bomb))
    result = _job("run", str(path), str(tmp_path / "log.txt"), "2", "cb_first@1")
    assert result.returncode == -9, result.stderr
    [journal] = _journals(path)
    owner = _journal.journal_owner(journal)
    assert owner is not None
    lines = _written(journal).splitlines(keepends=True)
    # Planted: a pickle that would create a file when loaded, with a made-up tag.
    planted = pickle.dumps(("R", owner, "f" * 32, "success", "x", 0.0, 9e9, (("x", -1, pickle.dumps(_Bomb())),), None))
    lines.append(binascii.b2a_base64(b"\0" * 32 + planted))
    # Tampered: the last record (call 1) with one byte changed.
    blob = bytearray(binascii.a2b_base64(lines[-2]))
    blob[-5] ^= 1
    lines[-2] = binascii.b2a_base64(bytes(blob))
    journal.write_bytes(b"".join(lines))
    with caplog.at_level(logging.WARNING, "daglite.callbacks"):
        assert Outbox(path).pending() == []
    assert "2 line(s) rejected" in caplog.text
    assert not bomb.exists()
    assert Outbox(path).count_done() == 3  # call 0: its events verify


def test_a_line_copied_from_another_process_journal_is_rejected(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ob.sqlite3"
    assert _job("run", str(path), str(tmp_path / "log.txt"), "1", "cb_first@0").returncode == -9
    [journal] = _journals(path)
    other = journal.with_name("6f746865727c317c327c33." + "00000000.journal")  # owner "other|1|2|3"
    other.write_bytes(journal.read_bytes())
    journal.unlink()
    with caplog.at_level(logging.WARNING, "daglite.callbacks"):
        assert Outbox(path).pending() == []
    assert "written by another process" in caplog.text


def test_two_resumers_fold_one_dead_journal_and_run_each_callback_once(tmp_path: Path) -> None:
    path = tmp_path / "ob.sqlite3"
    log = str(tmp_path / "log.txt")
    assert _job("run", str(path), log, "6", "cb_second@5").returncode == -9
    assert _raw_rows(path) == []  # everything is in the dead process's journal
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]), "CB_SLOW": "0.05"}
    procs = [
        subprocess.Popen([sys.executable, "-c", "import callbacks_durable_jobs as j; j.main()", "resume", str(path), log, str(go)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    import time

    time.sleep(0.5)
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    keys = _log_keys(tmp_path)
    assert len(keys) == 6 * 3 and len(set(keys)) == 18  # none lost, none twice
    assert Outbox(path).pending() == []
    assert [p for p in _journals(path) if "cb" in p.name] == []


def test_pending_shows_records_of_a_live_process_as_in_flight(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    box.record("cb_parent", "success", [("cb_first", b"payload")])  # in this (live) process's journal
    [row] = Outbox(box.path).pending()
    assert (row.state, row.owner_alive) == ("running", True)
    from test_callbacks_durable import _cli

    code, text = _cli("callbacks", "pending", "--outbox", str(box.path))
    assert code == 0 and "in flight (held by a live process)" in text


def test_synchronous_full_syncs_every_journal_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(fd), real(fd))[1])
    sign(cb_parent, durable=Outbox(tmp_path / "full.sqlite3", synchronous="full"), success_callbacks=[cb_first])(i=1)
    assert len(synced) == 2  # the record, the done mark
    synced.clear()
    sign(cb_parent, durable=Outbox(tmp_path / "normal.sqlite3"), success_callbacks=[cb_first])(i=1)
    assert synced == []


def test_journal_is_compacted_past_its_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGLITE_CALLBACKS_JOURNAL_MAX", "2000")
    box = Outbox(tmp_path / "ob.sqlite3")
    sig = sign(cb_parent, durable=box, success_callbacks=[cb_first])
    for i in range(20):
        sig(i=i)
    assert len(_raw_rows(box.path)) >= 10  # compacted while running, without anyone reading
    assert box.count_done() == 20


def test_cached_node_pickle_follows_changes() -> None:
    cb = sign(jobs.step)
    first, cached = cb.pickle_state()
    assert cached and cb.pickle_state()[0] is first
    cb.on_success(sign(jobs.step))
    second, _ = cb.pickle_state()
    assert second is not first and pickle.loads(second).success_callbacks
    bound = sign(jobs.take, daglite_results=None)
    bound.kwargs.update(daglite_results=[1])  # a mutable value: pickled afresh every time
    assert bound.pickle_state()[1] is False


# -- the memory-mapped journal --------------------------------------------------------


def test_a_journal_is_preallocated_and_mapped_not_written_per_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    sig = sign(cb_parent, durable=box, success_callbacks=[cb_first])
    sig(i=0)  # opens the journal
    writes: list[int] = []
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: (writes.append(fd), real(fd, data))[1])
    for i in range(1, 20):
        sig(i=i)
    assert writes == [] or all(fd != box._writer.fd for fd in writes)  # type: ignore[union-attr]
    [journal] = _journals(box.path)
    assert journal.stat().st_size == _journal.CHUNK  # preallocated, zeros after the last line
    assert _written(journal).count(b"\n") == 1 + 20 * 2  # the node, then a record and a done mark per call
    assert box.count_done() == 20


def test_journals_grow_by_chunks_and_fold_across_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_journal, "CHUNK", 4096)
    box = Outbox(tmp_path / "ob.sqlite3")
    sig = sign(cb_parent, durable=box, success_callbacks=[cb_first])
    for i in range(40):  # ~14 KB of lines: three grows
        sig(i=i)
    [journal] = _journals(box.path)
    assert journal.stat().st_size % 4096 == 0 and journal.stat().st_size >= 3 * 4096
    assert box.count_done() == 40


def test_a_line_not_fully_visible_yet_is_left_for_later_not_rejected(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    box.record("cb_parent", "success", [("cb_first", b"payload")])
    [journal] = _journals(box.path)
    data = journal.read_bytes()
    end = _written(journal).rfind(b"\n", 0, len(_written(journal)) - 1) + 1  # start of the last line
    middle = end + 20
    # As another process may see a line being stored: its newline there, a byte in it still 0.
    journal.write_bytes(data[:middle] + b"\0" + data[middle + 1 :])
    owner = _journal.journal_owner(journal)
    assert owner is not None
    with caplog.at_level(logging.WARNING, "daglite.callbacks"):
        events, stop, rejected = _journal.read_journal(journal, 0, owner)
    assert (events, rejected, stop) == ([], [], end)  # nothing taken, nothing rejected: read again later
    journal.write_bytes(data)  # the store completed
    events, stop, rejected = _journal.read_journal(journal, stop, owner)
    assert rejected == [] and [event[0] for event in events] == ["R"]


def test_done_marks_are_text_and_bind_only_their_journal_owner(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ob.sqlite3"
    assert _job("run", str(path), str(tmp_path / "log.txt"), "1", "cb_second@0").returncode == -9
    [journal] = _journals(path)
    lines = _written(journal).splitlines(keepends=True)
    marks = [line for line in lines if line.startswith(b"~")]
    assert len(marks) == 1 and marks[0].split()[0].endswith(b":success:0")  # cb_first finished, then the kill
    # A forged mark for cb_second (position 1), and a malformed one, in the dead process's own journal.
    forged = marks[0].replace(b":success:0", b":success:1")
    other = journal.with_name("6f746865727c317c327c33." + "00000000.journal")  # owner "other|1|2|3"
    other.write_bytes(forged)  # the same mark in another process's journal binds nothing
    journal.write_bytes(_written(journal) + b"~not a mark\n")
    with caplog.at_level(logging.WARNING, "daglite.callbacks"):
        waiting = Outbox(path).pending()
    assert "1 line(s) rejected" in caplog.text  # the malformed one
    assert "no longer held by its process" in caplog.text  # the copied one changed nothing
    assert sorted(row.callback for row in waiting) == ["cb_second", "cb_third"]


def test_a_forked_child_writes_its_own_journal(tmp_path: Path) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    box = Outbox(tmp_path / "ob.sqlite3")
    sig = sign(cb_parent, durable=box, success_callbacks=[cb_first])
    sig(i=0)  # the parent's journal is open and mapped
    pid = os.fork()
    if pid == 0:  # the child: its events must go to a journal of its own, never into the parent's mapping
        try:
            for i in range(1, 4):
                sig(i=i)
            code = 0
        except BaseException:  # noqa: BLE001 - reported through the exit code
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    sig(i=9)  # the parent goes on where it was
    assert len(_journals(box.path)) == 2
    assert box.count_done() == 5


@pytest.mark.parametrize("value", [7, "seven", None, 7.5, b"7", [7], {"seven": 7}, (7,)])
def test_a_recorded_input_folds_into_the_payload_a_resume_loads(tmp_path: Path, value: object) -> None:
    box = Outbox(tmp_path / "ob.sqlite3")
    cb = sign(cb_first)
    from daglite_callbacks._durable import record
    from daglite_callbacks._errors import TaskOutcome

    [delivery] = record("cb_parent", box, "success", [cb], TaskOutcome(ok=True, value=value, error=None, kwargs={}), None)
    assert delivery is not None
    box.flush()
    db = sqlite3.connect(box.path)
    try:
        [(blob,)] = db.execute("SELECT payload FROM signatures").fetchall()
    finally:
        db.close()
    node, inputs = _outbox.load_payload(bytes(blob))
    assert node.name == cb.name
    assert inputs == ("success", value)  # atoms travel inside the record, the rest as their pickle: the same payload
