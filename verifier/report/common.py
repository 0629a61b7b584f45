"""What every report format shares: the one place that words a failure, lays out a table and
turns a record into plain data. The formats (text.py, markdown.py, json.py, junit.py, html.py)
only lay these out; nothing here computes a gradient or reads a file.
"""

from __future__ import annotations

import dataclasses
import math

from tabulate import tabulate

from ..records import CheckResult, CrosscheckResult, GradResult

WORST_HEADERS = ["index", "got", "expected", "abs err", "rel err", "tolerance"]


def _clean(x):
    """JSON-safe plain data: tuples to lists, non-finite floats to strings."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _clean(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if hasattr(x, "tolist"):
        return _clean(x.tolist())
    return x


def to_json(result) -> dict:
    """DESIGN section 6 for check, gate, crosscheck and grad, as plain data.

    Rendering aids stay out: the heatmap matrices, the step curves and the minimal case itself
    (its file is named in each failure's case_file)."""
    if isinstance(result, GradResult):
        return _clean(
            {
                "case": result.case,
                "loss": result.loss,
                "grads": {n: [{"W": dW, "b": db} for dW, db in g] for n, g in result.grads.items()},
            }
        )
    d = _clean(result)
    d.pop("minimal_case", None)
    d.get("extra", {}).pop("minimal_case", None)
    for f in d["failures"]:
        f.pop("heatmap", None)
        f.pop("step_curve", None)
    if isinstance(result, CrosscheckResult):
        for p in d["pairs"]:
            p["references"] = [p["a"], p["b"]]
    return d


def notes(result) -> list[str]:
    """What a check says beside its verdict (a mixed-precision return, a bias gradient read as
    (n,), ...): every format shows these, from CheckResult.notes."""
    return [str(n) for n in getattr(result, "notes", ()) or ()]


def num(x) -> str:
    """A number as every table shows it: 3 significant digits; '' for None."""
    return "" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))


# --- table rows: the data every format lays out its own way ------------------------------

TENSOR_HEADERS = ["layer", "param", "entries", "max abs err", "max rel err", "excused (kinks)"]
PAIR_HEADERS = ["pair", "entries compared", "max abs err", "max rel err", "excused (kinks)", "disagreements"]


GATE_HEADERS = ["layer", "param", "baseline max rel err", "max rel err", "ratio", "regressed"]


def gate_table_data(result) -> tuple[list[str], list[list]] | None:
    """(headers, rows) of a gate's per-tensor precision against its baseline, or None."""
    gate = (getattr(result, "extra", None) or {}).get("gate") or {}
    if not gate.get("tensors"):
        return None
    return GATE_HEADERS, [
        [
            t["layer"],
            t["param"],
            num(t["baseline_max_rel"]),
            num(t["max_rel"]),
            num(t["ratio"]),
            "REGRESSED" if t["regressed"] else "no",
        ]
        for t in gate["tensors"]
    ]


def worst_rows(entries):
    return [
        [list(e.index), f"{e.got:.10g}", f"{e.expected:.10g}", num(e.abs_error), num(e.rel_error), num(e.tolerance)]
        for e in entries
    ]


def tensor_table_data(tensors):
    """(headers, rows) of the per-tensor maxima; a "wrong" column only when some entry was."""
    wrong = any(t.failed for t in tensors)
    rows = [
        [t.layer, t.param, t.compared, num(t.max_abs), num(t.max_rel), t.excused] + ([t.failed] if wrong else [])
        for t in tensors
    ]
    return (TENSOR_HEADERS + ["wrong"] if wrong else TENSOR_HEADERS), rows


LAYER_HEADERS = ["layer", "judged by", "cases", "failures"]


def layer_table_data(r) -> tuple[list[str], list[list]] | None:
    """(headers, rows) of a layers file's layers (DESIGN 3a), or None for a network check."""
    rows = (getattr(r, "extra", None) or {}).get("layers")
    if not rows:
        return None
    return LAYER_HEADERS, [[t["layer"], t["judged_by"], t["cases"], t["failures"]] for t in rows]


def pair_rows(pairs):
    return [[f"{p.a} / {p.b}", p.compared, num(p.max_abs), num(p.max_rel), p.excused, p.disagreements] for p in pairs]


def table(rows, headers, fmt="simple"):
    """The one call into tabulate; github tables get their pipes escaped."""
    if fmt == "github":
        rows = [[str(c).replace("|", "\\|") for c in r] for r in rows]
    return tabulate(rows, headers, tablefmt=fmt, disable_numparse=True)


def worst_table(entries, fmt="simple"):
    return table(worst_rows(entries), WORST_HEADERS, fmt)


def failure_where(f, call="the call") -> str:
    """Where a failure is: "layer 2 W" of a network, "layer affine dx" of a layers file."""
    if getattr(f, "layer_name", None):  # a layers file's layer (DESIGN 3a): its name and argument
        return f"layer {f.layer_name}" + (f" {f.param}" if f.param else "")
    return f"layer {f.layer} {f.param}" if f.layer is not None else call


def failure_headline(f, implementation=None):
    where = failure_where(f)
    who = f.subject or implementation or "implementation"
    label = f" [{f.diagnosis}]" if f.diagnosis else ""
    return f"{f.kind.upper()} {who}: {where}{label}: {f.detail}"


def case_line(f):
    if not f.case:
        return ""
    c = f.case
    if "layer" in c:  # a layer call's case (verifier/judge/layers.py summary)
        shapes = ", ".join(f"{n} {'x'.join(map(str, s)) or 'scalar'}" for n, s in c["shapes"].items())
        dout = f", dout {c['dout']}" if c.get("dout") else ""
        return f"case: layer {c['layer']}, {shapes}, batch {c['batch']}, inputs {c['regime']}{dout}"
    return (
        f"case: sizes {'-'.join(map(str, c['sizes']))}, {', '.join(c['activations'])}, "
        f"loss {c['loss']}, batch {c['batch']}"
    )


def failure_block(f, implementation=None, fmt="simple"):
    lines = [failure_headline(f, implementation)]
    if f.case:
        lines.append("  " + case_line(f))
    if f.worst:
        lines += ["  " + ln for ln in worst_table(f.worst, fmt).splitlines()]
    if f.case_file:
        lines.append(f"  minimal case: {f.case_file}")
    if f.replay:
        lines.append(f"  replay: {f.replay}")
    return "\n".join(lines)


def grad_tables(result: GradResult):
    """[(title, headers, rows)] of a `grad` result: the losses, then each tensor by reference."""
    d = to_json(result)  # arrays to nested lists
    names = list(d["loss"])
    out = [("loss", ["reference", "loss"], [[n, repr(d["loss"][n])] for n in names])]
    for l in range(len(d["grads"][names[0]])):
        for p in ("W", "b"):
            rows = [
                [list(idx)] + [f"{_at(d['grads'][n][l][p], idx):.10g}" for n in names]
                for idx in _flat_index(d["grads"][names[0]][l][p])
            ]
            out.append((f"layer {l + 1} d{p}", ["index"] + names, rows))
    return out


def _flat_index(nested, prefix=()):
    if isinstance(nested, list):
        out = []
        for i, v in enumerate(nested):
            out += _flat_index(v, prefix + (i,))
        return out
    return [prefix]


def _at(nested, idx):
    for i in idx:
        nested = nested[i]
    return nested


def directions_seed(r: CheckResult):
    """The seed of a fast-mode run's random directions (what replays them); None in full mode."""
    return r.extra.get("directions_seed", r.seed) if r.mode == "fast" else None


def stopped_line(r) -> str:
    """Why a run with failures ended before its examples, in one sentence; "" when it did not,
    or when its only row is the "incomplete" one, which says so itself."""
    if not getattr(r, "stopped", None) or all(f.kind == "incomplete" for f in r.failures):
        return ""
    return f"Exploration {r.stopped}, after {r.examples} cases: the rows below are what it found."


def note_lines(r) -> list[str]:
    """ "Note: ..." for each thing the code does that was accepted but is said (DESIGN section 3)."""
    return [f"Note: {n}" for n in notes(r)]


def isolation_words(r) -> str:
    """How the code under test was isolated: "full (namespaces: pid, net, ...; ...)"; "" for a
    result that ran no code (an error row of a class run)."""
    level = getattr(r, "isolation", "")
    if not level:
        return ""
    mechanisms = getattr(r, "isolation_mechanisms", ())
    return f"{level} ({'; '.join(mechanisms)})" if mechanisms else level


def isolation_line(r) -> str:
    """The isolation as a sentence of its own, "" when there is none to state."""
    words = isolation_words(r)
    return f"Isolation: {words}." if words else ""


def mode_words(r: CheckResult) -> str:
    """ ", fast mode (directions seed S)" for a fast-mode run, else ""."""
    seed = directions_seed(r)
    fast = "" if seed is None else f", fast mode (directions seed {seed})"
    return fast + skipped_words(r)


def skipped_words(r) -> str:
    """ ", N skipped (NotImplementedError)" when the code declined cases, else ""."""
    n = getattr(r, "skipped", 0)
    return f", {n} skipped (NotImplementedError)" if n else ""


# --- a class run's summary: one row per implementation --------------------------------------

SUMMARY_HEADERS = ["impl", "verdict", "cases", "failures", "first failure", "seconds"]


def _first_failure(r) -> str:
    if not r.failures:
        return ""
    f = r.failures[0]
    where = failure_where(f, "")
    where = f" {where}" if where else ""
    label = f" ({f.diagnosis})" if f.diagnosis else ""
    text = f"{f.kind}{where}{label}"
    if f.kind == "error":
        text = f"error: {f.detail}"
    return text if len(text) <= 70 else text[:67] + "..."


def _graded(results) -> bool:
    return any((getattr(r, "extra", None) or {}).get("grading") for r in results)


def summary_headers(results) -> list[str]:
    """SUMMARY_HEADERS, and "points" when the class was graded (--points, a grader's format)."""
    return SUMMARY_HEADERS + (["points"] if _graded(results) else [])


def _points(r) -> str:
    g = r.extra.get("grading") or {}
    return f"{g['score']:g}/{g['max_score']:g}" if g else ""


def summary_rows(results) -> list[list]:
    """One row per result, in summary_headers(results) order."""
    graded = _graded(results)
    return [
        [r.implementation, r.verdict, r.examples, len(r.failures), _first_failure(r), f"{r.seconds:.1f}"]
        + ([_points(r)] if graded else [])
        for r in results
    ]


def summary_text(results, fmt="simple") -> str:
    """The class summary as a table: `simple` for the terminal, `github` for markdown."""
    rows = summary_rows(results)
    return f"Summary: {len(rows)} implementations\n\n" + table(rows, summary_headers(results), fmt) + "\n"
