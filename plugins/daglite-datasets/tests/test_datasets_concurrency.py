"""Concurrent writers of one key (threads and processes): every read sees one whole version."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

from daglite_datasets import FileDatasetStore

SIZE = 256 * 1024
ROUNDS = 15


def _value(writer: int, round_: int) -> bytes:
    tag = f"{writer:03d}:{round_:03d}|".encode()
    return tag + bytes([(writer * 31 + round_) % 251]) * SIZE


def _check(store: FileDatasetStore, key: str) -> None:
    data = store.load(key)
    tag, body = data.split(b"|", 1)
    writer, round_ = (int(part) for part in tag.split(b":"))
    assert data == _value(writer, round_), f"torn or interleaved read of {key}"


def _write(root: str, writer: int, keys: list[str]) -> None:
    store = FileDatasetStore(root)
    for round_ in range(ROUNDS):
        for key in keys:
            store.save(key, _value(writer, round_))


def _write_pickle(root: str, writer: int) -> None:
    store = FileDatasetStore(root)
    for round_ in range(ROUNDS):
        store.save("shared/v.pkl", (writer, round_, _value(writer, round_)))


def test_threads_and_processes_write_one_key(store: FileDatasetStore, root: Path) -> None:
    keys = ["shared/v.bin", "shared/w.bin"]
    store.save(keys[0], _value(0, 0))
    store.save(keys[1], _value(0, 0))
    stop = threading.Event()
    reads: list[int] = []
    errors: list[BaseException] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                for key in keys:
                    _check(store, key)
                reads.append(1)
            except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
                errors.append(exc)
                return

    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write, args=(str(root), 100 + i, keys)) for i in range(3)]
    threads = [threading.Thread(target=_write, args=(str(root), i, keys)) for i in range(1, 4)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for worker in [*readers, *processes, *threads]:
        worker.start()
    for worker in [*threads, *processes]:
        worker.join()
    stop.set()
    for worker in readers:
        worker.join()
    assert errors == []
    assert all(p.exitcode == 0 for p in processes)
    assert reads  # the readers did read while writers wrote
    for key in keys:
        _check(store, key)
    assert store.list() == sorted(keys)  # no temp file left behind


def test_signed_pickles_from_several_processes(store: FileDatasetStore, root: Path) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_pickle, args=(str(root), i)) for i in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    assert all(p.exitcode == 0 for p in processes)
    writer, round_, data = store.load("shared/v.pkl")
    assert data == _value(writer, round_)
    assert store.list() == ["shared/v.pkl"]
