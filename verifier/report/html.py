"""One self-contained HTML page (no external script, style or font) from a result record.

A summary, each failure with its worst entries, a heatmap of the relative error over the
failing tensor, and, for the worst entry of the minimal case, the central-difference error
against its step (both computed by the judge and carried in the failure row): the V of truncation (h^2 J'''/6, falling with h) meeting rounding (eps J/h,
rising as h shrinks), drawn beside the implementation's own error. An inline script checks
that every table and picture rendered and marks the page data-rendered="ok" (tests read it).
"""

from __future__ import annotations

import json
import math
from html import escape

import numpy as np

from ..records import CrosscheckResult, GradResult
from . import common

REDS = ["#fff5f0", "#fcbba1", "#fb6a4a", "#cb181d", "#67000d"]  # ColorBrewer Reds, low to high
LOG_LO, LOG_HI = -16.0, 1.0  # colour scale of log10 relative error


def _e(x) -> str:
    return escape(str(x))


def _table(headers, rows, caption=None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --- pictures -----------------------------------------------------------------------------


def _colour(rel) -> str:
    """The colour of a relative error on a log scale: 1e-16 and below palest, 10 and up darkest."""
    t = 1.0 if not math.isfinite(rel) else 0.0 if rel <= 0 else (math.log10(rel) - LOG_LO) / (LOG_HI - LOG_LO)
    t = min(max(t, 0.0), 1.0) * (len(REDS) - 1)
    i = min(int(t), len(REDS) - 2)
    a, b = (np.array([int(c[k : k + 2], 16) for k in (1, 3, 5)]) for c in REDS[i : i + 2])
    r, g, bl = (a + (b - a) * (t - i)).round().astype(int)
    return f"#{r:02x}{g:02x}{bl:02x}"


def heatmap_svg(f) -> str:
    """Relative error per entry of the failing tensor: rows are units j, columns inputs i."""
    m = f.heatmap
    rows, cols = len(m), len(m[0])
    cell = max(5, min(36, 320 // max(rows, cols)))
    left, top = 34, 30
    width = max(left + cols * cell + 10, left + 11 * 14 + 70)
    height = top + rows * cell + 40
    dense = " dense" if cell < 10 else ""
    parts = [
        f'<svg class="heatmap{dense}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="relative error of layer {f.layer} d{f.param}">',
        f'<text x="{left}" y="11">input i</text><text x="2" y="{top - 4}">unit j</text>'
        if f.param == "W"
        else f'<text x="{left}" y="11">unit j</text>',
    ]  # db: one row
    if cell >= 14:  # room for the index of every row and column
        parts += [f'<text x="{left + i * cell + cell / 2 - 3:.1f}" y="{top - 4}">{i}</text>' for i in range(cols)]
        parts += [f'<text x="{left - 12}" y="{top + j * cell + cell / 2 + 4:.1f}">{j}</text>' for j in range(rows)]
    for j, row in enumerate(m):
        for i, rel in enumerate(row):
            parts.append(
                f'<rect class="cell" x="{left + i * cell}" y="{top + j * cell}" width="{cell}" '
                f'height="{cell}" fill="{_colour(rel)}"><title>[{j}, {i}] rel err '
                f"{common.num(rel)}</title></rect>"
            )
    y = top + rows * cell + 10
    for k in range(11):  # the legend: the colour scale, 1e-16 .. 10
        v = 10 ** (LOG_LO + k * (LOG_HI - LOG_LO) / 10)
        parts.append(f'<rect class="legend" x="{left + k * 14}" y="{y}" width="14" height="9" fill="{_colour(v)}"/>')
    parts.append(
        f'<text x="{left - 6}" y="{y + 22}">1e-16</text><text x="{left + 62}" y="{y + 22}">1e-8</text>'
        f'<text x="{left + 144}" y="{y + 22}">10</text>'
        f'<text x="{left + 11 * 14 + 6}" y="{y + 9}">rel err</text></svg>'
    )
    return "".join(parts)


def _blocks_note(f) -> str:
    sizes = (f.case or {}).get("sizes")
    if not sizes:
        return ""
    shape = (sizes[f.layer], sizes[f.layer - 1]) if f.param == "W" else (1, sizes[f.layer])
    r, c = -(-shape[0] // len(f.heatmap)), -(-shape[1] // len(f.heatmap[0]))
    return f" Each cell is the largest over a block of {r} x {c} entries." if r * c > 1 else ""


def curve_svg(points, own_error=None) -> str:
    """log10 |D(h) - delta rule| against log10 h, with the implementation's error as a line."""
    w, h, left, top, bottom = 460, 240, 48, 12, 36
    ys = [math.log10(max(e, 1e-17)) for _, e in points]
    if own_error and math.isfinite(own_error):
        ys.append(math.log10(max(own_error, 1e-17)))
    lo, hi = math.floor(min(ys)), math.ceil(max(ys)) + (1 if max(ys) == math.ceil(max(ys)) else 0)
    X = lambda lh: left + (lh + 13) / 12 * (w - left - 30)  # noqa: E731  h = 1e-13 .. 1e-1
    Y = lambda ly: top + (hi - ly) / (hi - lo) * (h - top - bottom)  # noqa: E731
    parts = [
        f'<svg class="fd-curve" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        f'aria-label="finite-difference error against step">',
        f'<rect class="frame" x="{left}" y="{top}" width="{w - left - 30}" height="{h - top - bottom}"/>',
    ]
    for k in range(-13, 0, 2):
        parts.append(f'<text x="{X(k) - 12:.1f}" y="{h - bottom + 14}">1e{k}</text>')
    for k in range(lo, hi + 1, max(1, (hi - lo) // 6)):
        parts.append(f'<text x="2" y="{Y(k) + 4:.1f}">1e{k}</text>')
    line = " ".join(f"{X(math.log10(s)):.1f},{Y(y):.1f}" for (s, _), y in zip(points, ys))
    parts.append(f'<polyline class="fd" points="{line}"/>')
    for (s, e), y in zip(points, ys):
        parts.append(
            f'<circle cx="{X(math.log10(s)):.1f}" cy="{Y(y):.1f}" r="3"><title>h {s:.0e}: '
            f"error {e:.3g}</title></circle>"
        )
    if len(ys) > len(points):
        yo = Y(ys[-1])
        ty = yo - 4 if yo - 4 > top + 10 else yo + 13  # the label inside the frame
        parts.append(
            f'<line class="own" x1="{left}" x2="{w - 30}" y1="{yo:.1f}" y2="{yo:.1f}"/>'
            f'<text x="{left + 4}" y="{ty:.1f}">the checked gradient\'s error</text>'
        )
    parts.append(f'<text x="{w // 2 - 20}" y="{h - 6}">step h</text></svg>')
    return "".join(parts)


# --- sections -----------------------------------------------------------------------------


def _failure(f, n) -> str:
    where = common.failure_where(f)
    label = f' <span class="diag">{_e(f.diagnosis)}</span>' if f.diagnosis else ""
    who = f"{_e(f.subject)}: " if f.subject else ""
    parts = [
        f'<section class="failure" id="failure-{n}"><h2>{who}{_e(f.kind)}: {_e(where)}{label}</h2>',
        f"<pre>{_e(f.detail)}</pre>" if "\n" in f.detail else f"<p>{_e(f.detail)}</p>",
    ]
    if f.case:
        parts.append(f'<p class="case">{_e(common.case_line(f))}</p>')
    if f.worst:
        parts.append(_table(common.WORST_HEADERS, common.worst_rows(f.worst), "worst entries"))
    figs = []
    if f.heatmap:
        figs.append(
            f"<figure>{heatmap_svg(f)}<figcaption>Relative error of every entry of layer "
            f"{f.layer} d{_e(f.param)} on this case.{_blocks_note(f)}</figcaption></figure>"
        )
    if f.step_curve:
        figs.append(
            f"<figure>{curve_svg(f.step_curve, f.abs_error)}<figcaption>Central difference at entry "
            f"{list(f.index)} against the delta rule, by step h: truncation falls as h shrinks "
            f"until rounding takes over. Dashed: the checked value's error; above the curve's "
            f"floor it cannot be finite-difference noise.</figcaption></figure>"
        )
    if figs:
        parts.append('<div class="figures">' + "".join(figs) + "</div>")
    if f.case_file:
        parts.append(f"<p>Minimal case: <code>{_e(f.case_file)}</code></p>")
    if f.replay:
        parts.append(f"<p>Replay: <code>{_e(f.replay)}</code></p>")
    return "".join(parts) + "</section>"


def _summary(title, verdict, facts, label=None) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts.items())
    return (
        f'<header class="summary {_e(verdict)}"><h1><span class="verdict">{_e(label or verdict.upper())}'
        f"</span> {title}</h1><dl>{items}</dl></header>"
    )


def _body(result) -> str:
    if isinstance(result, GradResult):
        parts = [
            _summary(f"<code>{_e(result.case)}</code>", "info", {"references": ", ".join(result.loss)}, label="GRAD")
        ]
        parts += [_table(headers, rows, title) for title, headers, rows in common.grad_tables(result)]
        return "".join(parts)
    r = result
    facts = {"cases": r.examples, "seed": r.seed, "references": ", ".join(r.references), "seconds": f"{r.seconds:.1f}"}
    if getattr(r, "skipped", 0):
        facts["skipped (NotImplementedError)"] = r.skipped
    for i, note in enumerate(getattr(r, "notes", ()), start=1):
        facts[f"note {i}"] = note
    if isinstance(r, CrosscheckResult):
        parts = [
            _summary("crosscheck", r.verdict, {**facts, "disagreements": r.disagreements}),
            _table(common.PAIR_HEADERS, common.pair_rows(r.pairs), "agreement per pair of references"),
        ]
        failures = r.failures[:10]
    else:
        seed = common.directions_seed(r)
        fast = {} if seed is None else {"mode": "fast", "directions seed": seed}
        parts = [
            _summary(
                f"<code>{_e(r.implementation)}</code>",
                r.verdict,
                {
                    **facts,
                    **fast,
                    "dtype": r.dtype or "n/a",
                    "failures": len(r.failures),
                    **({"stopped": r.stopped} if r.stopped else {}),
                    **({"note": " ".join(common.notes(r))} if common.notes(r) else {}),
                    **({"isolation": common.isolation_words(r)} if r.isolation else {}),
                },
            )
        ]
        failures = r.failures
    parts += [_failure(f, n) for n, f in enumerate(failures, start=1)]
    if getattr(r, "tensors", None):
        headers, rows = common.tensor_table_data(r.tensors)
        parts.append(_table(headers, rows, "largest errors per tensor, over every case"))
    gate = common.gate_table_data(r)
    if gate:
        g = r.extra["gate"]
        parts.append(_table(*gate, f"precision against the baseline {g['baseline']} (allowed growth {g['factor']:g}x)"))
    return "".join(parts)


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:60em;
 padding:0 1em;color:#222}
code{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f3f3f3;padding:0 .25em;
 word-break:break-all}
.summary h1{font-size:1.4em;margin:.2em 0}.verdict{color:#fff;padding:.1em .45em;border-radius:4px}
.pass .verdict{background:#1a7f37}.fail .verdict{background:#cf222e}.error .verdict{background:#9a6700}
.info .verdict{background:#0969da}
dl{display:grid;grid-template-columns:max-content 1fr;gap:0 1em;margin:.4em 0}dt{color:#666}dd{margin:0}
table{border-collapse:collapse;margin:.8em 0;font-variant-numeric:tabular-nums}
caption{text-align:left;color:#666;padding-bottom:.2em}
th,td{border:1px solid #d0d7de;padding:.2em .6em;text-align:right}th{background:#f6f8fa}
td:first-child,th:first-child{text-align:left;white-space:nowrap}
.failure{border-top:2px solid #cf222e;margin-top:1.5em}.failure h2{font-size:1.15em}
.diag{background:#fff1e5;border:1px solid #fb8f44;border-radius:4px;padding:0 .4em;font-size:.85em}
.case{color:#444}.figures{display:flex;flex-wrap:wrap;gap:1.5em}
figure{margin:0}figcaption{max-width:440px;color:#555;font-size:.9em}
svg text{font-size:11px;fill:#444}.heatmap rect.cell{stroke:#fff;stroke-width:.5}.heatmap.dense rect.cell{stroke:none}
.fd-curve .frame{fill:none;stroke:#bbb}.fd-curve polyline{fill:none;stroke:#0969da;stroke-width:2}
.fd-curve circle{fill:#0969da}.fd-curve .own{stroke:#cf222e;stroke-dasharray:5 3;stroke-width:1.5}
pre{white-space:pre-wrap;background:#f6f8fa;padding:.5em}#errors{color:#cf222e}
"""

# Runs first: any script error on the page is written into it.
ONERROR = """window.onerror=function(m,s,l){var root=document.documentElement;
root.setAttribute("data-rendered","error");var e=document.getElementById("errors");
if(!e){e=document.createElement("pre");e.id="errors";(document.body||root).appendChild(e);}
e.hidden=false;e.textContent+="script error: "+m+" (line "+l+")\\n";};"""

# Runs last: everything the renderer promised is in the DOM and has a size.
SELFCHECK = """(function(){var root=document.documentElement;
var want=JSON.parse(root.getAttribute("data-expect")),bad=[];
var found={tables:document.querySelectorAll("table").length,
 heatmaps:document.querySelectorAll("svg.heatmap").length,
 cells:document.querySelectorAll("svg.heatmap rect.cell").length,
 curves:document.querySelectorAll("svg.fd-curve polyline").length};
for(var k in want){if(found[k]!==want[k])bad.push(k+": expected "+want[k]+", found "+found[k]);}
document.querySelectorAll("svg,table").forEach(function(el){var b=el.getBoundingClientRect();
 if(!(b.width>0&&b.height>0))bad.push(el.tagName+" has no size");});
if(bad.length){var e=document.getElementById("errors");e.hidden=false;e.textContent+=bad.join("\\n");}
if(root.getAttribute("data-rendered")!=="error")root.setAttribute("data-rendered",bad.length?"incomplete":"ok");
})();"""


def render(result) -> str:
    body = _body(result)
    expect = {
        "tables": body.count("<table>"),
        "heatmaps": body.count('<svg class="heatmap'),
        "cells": body.count('<rect class="cell"'),
        "curves": body.count('<polyline class="fd"'),
    }
    title = "backprop-verify report"
    return (
        f'<!DOCTYPE html>\n<html lang="en" data-rendered="pending" data-expect="{_e(json.dumps(expect))}">'
        f'<head><meta charset="utf-8"><title>{title}</title><script>{ONERROR}</script>'
        f'<style>{STYLE}</style></head><body><pre id="errors" hidden></pre>{body}'
        f"<script>{SELFCHECK}</script></body></html>\n"
    )
