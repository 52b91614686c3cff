"""``cache=True`` through the core: every way of choosing the store, TTL, hits fire hooks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from daglite_core import session, task
from daglite_core.testing import RecordingPlugin
from daglite_diskcache import DiskCacheStore


def counting_task(**options: Any) -> tuple[Any, list[int]]:
    calls: list[int] = []

    @task(**options)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    return double, calls


def entries(directory: Path) -> int:
    store = DiskCacheStore(directory)
    return len(list(store.keys()))


def test_session_store_hit_skips_the_body_and_fires_on_cache_hit(cache_dir: Path) -> None:
    double, calls = counting_task(cache=True)
    recorder = RecordingPlugin(hooks=["on_cache_hit", "before_node_execute"])
    with session(cache_store=str(cache_dir), plugins=[recorder]):
        assert double(3) == 6
        assert double(3) == 6
        assert double(4) == 8
    assert calls == [3, 4]
    hits = recorder.of("on_cache_hit")
    assert len(hits) == 1
    assert hits[0]["value"] == 6 and hits[0]["key"].startswith(f"{__name__}.")
    assert entries(cache_dir) == 2
    # A new session (and a new store object) on the same directory still hits.
    with session(cache_store=cache_dir):
        assert double(3) == 6
    assert calls == [3, 4]


def test_default_location_is_dot_daglite_cache_in_the_working_directory() -> None:
    double, calls = counting_task(cache=True)
    with session():
        double(1)
        double(1)
    assert calls == [1]
    assert (Path.cwd() / ".daglite" / "cache" / "cache.db").exists()


def test_outside_any_session_the_default_store_is_used() -> None:
    double, calls = counting_task(cache=True)
    assert double(5) == 10
    assert double(5) == 10
    assert calls == [5]


def test_environment_variable_selects_the_directory(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGLITE_CACHE_STORE", str(cache_dir))
    double, calls = counting_task(cache=True)
    with session():
        double(2)
        double(2)
    assert calls == [2]
    assert entries(cache_dir) == 1


@pytest.mark.parametrize("option", ["cache_store", "cache"])
def test_task_level_directory_overrides_the_session(tmp_path: Path, option: str) -> None:
    own = tmp_path / "own"
    kwargs: dict[str, Any] = {"cache_store": str(own), "cache": True} if option == "cache_store" else {"cache": str(own)}
    double, calls = counting_task(**kwargs)
    with session(cache_store=str(tmp_path / "session")):
        double(7)
        double(7)
    assert calls == [7]
    assert entries(own) == 1
    assert not (tmp_path / "session").exists()


def test_store_instance_with_its_own_limits(tmp_path: Path) -> None:
    store = DiskCacheStore(tmp_path / "inst", size_limit=10**8)
    double, calls = counting_task(cache=store)
    double(1)
    double(1)
    assert calls == [1]
    assert store.get(next(store.keys())) == 2


def test_cache_ttl_from_the_task(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    double, calls = counting_task(cache=True, cache_ttl=60)
    with session(cache_store=cache_dir):
        double(1)
        double(1)
        later = time.time() + 61
        monkeypatch.setattr(time, "time", lambda: later)
        double(1)
    assert calls == [1, 1]


def make_scaler(k: int) -> Any:
    @task(cache=True)
    def scale(x: int) -> int:
        return x * k

    return scale


def test_closures_do_not_share_cached_results(cache_dir: Path) -> None:
    with session(cache_store=cache_dir):
        assert make_scaler(2)(10) == 20
        assert make_scaler(3)(10) == 30
        assert make_scaler(2)(10) == 20


def test_equal_arguments_built_differently_hit(cache_dir: Path) -> None:
    calls: list[Any] = []

    @task(cache=True)
    def describe(config: dict[str, Any], tags: set[Any]) -> int:
        calls.append(config)
        return len(config) + len(tags)

    with session(cache_store=cache_dir):
        describe({"a": 1, "b": {1, "x"}}, {1, "two", None})
        describe({"b": {"x", 1}, "a": 1}, {None, "two", 1})
    assert len(calls) == 1
