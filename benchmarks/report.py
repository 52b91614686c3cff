"""Merging worker runs, judging targets, profiling, and the console and Markdown reports."""

from __future__ import annotations

import cProfile
import datetime
import io
import math
import os
import platform
import pstats
import re
from typing import Any

from _harness import Case, median, round_ratios
from targets import INFO, SKIPPED_ROWS, WHY, Row

PACKAGES = (
    "daglite-core", "daglite-diskcache", "daglite-datasets", "pluggy", "attrs",
    "daglite", "diskcache", "joblib", "numpy", "xxhash", "cloudpickle",
    "daglite-dask", "distributed",
)
AREA_OF = {  # case key prefix -> area (one line each)
    "calls": "calls",
    "session": "sessions",
    "cache": "cache",
    "keys": "cache",
    "fanout": "fanout",
    "dask": "fanout_dask",
    "streaming": "streaming",
    "stragglers": "streaming",
    "startup": "startup",
    "callbacks": "callbacks",
    "bigcache": "bigvalues",
    "bigdatasets": "bigvalues",
    "progress": "progress",
}


def areas_for(keys: list[str]) -> list[str]:
    """The areas that build the cases ``keys``."""
    return sorted({AREA_OF[key.split(".")[0]] for key in keys})


# -- merging ------------------------------------------------------------------------


def merge(raw: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-run medians and per-run same-round ratio samples of every case."""
    runs: dict[str, list[list[float]]] = {}
    labels: dict[str, str] = {}
    skips: dict[str, str] = {}
    groups: dict[str, str] = {}
    for run in raw:
        labels.update(run["labels"])
        skips.update(run["skips"])
        groups.update(run.get("groups", {}))
        for key, values in run["samples"].items():
            runs.setdefault(key, []).append(values)
    return {"runs": runs, "labels": labels, "skips": skips, "profiles": {}, "groups": groups}


def value(merged: dict[str, Any], key: str) -> tuple[float, float, float] | None:
    """Median of run medians and its spread (min–max of run medians; of rounds for one run)."""
    runs = merged["runs"].get(key)
    if not runs:
        return None
    medians = [median(r) for r in runs]
    spread = medians if len(medians) > 1 else runs[0]
    return median(medians), min(spread), max(spread)


def ratio(merged: dict[str, Any], num: str, den: str) -> tuple[float, float, float] | None:
    """The same-run ratio: per round, medianed per run, then across runs (with spread).

    Only for cases of one group (sampled in the same rounds); ``None`` otherwise.
    """
    groups = merged.get("groups", {})
    if groups.get(num) != groups.get(den):
        return None
    a, b = merged["runs"].get(num), merged["runs"].get(den)
    if not a or not b:
        return None
    per_run = [round_ratios(x, y) for x, y in zip(a, b, strict=False)]
    medians = [median(r) for r in per_run if r]
    if not medians:
        return None
    spread = medians if len(medians) > 1 else per_run[0]
    return median(medians), min(spread), max(spread)


def skip_of(merged: dict[str, Any], *keys: str | None) -> str | None:
    """The first skip reason among ``keys`` (or a generic one for a key never built)."""
    for key in keys:
        if key is None:
            continue
        if key in merged["skips"]:
            return str(merged["skips"][key])
        if key not in merged["runs"]:
            return f"skipped: {key} not measured (area not run)"
    return None


def row_status(merged: dict[str, Any], row: Row) -> str:
    """``met``, ``not met`` or a ``skipped: ...`` reason."""
    reason = skip_of(merged, row.num, row.den)
    if reason is not None:
        return reason
    measured = ratio(merged, row.num, row.den) if row.den else value(merged, row.num)
    assert measured is not None
    if row.every_run and row.den:
        held, runs = runs_held(merged, row)
        return "met" if held == runs else f"not met (held in {held} of {runs} runs)"
    return "met" if measured[0] <= row.limit else "not met"


def runs_held(merged: dict[str, Any], row: Row) -> tuple[int, int]:
    """In how many process runs the row's same-run ratio (that run's median) met its limit."""
    a, b = merged["runs"].get(row.num, []), merged["runs"].get(row.den or "", [])
    medians = [median(r) for r in (round_ratios(x, y) for x, y in zip(a, b, strict=False)) if r]
    return sum(m <= row.limit for m in medians), len(medians)


def explain(merged: dict[str, Any], text: str) -> str:
    """``text`` with ``{key}`` replaced by medians and ``{a/b}`` by same-run ratios."""

    def fill(match: re.Match[str]) -> str:
        field = match.group(1)
        if "/" in field:
            num, den = field.split("/")
            measured = ratio(merged, num, den)
            return f"{measured[0]:.2f} ×" if measured else "–"
        measured = value(merged, field)
        return fmt_time(measured[0]) if measured else "–"

    return re.sub(r"\{([a-z0-9_.]+(?:/[a-z0-9_.]+)?)\}", fill, text)


# -- profiling --------------------------------------------------------------------------


def profile(case: Case, smoke: bool) -> str:
    """Where ``case``'s time goes: cProfile by own time, or the case's own explanation."""
    if case.explain is not None:
        return case.explain()
    if case.profile is None:
        return "(no profile available for this case)"
    # Whole batches and big values: one operation is already long (a 10,000-item map,
    # a 100 MB read); everything else is profiled over many calls.
    whole = ("fanout.", "streaming.", "stragglers.", "progress.", "bigcache.", "bigdatasets.", "dask.")
    calls = 1 if case.key.startswith(whole) else (200 if smoke else 20_000)
    for _ in range(min(calls, 100)):
        case.profile()  # warm
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        case.profile()
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).strip_dirs().sort_stats("tottime")
    stats.print_stats(14)
    text = stream.getvalue()
    text = text[text.find("ncalls") :] if "ncalls" in text else text
    header = f"cProfile of {calls} operation(s), sorted by own time (profiling inflates small functions):\n"
    return header + "\n".join(line.rstrip() for line in text.splitlines() if line.strip())


# -- machine ----------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def machine(runs: int, smoke: bool, seconds: float) -> dict[str, Any]:
    """CPU, cores, memory, Python and package versions, date."""
    from peers import version

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 0
    return {
        "cpu": _cpu_model(),
        "nproc": cores,
        "memory": _memory(),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: version(name) or "not installed" for name in PACKAGES},
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "runs": runs,
        "smoke": smoke,
        "seconds": seconds,
        "hashseed": os.environ.get("PYTHONHASHSEED", "unset"),
    }


# -- formatting ----------------------------------------------------------------------------


def fmt_time(seconds: float) -> str:
    """Seconds in µs (below 10 ms) or ms."""
    if math.isnan(seconds):
        return "–"
    if seconds < 0.01:
        us = seconds * 1e6
        return f"{us:.3f} µs" if us < 1 else f"{us:.2f} µs" if us < 100 else f"{us:,.0f} µs"
    return f"{seconds * 1e3:,.1f} ms"


def _fmt_measured(measured: tuple[float, float, float], as_time: bool) -> tuple[str, str]:
    mid, low, high = measured
    if as_time:
        return fmt_time(mid), f"{fmt_time(low)} – {fmt_time(high)}"
    return f"{mid:.2f} ×", f"{low:.2f} – {high:.2f}"


def _target_rows(merged: dict[str, Any], targets: list[Row]) -> list[list[str]]:
    rows = []
    for row in targets:
        status = row_status(merged, row)
        num = value(merged, row.num) if not status.startswith("skipped") else None
        time_text = fmt_time(num[0]) if num else "–"
        if status.startswith("skipped"):
            rows.append([row.quantity, "–", "–", "–", _target_text(row), status])
            continue
        if row.den:
            measured = ratio(merged, row.num, row.den)
            assert measured is not None
            mid, spread = _fmt_measured(measured, False)
            rows.append([row.quantity, time_text, f"{mid} {row.den_label}", spread, _target_text(row), status])
        else:
            assert num is not None
            mid, spread = _fmt_measured(num, True)
            rows.append([row.quantity, mid, f"{num[0] / row.limit:.2f} × limit", spread, _target_text(row), status])
    return rows


def _target_text(row: Row) -> str:
    if row.den:
        return f"≤ {row.limit:g} × {row.den_label}" + (" in every run" if row.every_run else "")
    return f"≤ {fmt_time(row.limit)}"


def _info_rows(merged: dict[str, Any]) -> list[list[str]]:
    rows = []
    for row in INFO:
        reason = skip_of(merged, row.num, row.den)
        if reason is not None:
            rows.append([row.quantity, "–", "–", reason])
            continue
        num = value(merged, row.num)
        assert num is not None
        if row.den:
            measured = ratio(merged, row.num, row.den)
            assert measured is not None
            rows.append([row.quantity, fmt_time(num[0]), f"{measured[0]:.2f} × {row.den_label}", f"{measured[1]:.2f} – {measured[2]:.2f}"])
        else:
            rate = f"{row.nbytes / num[0] / 1e9:.1f} GB/s" if row.nbytes else "–"
            rows.append([row.quantity, fmt_time(num[0]), rate, f"{fmt_time(num[1])} – {fmt_time(num[2])}"])
    return rows


def _peer_rows(merged: dict[str, Any], pairs: list[tuple[str, str, str]]) -> list[list[str]]:
    rows = []
    for quantity, ours, theirs in pairs:
        reason = skip_of(merged, ours, theirs)
        a, b = value(merged, ours), value(merged, theirs)
        if reason is not None:
            rows.append([quantity, fmt_time(a[0]) if a else "–", "–", "–", reason])
            continue
        assert a is not None and b is not None
        measured = ratio(merged, ours, theirs)
        assert measured is not None
        speedup = 1 / measured[0] if measured[0] > 0 else float("inf")
        rows.append([quantity, fmt_time(a[0]), fmt_time(b[0]), f"{measured[0]:.3f} ×", f"{speedup:,.1f} × faster" if speedup >= 1 else f"{1 / speedup:.1f} × slower"])
    return rows


def _all_cases(merged: dict[str, Any]) -> list[list[str]]:
    rows = []
    for key in sorted(set(merged["labels"]) | set(merged["runs"])):
        label = merged["labels"].get(key, key)
        if key in merged["skips"]:
            rows.append([key, label, "–", "–", merged["skips"][key]])
            continue
        measured = value(merged, key)
        if measured is None:
            continue
        rows.append([key, label, fmt_time(measured[0]), f"{fmt_time(measured[1])} – {fmt_time(measured[2])}", ""])
    return rows


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _plain_table(header: list[str], rows: list[list[str]]) -> str:
    clean = [[re.sub(r"`", "", c) for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in clean) for i in range(len(header))]
    out = []
    for index, row in enumerate(clean):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


TARGET_HEADER = ["quantity", "median", "same-run ratio", "ratio spread", "target", "status"]
INFO_HEADER = ["quantity", "median", "ratio", "spread"]
PEER_HEADER = ["quantity", "core", "peer", "core / peer (same run)", ""]
CASE_HEADER = ["case", "what", "median", "spread", "note"]


def console(merged: dict[str, Any], targets: list[Row], peers: list[tuple[str, str, str]], others: list[tuple[str, str, str]]) -> str:
    """The tables as plain text for the terminal."""
    parts = [
        "Targets (same-run ratios)", _plain_table(TARGET_HEADER, _target_rows(merged, targets)), "",
        "The core against daglite 0.9", _plain_table(PEER_HEADER, _peer_rows(merged, peers)), "",
        "The core against other peers", _plain_table(PEER_HEADER, _peer_rows(merged, others)), "",
        "Other figures", _plain_table(INFO_HEADER, _info_rows(merged)), "",
        "Every case", _plain_table(CASE_HEADER, _all_cases(merged)),
    ]
    for quantity, reason in SKIPPED_ROWS:
        parts.append(f"\n{quantity}: {reason}")
    return "\n".join(parts)


def render(merged: dict[str, Any], targets: list[Row], peers: list[tuple[str, str, str]], others: list[tuple[str, str, str]]) -> str:
    """RESULTS.md: machine, versions, every row, and profiles of the rows not met."""
    meta = merged["meta"]
    packages = ", ".join(f"{name} {ver}" for name, ver in meta["packages"].items())
    spread_note = (
        f"min–max of the {meta['runs']} process runs' medians"
        if meta["runs"] > 1 else "min–max over the rounds of the single run"
    )
    lines = [
        "# Benchmark results",
        "",
        "Written by `python benchmarks/run.py`" + (" --smoke (few iterations: figures are not meaningful)" if meta["smoke"] else "") + "; do not edit by hand.",
        "",
        f"- Date: {meta['date']}; {meta['runs']} process run(s); {meta['seconds']:.0f} s; PYTHONHASHSEED={meta['hashseed']}",
        f"- Machine: {meta['cpu']}, nproc {meta['nproc']}, {meta['memory']} RAM, {meta['os']}",
        f"- Python: {meta['python']}",
        f"- Packages: {packages}",
        f"- Method: interleaved timeit samples (GC on, ~25 ms each), medians; ratios computed inside each round, "
        f"medianed per run, then the median of the runs. Spread: {spread_note}.",
        "",
        "## Targets",
        "",
        _markdown_table(TARGET_HEADER, _target_rows(merged, targets)),
        "",
    ]
    for quantity, reason in SKIPPED_ROWS:
        lines.append(f"- {quantity}: {reason}.")
    lines += [
        "",
        "## The core against daglite 0.9 (same run)",
        "",
        _markdown_table(PEER_HEADER, _peer_rows(merged, peers)),
        "",
        "## The core against other peers (same run)",
        "",
        _markdown_table(PEER_HEADER, _peer_rows(merged, others)),
        "",
        "## Other figures",
        "",
        _markdown_table(INFO_HEADER, _info_rows(merged)),
        "",
        "## Every case",
        "",
        _markdown_table(CASE_HEADER, _all_cases(merged)),
        "",
    ]
    unmet = [row for row in targets if row_status(merged, row).startswith("not met")]
    profiles = merged.get("profiles", {})
    if unmet or profiles:
        lines += ["## Where the time goes", ""]
    for row in unmet:
        lines += [f"### Not met: {row.quantity}", ""]
        if row.num in WHY:
            lines += [explain(merged, WHY[row.num]), ""]
        if row.num in profiles:
            lines += ["```", profiles[row.num], "```", ""]
    for key, text in profiles.items():
        if any(row.num == key for row in unmet):
            continue
        lines += [f"### Profile of `{key}` (smoke mode exercises the profile path)", "", "```", text, "```", ""]
    return "\n".join(lines)
