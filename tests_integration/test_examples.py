"""Every example, run as a user runs it: a subprocess in a fresh directory.

Needs the core and daglite-diskcache, daglite-datasets and daglite-callbacks
installed (tox env ``integration``). Results are read back from stdout (the
``repr`` that ``daglite run`` prints) and from the files the examples write.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DAGLITE = Path(sys.executable).with_name("daglite")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of every run: no DAGLITE_* overrides, a private signing key."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DAGLITE_") and k != "PYTHONPATH"}
    clean["DAGLITE_SIGNING_KEY_FILE"] = str(tmp_path / "keys" / "signing.key")
    clean["DAGLITE_STRICT_HOOKS"] = "1"  # a raising hook in an example's plugin fails the test
    return clean


def run(cwd: Path, env: dict[str, str], *command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def script(cwd: Path, env: dict[str, str], name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python examples/NAME.py ARGS`` in ``cwd``."""
    return run(cwd, env, sys.executable, EXAMPLES / name, *args)


def result(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return ast.literal_eval(proc.stdout.strip())


# -- the sales pipeline ----------------------------------------------------------


def test_sales_pipeline_runs_then_is_served_from_the_cache(tmp_path: Path, env: dict[str, str]) -> None:
    first = script(tmp_path, env, "sales_pipeline.py")
    summary = result(first)
    assert summary["regions"] == 4 and summary["orders"] > 0 and summary["dropped_rows"] > 0
    assert "cache hits: 0 of 14 tasks" in first.stderr
    assert "[notify] OK:" in first.stderr

    second = run(tmp_path, env, DAGLITE, "run", EXAMPLES / "sales_pipeline.py:sales_pipeline", "--regions", "4")
    assert result(second) == summary
    assert "cache hits: 13 of 14 tasks" in second.stderr  # only the notification ran again

    data = tmp_path / "daglite-demo" / "data"
    assert sorted(p.name for p in (data / "raw").iterdir()) == ["east.csv", "north.csv", "south.csv", "west.csv"]
    assert sorted(p.name for p in (data / "clean").iterdir()) == ["east.csv", "north.csv", "south.csv", "west.csv"]
    saved = json.loads((data / "summary.json").read_text())
    assert saved == {k: summary[k] for k in ("regions", "orders", "revenue", "best_region")}
    header = (data / "clean" / "north.csv").read_text().splitlines()[0]
    assert header == "order_id,day,region,product,units,unit_price,revenue"
    log = (tmp_path / "daglite-demo" / "notifications.log").read_text().splitlines()
    assert len(log) == 2 and all(line.startswith("OK: ") for line in log)


def test_sales_pipeline_as_documented_from_the_repository_root(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "demo"
    proc = run(ROOT, env, DAGLITE, "run", "examples/sales_pipeline.py:sales_pipeline", "--regions", "2", "--out", out)
    assert result(proc)["regions"] == 2
    assert (out / "data" / "summary.json").is_file()


def test_cache_stats_after_the_pipeline(tmp_path: Path, env: dict[str, str]) -> None:
    result(script(tmp_path, env, "sales_pipeline.py", "--regions", "2", "--rows", "50"))
    stats = run(tmp_path, env, DAGLITE, "cache", "stats", "--dir", "daglite-demo/cache")
    assert stats.returncode == 0, stats.stderr
    assert "Entries:         7 " in stats.stdout  # 2 generate + 2 clean + 2 summarize + 1 aggregate
    assert "sales_pipeline.generate_sales" in stats.stdout


def test_sales_pipeline_same_result_on_every_backend(tmp_path: Path, env: dict[str, str]) -> None:
    results = {
        backend: result(script(tmp_path, env, "sales_pipeline.py", "--regions", "3", "--rows", "80",
                               "--backend", backend, "--out", f"out-{backend}"))
        for backend in ("inline", "thread", "process")
    }
    inline = {k: v for k, v in results["inline"].items() if k != "out"}
    for backend in ("thread", "process"):
        assert {k: v for k, v in results[backend].items() if k != "out"} == inline, backend


def test_sales_pipeline_failure_fires_the_error_callback_and_exits_1(tmp_path: Path, env: dict[str, str]) -> None:
    proc = script(tmp_path, env, "sales_pipeline.py", "--rows", "40", "--min-revenue", "1e12", "--out", "alert")
    assert proc.returncode == 1
    assert "[notify] FAILED (4 regions): Task 'aggregate' failed: ValueError: total revenue" in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("daglite: error:")]
    assert len(errors) == 1 and "Task 'aggregate' failed" in errors[0]
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "alert" / "notifications.log").read_text().startswith("FAILED (4 regions)")
    assert not (tmp_path / "alert" / "data" / "summary.json").exists()


def test_sales_pipeline_help_and_bad_option(tmp_path: Path, env: dict[str, str]) -> None:
    helped = script(tmp_path, env, "sales_pipeline.py", "--help")
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())  # argparse wraps lines to the terminal width
    assert "Generate, clean and summarize sales per region" in text
    assert "--regions INT how many region partitions to generate (1-8) (default: 4)" in text
    bad = script(tmp_path, env, "sales_pipeline.py", "--regions", "four")
    assert bad.returncode == 2
    assert "argument --regions: invalid int value: 'four'" in bad.stderr


# -- the focused examples --------------------------------------------------------------


def test_cache_example(tmp_path: Path, env: dict[str, str]) -> None:
    assert result(script(tmp_path, env, "cache_example.py")) == [
        "count-words: computed", "count-words: cache hit", "count-letters: computed", "count-words: computed",
    ]
    # A second run finds both entries (the refresh rewrote "words").
    assert result(script(tmp_path, env, "cache_example.py")) == [
        "count-words: cache hit", "count-words: cache hit", "count-letters: cache hit", "count-words: computed",
    ]


def test_datasets_example(tmp_path: Path, env: dict[str, str]) -> None:
    proc = script(tmp_path, env, "datasets_example.py")
    out = result(proc)
    assert out["saved"] == ["tables/cities.csv", "notes/readme.txt", "raw/blob.bin", "state/reports"]
    assert out["csv_rows"] == 3
    assert out["lisbon"] == {"city": "Lisbon", "population": 545000, "large": True}
    store = tmp_path / "daglite-demo" / "datasets-example"
    assert (store / "raw" / "blob.bin").read_bytes() == bytes(range(8))
    assert sorted(p.name for p in (store / "cities").iterdir()) == ["Braga.json", "Lisbon.json", "Porto.json"]
    assert "refused: Dataset key '../outside.txt' is rejected" in proc.stderr
    assert not (tmp_path / "daglite-demo" / "outside.txt").exists()


def test_callbacks_example_success_and_failure(tmp_path: Path, env: dict[str, str]) -> None:
    ok = script(tmp_path, env, "callbacks_example.py")
    out = result(ok)
    assert out["mean"] == round(sum(out["prices"]) / len(out["prices"]), 2)
    assert list(out["swarm"]) == ["ACME", "GLOBEX", "INITECH"]
    assert "[ops] success: " in ok.stderr and "[batch] all 3 items succeeded" in ok.stderr
    failed = script(tmp_path, env, "callbacks_example.py", "--fail")
    assert failed.returncode == 1
    assert "[pager] failure for ACME: Task 'fetch_prices' failed: ConnectionError" in failed.stderr
    assert "[ops]" not in failed.stderr


@pytest.mark.parametrize("backend", ["inline", "thread", "process"])
def test_map_example(tmp_path: Path, env: dict[str, str], backend: str) -> None:
    proc = script(tmp_path, env, "map_example.py", "--n", "4", "--backend", backend)
    assert result(proc) == {"powers": [0, 1, 4, 9], "failed_indexes": [1], "lengths": [24, 25, 26, 27]}
    assert f"map power (power-{{map_index}}): 4 items on {backend}" in proc.stderr
    assert "map safe_inverse: done, 1 of 4 failed" in proc.stderr


# -- the CLI with every plugin installed ------------------------------------------------


def test_plugins_and_version_list_every_installed_plugin(tmp_path: Path, env: dict[str, str]) -> None:
    listed = json.loads(run(tmp_path, env, DAGLITE, "plugins", "--json").stdout)
    status = {p["name"]: (p["distribution"], p["status"]) for p in listed}
    for name in ("diskcache", "datasets", "callbacks"):
        assert status[name] == (f"daglite-{name}", "enabled")
    disabled = json.loads(
        run(tmp_path, {**env, "DAGLITE_DISABLE_PLUGINS": "datasets"}, DAGLITE, "plugins", "--json").stdout
    )
    assert next(p for p in disabled if p["name"] == "datasets")["status"] == "disabled"
    version = run(tmp_path, env, DAGLITE, "--version").stdout
    for dist in ("daglite-callbacks-", "daglite-datasets-", "daglite-diskcache-"):
        assert dist in version.splitlines()[1]


def test_list_and_describe_the_examples(tmp_path: Path, env: dict[str, str]) -> None:
    listing = run(tmp_path, env, DAGLITE, "list", EXAMPLES / "sales_pipeline.py")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split()[0] == f"{EXAMPLES / 'sales_pipeline.py'}:sales_pipeline"
    described = run(tmp_path, env, DAGLITE, "describe", f"{EXAMPLES / 'sales_pipeline.py'}:sales_pipeline")
    assert "--min-revenue" in described.stdout and "default 4" in described.stdout


def test_readme_quick_start_commands_are_the_wired_ones() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme.startswith("## Quick start")
    assert (
        "python3 -m venv .venv && .venv/bin/pip install -q -e . -e plugins/daglite-diskcache "
        "-e plugins/daglite-datasets -e plugins/daglite-callbacks && .venv/bin/python examples/sales_pipeline.py"
    ) in readme
    assert "python3 -m venv .venv && .venv/bin/python -m pip install -q --upgrade pip tox && .venv/bin/tox" in readme
    for example in sorted(EXAMPLES.glob("*.py")):
        assert f"examples/{example.name}" in readme, f"README does not mention {example.name}"
