"""Turn result records into documents. The one place that owns every message format.

Formats are data: RENDERERS maps a format name to a function of a result record. `to_json`
gives the plain-data form of DESIGN section 6 that every other format is written from.
"""

from __future__ import annotations

import dataclasses
import json
import math

from tabulate import tabulate

from .records import CheckResult, CrosscheckResult

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
    """DESIGN section 6 for check, gate and crosscheck; `grad` results are dicts already.

    Rendering aids stay out: the heatmap matrices and the minimal case itself (its file is
    named in each failure's case_file)."""
    if isinstance(result, dict):
        return _clean(result)
    d = _clean(result)
    d.pop("minimal_case", None)
    d.get("extra", {}).pop("minimal_case", None)
    for f in d["failures"]:
        f.pop("heatmap", None)
    if isinstance(result, CrosscheckResult):
        for p in d["pairs"]:
            p["references"] = [p["a"], p["b"]]
    return d


def _g(x):
    return "" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))


# --- table rows: the data every format lays out its own way ------------------------------

TENSOR_HEADERS = ["layer", "param", "entries", "max abs err", "max rel err", "excused (kinks)"]
PAIR_HEADERS = ["pair", "entries compared", "max abs err", "max rel err", "excused (kinks)",
                "disagreements"]


GATE_HEADERS = ["layer", "param", "baseline max rel err", "max rel err", "ratio", "regressed"]


def gate_table_data(result):
    """(headers, rows) of a gate's per-tensor precision against its baseline, or None."""
    gate = (getattr(result, "extra", None) or {}).get("gate") or {}
    if not gate.get("tensors"):
        return None
    return GATE_HEADERS, [[t["layer"], t["param"], _g(t["baseline_max_rel"]), _g(t["max_rel"]),
                           _g(t["ratio"]), "REGRESSED" if t["regressed"] else "no"] for t in gate["tensors"]]


def worst_rows(entries):
    return [[list(e.index), f"{e.got:.10g}", f"{e.expected:.10g}", _g(e.abs_error),
             _g(e.rel_error), _g(e.tolerance)] for e in entries]


def tensor_table_data(tensors):
    """(headers, rows) of the per-tensor maxima; a "wrong" column only when some entry was."""
    wrong = any(t.failed for t in tensors)
    rows = [[t.layer, t.param, t.compared, _g(t.max_abs), _g(t.max_rel), t.excused]
            + ([t.failed] if wrong else []) for t in tensors]
    return (TENSOR_HEADERS + ["wrong"] if wrong else TENSOR_HEADERS), rows


def pair_rows(pairs):
    return [[f"{p.a} / {p.b}", p.compared, _g(p.max_abs), _g(p.max_rel), p.excused, p.disagreements]
            for p in pairs]


def table(rows, headers, fmt="simple"):
    """The one call into tabulate; github tables get their pipes escaped."""
    if fmt == "github":
        rows = [[str(c).replace("|", "\\|") for c in r] for r in rows]
    return tabulate(rows, headers, tablefmt=fmt, disable_numparse=True)


def worst_table(entries, fmt="simple"):
    return table(worst_rows(entries), WORST_HEADERS, fmt)


def failure_headline(f, implementation=None):
    where = f"layer {f.layer} {f.param}" if f.layer is not None else "the call"
    who = f.subject or implementation or "implementation"
    label = f" [{f.diagnosis}]" if f.diagnosis else ""
    return f"{f.kind.upper()} {who}: {where}{label}: {f.detail}"


def _case_line(f):
    if not f.case:
        return ""
    c = f.case
    return (f"case: sizes {'-'.join(map(str, c['sizes']))}, {', '.join(c['activations'])}, "
            f"loss {c['loss']}, batch {c['batch']}")


def failure_block(f, implementation=None, fmt="simple"):
    lines = [failure_headline(f, implementation)]
    if f.case:
        lines.append("  " + _case_line(f))
    if f.worst:
        lines += ["  " + ln for ln in worst_table(f.worst, fmt).splitlines()]
    if f.case_file:
        lines.append(f"  minimal case: {f.case_file}")
    if f.replay:
        lines.append(f"  replay: {f.replay}")
    return "\n".join(lines)


def crosscheck_text(r: CrosscheckResult, fmt="simple") -> str:
    head = (f"crosscheck {r.verdict.upper()}: {len(r.references)} references, {r.examples} cases, "
            f"seed {r.seed}, {r.disagreements} disagreements ({r.seconds:.1f} s)")
    parts = [head, "", table(pair_rows(r.pairs), PAIR_HEADERS, fmt)]
    if r.failures:
        parts += ["", "References disagreeing is a harness error, not yours (exit 2):"]
        parts += [failure_block(f, fmt=fmt) for f in r.failures[:10]]
    return "\n".join(parts) + "\n"


def grad_tables(d: dict):
    """[(title, headers, rows)] of a `grad` result: the losses, then each tensor by reference."""
    d = to_json(d)  # arrays to nested lists
    names = list(d["loss"])
    out = [("loss", ["reference", "loss"], [[n, repr(d["loss"][n])] for n in names])]
    for l in range(len(d["grads"][names[0]])):
        for p in ("W", "b"):
            rows = [[list(idx)] + [f"{_at(d['grads'][n][l][p], idx):.10g}" for n in names]
                    for idx in _flat_index(d["grads"][names[0]][l][p])]
            out.append((f"layer {l + 1} d{p}", ["index"] + names, rows))
    return out


def grad_text(d: dict, fmt="simple") -> str:
    parts = []
    for title, headers, rows in grad_tables(d):
        parts += ["", title, table(rows, headers, fmt)]
    return "\n".join(parts[1:]) + "\n"


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


def text(result) -> str:
    if isinstance(result, CrosscheckResult):
        return crosscheck_text(result)
    if isinstance(result, dict):
        return grad_text(result)
    return check_text(result)


def directions_seed(r: CheckResult):
    """The seed of a fast-mode run's random directions (what replays them); None in full mode."""
    return r.extra.get("directions_seed", r.seed) if r.mode == "fast" else None


def mode_words(r: CheckResult) -> str:
    """", fast mode (directions seed S)" for a fast-mode run, else ""."""
    seed = directions_seed(r)
    return "" if seed is None else f", fast mode (directions seed {seed})"


def check_text(r: CheckResult, fmt="simple") -> str:
    dtype = f", judged to {r.dtype} accuracy" if r.dtype else ""
    head = (f"{r.verdict.upper()} {r.implementation}: {r.examples} cases, seed {r.seed}{mode_words(r)}, "
            f"{len(r.failures)} failure(s){dtype} ({r.seconds:.1f} s)")
    parts = [head]
    for f in r.failures:
        parts += ["", failure_block(f, r.implementation, fmt)]
    if r.tensors and not r.failures:
        headers, rows = tensor_table_data(r.tensors)
        parts += ["", table(rows, headers, fmt)]
    return "\n".join(parts) + "\n"


def as_json(result) -> str:
    return json.dumps(to_json(result), indent=2) + "\n"


# --- markdown: a CI job summary or a pull-request comment ---------------------------------


def _code(x):
    """An inline code span, widened when the text holds a backtick."""
    x = str(x)
    return f"`` {x} ``" if "`" in x else f"`{x}`"


def _prose(text):
    """A detail as markdown: one line stays prose (no stray HTML tags), several are a code block."""
    text = "".join(c if c >= " " or c in "\n\t" else "\ufffd" for c in str(text).rstrip())
    if "\n" in text:
        return "```text\n" + text.replace("```", "'''") + "\n```"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_failure(f):
    where = f"layer {f.layer} {f.param}" if f.layer is not None else "the call"
    who = f"{_code(f.subject)}: " if f.subject else ""
    label = f", diagnosis {_code(f.diagnosis)}" if f.diagnosis else ""
    parts = [f"### {who}{f.kind}: {where}{label}", "", _prose(f.detail)]
    if f.case:
        parts += ["", "C" + _case_line(f)[1:]]
    if f.worst:
        parts += ["", worst_table(f.worst, "github")]
    links = ([f"Minimal case: {_code(f.case_file)}"] if f.case_file else []) + (
        [f"Replay: {_code(f.replay)}"] if f.replay else [])
    if links:
        parts += ["", "  \n".join(links)]
    return "\n".join(parts)


def markdown(result) -> str:
    if isinstance(result, dict):
        parts = [f"## backprop-verify grad: {_code(result.get('case', 'case'))}"]
        for title, headers, rows in grad_tables(result):
            parts += ["", f"### {title}", "", table(rows, headers, "github")]
        return "\n".join(parts) + "\n"
    r = result
    refs = ", ".join(r.references)
    if isinstance(r, CrosscheckResult):
        parts = [f"## backprop-verify crosscheck: **{r.verdict.upper()}**", "",
                 f"{len(r.references)} references ({refs}), {r.examples} cases, seed {r.seed}, "
                 f"{r.disagreements} disagreements, {r.seconds:.1f} s", "",
                 table(pair_rows(r.pairs), PAIR_HEADERS, "github")]
        if r.failures:
            parts += ["", "References disagreeing is a harness error, not the checked code's (exit 2)."]
        failures = r.failures[:10]
    else:
        command = "gate" if r.extra.get("gate") else "check"
        parts = [f"## backprop-verify {command}: **{r.verdict.upper()}** {_code(r.implementation)}", "",
                 f"{r.examples} cases, seed {r.seed}{mode_words(r)}, dtype {r.dtype or 'n/a'}, references {refs}, "
                 f"{len(r.failures)} failure(s), {r.seconds:.1f} s"]
        note = (r.extra.get("gate") or {}).get("note")
        parts += ["", note] if note else []
        failures = r.failures
    parts += [x for f in failures for x in ("", markdown_failure(f))]
    if getattr(r, "tensors", None):
        headers, rows = tensor_table_data(r.tensors)
        parts += ["", "### Largest errors per tensor, over every case", "", table(rows, headers, "github")]
    gate = gate_table_data(r)
    if gate:
        g = r.extra["gate"]
        parts += ["", f"### Precision against the baseline {_code(g['baseline'])} (allowed growth "
                  f"{g['factor']:g}x)", "", table(gate[1], gate[0], "github")]
    return "\n".join(parts) + "\n"


def junit(result) -> str:
    from .report_junit import render

    return render(result)


def html(result) -> str:
    from .report_html import render

    return render(result)


RENDERERS = {
    "text": text,
    "markdown": markdown,
    "json": as_json,
    "junit": junit,
    "html": html,
}
