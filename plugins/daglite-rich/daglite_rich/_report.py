"""The picture of a run: the folded tree of task calls with a timeline, as HTML or SVG.

The HTML page is one self-contained file: the run's data as JSON in the page, and
a small script (ours, inline) that draws the tree when the page opens: no network
resource (a Content-Security-Policy forbids any), so it can be mailed or attached
to a ticket. Nodes fold and unfold; each row shows the task's counts and a bar
per call on a common time axis (a map's items as one row: the span they covered,
their calls, failures in red; the items of a map the core only counted, those on
its fast path, have no bar of their own: the row's span covers them). The SVG is the same tree as a static picture,
drawn here in Python, for places that show images but not pages.

Both are written atomically (a temporary file in the same directory, then
``os.replace``), so a crash never leaves half a report.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

from ._text import seconds


def write_report(path: str | os.PathLike[str], tree: dict[str, Any], title: str = "daglite run") -> None:
    """Write ``tree`` (``RunModel.tree()``) to ``path``: HTML for ``.html``/``.htm``, else SVG.

    :raises ValueError: for a path with another suffix (naming the path).
    :raises OSError: when the file cannot be written.
    """
    target = os.fspath(path)
    suffix = os.path.splitext(target)[1].lower()
    if suffix in (".html", ".htm"):
        text = html_report(tree, title)
    elif suffix == ".svg":
        text = svg_report(tree, title)
    else:
        msg = f"report path {target!r} must end in .html or .svg"
        raise ValueError(msg)
    directory = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".daglite-report-", suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _started(tree: dict[str, Any]) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(tree.get("started", 0.0)))


def _json_for_script(data: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def html_report(tree: dict[str, Any], title: str = "daglite run") -> str:
    """The self-contained HTML page for ``tree``."""
    data = {**tree, "title": title, "started": _started(tree)}
    return (
        _HTML.replace("@TITLE@", escape(title))
        .replace("@DATA@", _json_for_script(data))
    )


_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="daglite-rich">
<title>@TITLE@</title>
<style>
:root { --ok: #2e8b57; --failed: #d62728; --cached: #1f77b4; --env: #d9e3f0; --text: #1d1f21; --dim: #6b7280; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--text); margin: 1.5rem; }
h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
#meta { color: var(--dim); margin: 0 0 1rem; }
.legend span { display: inline-block; margin-right: 1rem; color: var(--dim); }
.legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: -1px; border-radius: 2px; }
.grid { display: grid; grid-template-columns: minmax(16rem, 38%) 1fr; column-gap: 1rem; align-items: center; }
.axis { position: relative; height: 1.2rem; border-bottom: 1px solid #ccc; color: var(--dim); font-size: 12px; }
.axis span { position: absolute; transform: translateX(-50%); white-space: nowrap; }
.node > .grid { border-bottom: 1px solid #f0f0f0; padding: 2px 0; }
.node > .grid:hover { background: #fafafa; }
.label { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.toggle { display: inline-block; width: 1rem; cursor: pointer; color: var(--dim); user-select: none; }
.name { font-weight: 600; }
.kind { font-size: 11px; color: #fff; background: #6b7280; border-radius: 3px; padding: 0 4px; margin-left: .3rem; }
.counts { color: var(--dim); margin-left: .5rem; font-size: 12px; }
.counts .bad { color: var(--failed); font-weight: 600; }
.track { position: relative; height: 14px; background: #f7f7f7; border-radius: 2px; }
.env { position: absolute; top: 0; height: 14px; background: var(--env); border-radius: 2px; min-width: 1px; }
.env.counted { background: repeating-linear-gradient(135deg, var(--env) 0 5px, #b7d3c3 5px 8px); }
.span { position: absolute; top: 2px; height: 10px; min-width: 1px; opacity: .85; }
.span.ok { background: var(--ok); } .span.failed { background: var(--failed); } .span.cached { background: var(--cached); }
.failures { margin: 2px 0 4px; padding-left: 2.5rem; color: var(--failed); font-size: 12px; font-family: ui-monospace, monospace; }
.node.collapsed > .children, .node.collapsed > .failures { display: none; }
</style>
</head>
<body>
<h1 id="title">@TITLE@</h1>
<p id="meta"></p>
<p class="legend"><span><i style="background:var(--ok)"></i>succeeded</span><span><i style="background:var(--cached)"></i>cache hit</span><span><i style="background:var(--failed)"></i>failed</span><span><i style="background:var(--env)"></i>span of a folded node</span><span><i class="env counted" style="position:static"></i>items counted, not timed one by one</span></p>
<div class="grid"><div></div><div class="axis" id="axis"></div></div>
<div id="tree" role="tree"></div>
<noscript><p>This report draws its tree with JavaScript; the data is in the page's daglite-data element.</p></noscript>
<script type="application/json" id="daglite-data">@DATA@</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("daglite-data").textContent);
  var total = Math.max(data.duration || 0, 1e-9);
  function fmt(s) {
    if (s < 0.001) return (s * 1e6).toFixed(0) + " us";
    if (s < 1) return (s * 1000).toFixed(1) + " ms";
    if (s < 60) return s.toFixed(2) + " s";
    var m = Math.floor(s / 60); return m + "m" + String(Math.round(s - 60 * m)).padStart(2, "0") + "s";
  }
  function pct(t) { return Math.max(0, Math.min(100, 100 * t / total)); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  function countsText(n) {
    var parts = [];
    if (n.kind === "map") {
      parts.push(plural(n.total, "item") + (n.maps > 1 ? " in " + n.maps + " maps" : ""));
      parts.push(n.ok + " ok");
    } else {
      parts.push(plural(n.calls, "call"));
    }
    if (n.cached) parts.push(n.cached + " cached");
    if (n.retried) parts.push(plural(n.retried, "retry").replace("retrys", "retries"));
    parts.push(fmt(n.end - n.start));
    return parts;
  }
  function draw(n, parent, depth) {
    var node = el("div", "node " + n.kind + (n.failed ? " has-failures" : ""));
    node.setAttribute("role", "treeitem");
    node.dataset.name = n.name;
    node.dataset.kind = n.kind;
    node.dataset.calls = String(n.calls);
    node.dataset.failed = String(n.failed);
    node.dataset.cached = String(n.cached);
    if (n.kind === "map") node.dataset.total = String(n.total);
    node.dataset.counted = String(n.counted || 0);
    var row = el("div", "grid");
    var label = el("div", "label");
    label.style.paddingLeft = (1.1 * depth) + "rem";
    var toggle = el("span", "toggle", n.children.length || n.failures.length ? "\\u25be" : "");
    toggle.addEventListener("click", function () {
      node.classList.toggle("collapsed");
      toggle.textContent = node.classList.contains("collapsed") ? "\\u25b8" : "\\u25be";
    });
    label.appendChild(toggle);
    label.appendChild(el("span", "name", n.name));
    if (n.kind === "map") label.appendChild(el("span", "kind", "map"));
    var counts = el("span", "counts", countsText(n).join(" \\u00b7 "));
    if (n.failed) {
      counts.appendChild(document.createTextNode(" \\u00b7 "));
      counts.appendChild(el("span", "bad", n.failed + " failed"));
    }
    label.appendChild(counts);
    label.title = n.name + ": " + label.textContent;
    var track = el("div", "track");
    var env = el("div", "env");
    env.style.left = pct(n.start) + "%";
    env.style.width = (pct(n.end) - pct(n.start)) + "%";
    env.title = n.name + ": " + fmt(n.start) + " \\u2192 " + fmt(n.end) + ", busy " + fmt(n.busy) +
      (n.counted ? "; " + plural(n.counted, "call") + " counted, not timed one by one" : "");
    if (n.counted) env.className = "env counted";
    track.appendChild(env);
    n.spans.forEach(function (s) {
      var b = el("div", "span " + s[2]);
      b.style.left = pct(s[0]) + "%";
      b.style.width = (pct(s[0] + s[1]) - pct(s[0])) + "%";
      b.title = n.name + " " + s[2] + ": started " + fmt(s[0]) + ", took " + fmt(s[1]);
      track.appendChild(b);
    });
    row.appendChild(label);
    row.appendChild(track);
    node.appendChild(row);
    if (n.failures.length) {
      var list = el("ul", "failures");
      n.failures.forEach(function (f) { list.appendChild(el("li", "failure", f[0] + ": " + f[1])); });
      if (n.failure_count > n.failures.length) list.appendChild(el("li", "failure more", "... and " + (n.failure_count - n.failures.length) + " more"));
      node.appendChild(list);
    }
    var kids = el("div", "children");
    kids.setAttribute("role", "group");
    n.children.forEach(function (c) { draw(c, kids, depth + 1); });
    node.appendChild(kids);
    parent.appendChild(node);
  }
  var calls = 0, failed = 0;
  (function count(list) { list.forEach(function (n) { calls += n.calls; failed += n.failed; count(n.children); }); })(data.children);
  document.getElementById("meta").textContent =
    "started " + data.started + " \\u00b7 " + fmt(data.duration) + " \\u00b7 " + plural(calls, "call") + (failed ? " \\u00b7 " + failed + " failed" : "");
  var axis = document.getElementById("axis");
  [0, 0.25, 0.5, 0.75, 1].forEach(function (f) {
    var t = el("span", "", fmt(f * total)); t.style.left = (100 * f) + "%";
    t.style.transform = "translateX(" + (-100 * f) + "%)"; axis.appendChild(t);
  });
  var tree = document.getElementById("tree");
  data.children.forEach(function (c) { draw(c, tree, 0); });
  if (!data.children.length) tree.appendChild(el("p", "empty", "No task ran in this session."));
  document.body.setAttribute("data-rendered", "true");
})();
</script>
</body>
</html>
"""


# -- SVG ---------------------------------------------------------------------

ROW = 22
LABEL_WIDTH = 470
TRACK_WIDTH = 520
PAD = 12
COLOURS = {"ok": "#2e8b57", "failed": "#d62728", "cached": "#1f77b4"}


def _rows(nodes: list[dict[str, Any]], depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    for node in nodes:
        yield depth, node
        yield from _rows(node["children"], depth + 1)


def _counts(node: dict[str, Any]) -> str:
    if node["kind"] == "map":
        parts = [f"{node['total']} items" + (f" in {node['maps']} maps" if node["maps"] > 1 else ""), f"{node['ok']} ok"]
    else:
        parts = [f"{node['calls']} call{'s' if node['calls'] != 1 else ''}"]
    if node["cached"]:
        parts.append(f"{node['cached']} cached")
    if node["retried"]:
        parts.append(f"{node['retried']} retried")
    if node["failed"]:
        parts.append(f"{node['failed']} failed")
    parts.append(seconds(node["end"] - node["start"]))
    return " · ".join(parts)


def svg_report(tree: dict[str, Any], title: str = "daglite run") -> str:
    """The tree and timeline as a standalone SVG picture."""
    rows = list(_rows(tree["children"]))
    failures = [(label, msg) for _, node in rows for label, msg in node["failures"]]
    total = max(float(tree["duration"]), 1e-9)
    width = PAD * 2 + LABEL_WIDTH + TRACK_WIDTH
    top = 56
    height = top + ROW * max(len(rows), 1) + (ROW * (len(failures) + 1) if failures else 0) + PAD
    x0 = PAD + LABEL_WIDTH

    def x(t: float) -> float:
        return x0 + TRACK_WIDTH * max(0.0, min(1.0, t / total))

    calls = sum(node["calls"] for _, node in rows)
    failed = sum(node["failed"] for _, node in rows)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{PAD}" y="20" font-size="16" font-weight="bold">{escape(title)}</text>',
        f'<text x="{PAD}" y="38" fill="#6b7280">started {escape(_started(tree))} · {seconds(tree["duration"])} · '
        f'{calls} call{"s" if calls != 1 else ""}{f" · {failed} failed" if failed else ""}</text>',
    ]
    for f in (0.0, 0.25, 0.5, 0.75, 1.0):
        anchor = "start" if f == 0 else "end" if f == 1 else "middle"
        out.append(f'<text x="{x(f * total):.1f}" y="{top - 4}" fill="#6b7280" font-size="10" text-anchor="{anchor}">{seconds(f * total)}</text>')
    if not rows:
        out.append(f'<text x="{PAD}" y="{top + 15}">No task ran in this session.</text>')
    for i, (depth, node) in enumerate(rows):
        y = top + i * ROW
        name = escape(node["name"])
        tag = " [map]" if node["kind"] == "map" else ""
        colour = "#d62728" if node["failed"] else "#1d1f21"
        out.append(
            f'<g class="node"><text x="{PAD + 14 * depth}" y="{y + 15}" fill="{colour}">'
            f'<tspan font-weight="bold">{name}</tspan>{escape(tag)} '
            f'<tspan fill="#6b7280">{escape(_counts(node))}</tspan></text>'
        )
        out.append(f'<rect x="{x0}" y="{y + 3}" width="{TRACK_WIDTH}" height="16" fill="#f7f7f7"/>')
        start, end = x(node["start"]), x(node["end"])
        out.append(f'<rect x="{start:.1f}" y="{y + 3}" width="{max(end - start, 1):.1f}" height="16" fill="#d9e3f0"/>')
        for s, d, status in node["spans"]:
            a, b = x(s), x(s + d)
            out.append(f'<rect x="{a:.1f}" y="{y + 5}" width="{max(b - a, 1):.1f}" height="12" fill="{COLOURS.get(status, "#888")}" opacity="0.85"/>')
        out.append("</g>")
    if failures:
        y = top + ROW * len(rows) + 16
        out.append(f'<text x="{PAD}" y="{y}" fill="#d62728" font-weight="bold">Failures</text>')
        for j, (label, msg) in enumerate(failures):
            out.append(f'<text x="{PAD + 14}" y="{y + ROW * (j + 1) - 4}" fill="#d62728" font-family="DejaVu Sans Mono, monospace">{escape(label)}: {escape(msg)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
