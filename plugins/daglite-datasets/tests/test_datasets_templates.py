"""``@task(dataset=...)`` templates end to end, and the dataset hooks with the task's metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daglite_core import load_dataset, map_tasks, save_dataset, session, task
from daglite_core.testing import RecordingPlugin
from daglite_datasets import FileDatasetStore

DATASET_HOOKS = ["before_dataset_save", "after_dataset_save", "before_dataset_load", "after_dataset_load"]


@task(dataset="results/{region}/{map_index}.json")
def summarise(region: str, value: int) -> dict[str, int | str]:
    return {"region": region, "value": value * 10}


@pytest.mark.parametrize("backend", ["inline", "thread", "process"])
def test_map_fills_the_template_from_arguments_and_map_index(root: Path, backend: str) -> None:
    regions = ["eu", "us", "eu", "apac"]
    recorder = RecordingPlugin(hooks=DATASET_HOOKS)
    with session(dataset_store=root, plugins=[recorder]):
        results = map_tasks(summarise, regions, [1, 2, 3, 4], backend=backend)
    assert results == [{"region": r, "value": v * 10} for r, v in zip(regions, [1, 2, 3, 4], strict=True)]
    store = FileDatasetStore(root)
    assert store.list() == ["results/apac/3.json", "results/eu/0.json", "results/eu/2.json", "results/us/1.json"]
    assert json.loads((root / "results/eu/2.json").read_text()) == {"region": "eu", "value": 30}
    saves = recorder.of("after_dataset_save")
    assert sorted(c["key"] for c in saves) == store.list()
    for call in saves:
        metadata = call["metadata"]
        assert call["format"] == "json"
        assert call["key"] == f"results/{metadata.inputs['region']}/{metadata.map_index}.json"
        assert call["value"] == results[metadata.map_index]
        assert metadata.backend == backend
    assert len(recorder.of("before_dataset_save")) == 4


def test_hooks_fire_in_order_with_the_running_tasks_metadata(root: Path) -> None:
    @task(dataset="out/{name}.txt")
    def produce(name: str) -> str:
        return f"hello {name}"

    @task
    def consume(name: str) -> str:
        return str(load_dataset("out/{name}.txt", str))

    recorder = RecordingPlugin(hooks=[*DATASET_HOOKS, "before_node_execute", "after_node_execute"])
    with session(dataset_store=root, plugins=[recorder]):
        produce("ann")
        assert consume("ann") == "hello ann"
        save_dataset("loose.json", [1], options={"indent": 1})
    assert recorder.names() == [
        "before_node_execute", "before_dataset_save", "after_dataset_save", "after_node_execute",
        "before_node_execute", "before_dataset_load", "after_dataset_load", "after_node_execute",
        "before_dataset_save", "after_dataset_save",
    ]
    save, load = recorder.of("after_dataset_save")[0], recorder.of("after_dataset_load")[0]
    assert (save["key"], save["format"], save["value"], save["metadata"].name) == ("out/ann.txt", "text", "hello ann", "produce")
    assert (load["key"], load["return_type"], load["result"], load["metadata"].name) == ("out/ann.txt", str, "hello ann", "consume")
    assert load["duration"] >= 0
    loose = recorder.of("before_dataset_save")[1]
    assert (loose["metadata"], loose["options"]) == (None, {"indent": 1})


def test_task_dataset_format_overrides_the_extension(root: Path) -> None:
    @task(dataset="raw/{n}.dat", dataset_format="json")
    def produce(n: int) -> list[int]:
        return list(range(n))

    with session(dataset_store=root):
        produce(3)
        assert load_dataset("raw/3.dat", format="json") == [0, 1, 2]


def test_a_failed_save_fails_the_task_once(root: Path) -> None:
    calls: list[int] = []

    @task(dataset="bad/{n}.json", retries=2)
    def produce(n: int) -> set[int]:
        calls.append(n)
        return {n}

    with session(dataset_store=root), pytest.raises(Exception, match="'bad/1.json' as 'json'"):
        produce(1)
    assert calls == [1]  # the body is not re-run for a save failure
    assert FileDatasetStore(root).list() == []


def test_unknown_extension_in_a_template_fails_before_the_body(root: Path) -> None:
    ran: list[int] = []

    @task(dataset="out/{n}.yaml")
    def produce(n: int) -> int:
        ran.append(n)
        return n

    with session(dataset_store=root), pytest.raises(ValueError, match="'.yaml' is not registered"):
        produce(1)
    assert ran == []
