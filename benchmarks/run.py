"""The benchmark suite's entry point: ``python benchmarks/run.py [--smoke]``.

One command measures DESIGN §8 against the peers installed in the same environment,
prints medians and same-run ratios, and writes ``benchmarks/RESULTS.md``.

How: the suite makes ``--runs`` runs one after the other; a run starts one fresh
worker process per area (it builds the area, samples its groups interleaved and
dumps raw per-round samples as JSON), so no area's setup runs during another's
samples; this process merges them (median of run medians; ratios computed inside
each round, medianed per run, then across runs), profiles the rows that miss their
target in one more worker, prints the tables and writes the report.

``--smoke`` runs every case, every peer and the profile path with very few
iterations (well under a minute) so that CI keeps the suite from rotting; it writes
its report to a temporary file unless ``--output`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # imported from elsewhere (tests, -m)
    sys.path.insert(0, str(HERE))

import report  # noqa: E402
from targets import OTHER_PEERS, PEERS, TARGETS  # noqa: E402

AREAS = (  # one line each
    "calls",
    "sessions",
    "cache",
    "fanout",
    "fanout_dask",
    "streaming",
    "startup",
    "callbacks",
    "bigvalues",
    "progress",
)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- worker side -----------------------------------------------------------------


def _build(areas: list[str], smoke: bool, stack: contextlib.ExitStack, tmp: Path) -> list[Any]:
    import importlib

    from env import Env

    env = Env(smoke=smoke, tmp=tmp, stack=stack, log=_log)
    groups = []
    for area in areas:
        _log(f"building {area}")
        groups += importlib.import_module(area).build(env)
    return groups


def worker(args: argparse.Namespace) -> None:
    """Sample every group (or profile ``--profile`` keys) and dump JSON to ``args.worker``."""
    from _harness import gc_collected, sample_group

    areas = args.only or list(AREAS)
    with tempfile.TemporaryDirectory(prefix="daglite-bench-") as tmp, contextlib.ExitStack() as stack:
        cwd = os.getcwd()
        os.chdir(tmp)  # daglite 0.9 creates ./.cache and writes datasets under the cwd
        stack.callback(os.chdir, cwd)
        groups = _build(areas, args.smoke, stack, Path(tmp))
        out: dict[str, Any] = {"samples": {}, "labels": {}, "skips": {}, "profiles": {}, "groups": {}}
        for group in groups:
            out["labels"].update(group.labels)
            out["groups"].update({key: group.name for key in group.labels})
            for case in group.cases:
                out["labels"][case.key] = case.label
                out["groups"][case.key] = group.name
                if case.skip is not None:
                    out["skips"][case.key] = case.skip
        if args.profile:
            wanted = set(args.profile.split(","))
            for group in groups:
                for case in group.cases:
                    # A derived figure ("startup.core_net") is profiled through its case.
                    keys = [k for k in (case.key, case.key + "_net") if k in wanted]
                    if keys and case.skip is None:
                        text = report.profile(case, args.smoke)
                        out["profiles"].update(dict.fromkeys(keys, text))
        else:
            for group in groups:
                with gc_collected():
                    out["samples"].update(sample_group(group, _log))
    Path(args.worker).write_text(json.dumps(out))


def _spawn_worker(smoke: bool, only: list[str] | None, profile: str | None = None) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        path = handle.name
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", path]
    if smoke:
        cmd.append("--smoke")
    if only:
        cmd += ["--only", *only]
    if profile:
        cmd += ["--profile", profile]
    try:
        subprocess.run(cmd, check=True)
        return json.loads(Path(path).read_text())  # type: ignore[no-any-return]
    finally:
        os.unlink(path)


def _spawn_run(smoke: bool, areas: list[str]) -> dict[str, Any]:
    """One run: every area built and sampled in a fresh worker process of its own.

    Decision: an area's setup (daglite 0.9's polling threads, a Dask
    ``LocalCluster`` and its client's event loop, process pools, open stores)
    stays alive while its cases are sampled; in one shared worker it also ran
    during every later area's samples and slowed them unevenly (a case that
    allocates or switches threads more suffers more). Cases are still compared
    with their baselines inside one area's rounds.
    """
    merged: dict[str, Any] = {"samples": {}, "labels": {}, "skips": {}, "profiles": {}, "groups": {}}
    for area in areas:
        out = _spawn_worker(smoke, [area])
        for part, values in out.items():
            merged[part].update(values)
    return merged


# -- parent side -------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="every case, very few iterations (CI)")
    parser.add_argument("--runs", type=int, default=None, help="fresh worker processes to merge (default 3; smoke 1)")
    parser.add_argument("--output", type=Path, default=None, help="report path (default benchmarks/RESULTS.md; smoke: a temp file)")
    parser.add_argument("--only", nargs="*", choices=AREAS, help="only these areas (development)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    runs = args.runs or (1 if args.smoke else 3)
    started = time.time()
    raw = []
    for index in range(runs):
        _log(f"run {index + 1}/{runs}")
        raw.append(_spawn_run(args.smoke, args.only or list(AREAS)))
    merged = report.merge(raw)
    unmet = [row.num for row in TARGETS if report.row_status(merged, row).startswith("not met")]
    if args.smoke:  # smoke mode exercises every profile path (cProfile, -X importtime) every time
        unmet += [row.num for row in TARGETS if row.num not in unmet and row.num in merged["runs"]]
    if unmet:
        _log(f"profiling {', '.join(unmet)}")
        merged["profiles"] = _spawn_worker(args.smoke, report.areas_for(unmet), ",".join(unmet))["profiles"]
    merged["meta"] = report.machine(runs, args.smoke, time.time() - started)
    text = report.render(merged, TARGETS, PEERS, OTHER_PEERS)
    print(report.console(merged, TARGETS, PEERS, OTHER_PEERS))
    output = args.output
    if output is None:
        output = Path(tempfile.gettempdir()) / "daglite-bench-smoke.md" if args.smoke else HERE / "RESULTS.md"
    output.write_text(text)
    _log(f"wrote {output} ({time.time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
