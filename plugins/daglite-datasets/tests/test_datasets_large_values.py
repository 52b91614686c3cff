"""Pickle datasets of large values: signed while written, verified in a pass of its own, one copy in memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from daglite_datasets import DatasetIntegrityError, FileDatasetStore

np = pytest.importorskip("numpy")

MB = 2**20


def peak_of(action: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_large_pickle_dataset_is_saved_and_loaded_without_whole_copies(root: Path) -> None:
    store = FileDatasetStore(root)
    value = np.random.default_rng(0).random(20 * MB // 8)
    store.save("warm.pkl", 1)
    _, save_peak = peak_of(lambda: store.save("big.pkl", value))
    loaded, load_peak = peak_of(lambda: store.load("big.pkl"))
    np.testing.assert_array_equal(loaded, value)
    assert save_peak < 0.3 * value.nbytes, f"save copied the value: {save_peak / MB:.1f} MiB"
    assert load_peak < 1.3 * value.nbytes, f"load held {load_peak / value.nbytes:.2f}x the value"


@pytest.mark.parametrize("mode", [0o600, 0o666])
def test_tampered_large_pickle_is_refused_whatever_the_file_mode(root: Path, mode: int) -> None:
    store = FileDatasetStore(root)
    store.save("big.pkl", np.arange(MB))
    path = root / "big.pkl"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    path.chmod(mode)  # 0o666: others could write into it, so it is verified from one in-memory copy
    with pytest.raises(DatasetIntegrityError, match="signature mismatch"):
        store.load("big.pkl")


def test_file_writable_by_others_still_loads_after_verification(root: Path) -> None:
    store = FileDatasetStore(root)
    store.save("v.pkl", {"a": list(range(1000))})
    (root / "v.pkl").chmod(0o666)
    assert store.load("v.pkl") == {"a": list(range(1000))}


def test_copied_large_pickle_names_the_key_it_was_signed_for(root: Path) -> None:
    store = FileDatasetStore(root)
    store.save("a.pkl", np.ones(MB))
    store.save("b.pkl", np.zeros(MB))
    (root / "b.pkl").write_bytes((root / "a.pkl").read_bytes())
    (root / "b.pkl").chmod(0o600)
    with pytest.raises(DatasetIntegrityError, match="signed for the dataset key 'a.pkl'"):
        store.load("b.pkl")
