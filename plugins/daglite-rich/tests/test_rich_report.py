"""The picture of a run: the HTML page opened in a real headless browser, and the SVG.

The browser test needs Debian's ``chromium`` (``apt-get install -y chromium``). Without
it the test is skipped, except under CI (``CI`` set), where it fails and says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from daglite_core import MapError, map_tasks, session, task
from daglite_rich import RichProgress
from daglite_rich._report import write_report


@task
def fetch(x: int) -> int:
    if x == 2:
        raise KeyError("missing <page> & co")
    return x


@task
def parse(n: int) -> int:
    return n


@task
def pipeline() -> int:
    try:
        map_tasks(fetch, range(5))
    except MapError:
        pass
    return parse(1) + parse(2)


def make_report(path: Path, backend: str = "thread") -> RichProgress:
    progress = RichProgress(mode="off", report=path)
    with session(plugins=[progress], backend=backend):
        pipeline()
    return progress


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    message = "chromium is not installed (Debian: apt-get install -y chromium); the report's browser test needs it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM after the page's own script ran, as the browser serialises it."""
    argv = [
        browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
        f"--user-data-dir={profile}", "--dump-dom", page.as_uri(),
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class Nodes(HTMLParser):
    """Collects the rendered tree: each ``div.node`` with its data attributes and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[dict[str, Any]] = []
        self.stack: list[tuple[str, dict[str, Any] | None]] = []
        self.body: dict[str, str | None] = {}
        self.texts: list[str] = []
        self.spans: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        node = None
        classes = (a.get("class") or "").split()
        if tag == "div" and "node" in classes:
            node = {"attrs": a, "text": [], "classes": classes}
            self.nodes.append(node)
        if tag == "div" and "span" in classes:
            self.spans.extend(c for c in classes if c != "span")
        self.stack.append((tag, node))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            open_tag, _ = self.stack.pop()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        for _, node in self.stack:
            if node is not None:
                node["text"].append(data)


def test_html_report_is_drawn_by_its_script_in_a_browser(tmp_path: Path) -> None:
    page = tmp_path / "run.html"
    make_report(page)
    source = page.read_text()
    assert 'class="node' not in source  # the nodes are not in the file: the script draws them
    dom = dump_dom(page, tmp_path / "profile")
    parsed = Nodes()
    parsed.feed(dom)
    assert parsed.body.get("data-rendered") == "true", dom[:2000]
    by_name = {n["attrs"]["data-name"]: n for n in parsed.nodes}
    assert set(by_name) == {"pipeline", "fetch", "parse"}
    fetch_node = by_name["fetch"]
    assert fetch_node["attrs"]["data-kind"] == "map"
    assert (fetch_node["attrs"]["data-total"], fetch_node["attrs"]["data-failed"]) == ("5", "1")
    fetch_text = " ".join(fetch_node["text"])
    assert "5 items" in fetch_text and "4 ok" in fetch_text and "1 failed" in fetch_text
    assert "fetch[2]: KeyError: 'missing <page> & co'" in fetch_text  # escaped data, drawn as text
    assert "has-failures" in fetch_node["classes"]
    assert "2 calls" in " ".join(by_name["parse"]["text"])
    assert "1 call" in " ".join(by_name["pipeline"]["text"])
    # The timeline: one bar per watched call (1 pipeline + 2 parse), the failure in red; fetch's
    # four successes ran on the core's fast path: counted, drawn as the map's hatched span.
    assert sorted(parsed.spans) == sorted(["ok"] * 3 + ["failed"])
    assert fetch_node["attrs"]["data-counted"] == "4"
    assert dom.count('class="env counted"') == 2  # the legend's and fetch's (pipeline and parse were watched)
    meta = "".join(parsed.texts)
    assert "8 calls" in meta and "1 failed" in meta


def test_html_report_is_self_contained(tmp_path: Path) -> None:
    page = tmp_path / "run.html"
    make_report(page)
    source = page.read_text()
    assert "default-src 'none'" in source  # the page may load nothing from anywhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", source)
    assert "@import" not in source and "url(" not in source
    # The data block cannot end the script early, whatever the task names and messages hold.
    data = source.split('id="daglite-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data


def test_svg_report_draws_the_tree_and_the_failure(tmp_path: Path) -> None:
    picture = tmp_path / "run.svg"
    make_report(picture, backend="inline")
    root = ET.parse(picture).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join("".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "pipeline" in text and "fetch [map] 5 items · 4 ok · 1 failed" in text and "parse 2 calls" in text
    assert "fetch[2]: KeyError: 'missing <page> & co'" in text
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("fill") == "#d62728"]
    assert len(bars) == 1  # the failed call's bar


def test_report_write_is_atomic_and_errors_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match="must end in .html or .svg"):
        write_report(tmp_path / "x.txt", {"children": [], "duration": 0.0, "started": 0.0})
    missing = tmp_path / "no" / "such" / "dir" / "run.html"
    progress = RichProgress(mode="off", report=missing)
    with session(plugins=[progress]):
        assert parse(3) == 3  # the run is not affected
    assert "could not write the report" in caplog.text and str(missing) in caplog.text
    assert list(tmp_path.iterdir()) == []
