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
    """DESIGN section 6 for check, gate and crosscheck; `grad` results are dicts already."""
    if isinstance(result, dict):
        return _clean(result)
    d = _clean(result)
    d.pop("minimal_case", None)
    if isinstance(result, CrosscheckResult):
        for p in d["pairs"]:
            p["references"] = [p["a"], p["b"]]
    return d


def _g(x):
    return "" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))


def worst_table(entries, fmt="simple"):
    rows = [[list(e.index), f"{e.got:.10g}", f"{e.expected:.10g}", _g(e.abs_error),
             _g(e.rel_error), _g(e.tolerance)] for e in entries]
    return tabulate(rows, WORST_HEADERS, tablefmt=fmt, disable_numparse=True)


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
    rows = [[f"{p.a} / {p.b}", p.compared, _g(p.max_abs), _g(p.max_rel), p.excused, p.disagreements]
            for p in r.pairs]
    table = tabulate(rows, ["pair", "entries compared", "max abs err", "max rel err",
                            "excused (kinks)", "disagreements"], tablefmt=fmt, disable_numparse=True)
    parts = [head, "", table]
    if r.failures:
        parts += ["", "References disagreeing is a harness error, not yours (exit 2):"]
        parts += [failure_block(f, fmt=fmt) for f in r.failures[:10]]
    return "\n".join(parts) + "\n"


def grad_text(d: dict, fmt="simple") -> str:
    names = list(d["loss"])
    parts = [tabulate([[n, repr(d["loss"][n])] for n in names], ["reference", "loss"], tablefmt=fmt,
                      disable_numparse=True)]
    for l in range(len(d["grads"][names[0]])):
        for p in ("W", "b"):
            rows = []
            first = d["grads"][names[0]][l][p]
            flat = _flat_index(first)
            for idx in flat:
                rows.append([list(idx)] + [f"{_at(d['grads'][n][l][p], idx):.10g}" for n in names])
            parts += ["", f"layer {l + 1} d{p}", tabulate(rows, ["index"] + names, tablefmt=fmt,
                                                           disable_numparse=True)]
    return "\n".join(parts) + "\n"


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


def check_text(r: CheckResult, fmt="simple") -> str:
    dtype = f", judged to {r.dtype} accuracy" if r.dtype else ""
    head = (f"{r.verdict.upper()} {r.implementation}: {r.examples} cases, seed {r.seed}, "
            f"{len(r.failures)} failure(s){dtype} ({r.seconds:.1f} s)")
    parts = [head]
    for f in r.failures:
        parts += ["", failure_block(f, r.implementation, fmt)]
    if r.tensors and not r.failures:
        rows = [[t.layer, t.param, t.compared, _g(t.max_abs), _g(t.max_rel), t.excused] for t in r.tensors]
        parts += ["", tabulate(rows, ["layer", "param", "entries", "max abs err", "max rel err",
                                      "excused (kinks)"], disable_numparse=True)]
    return "\n".join(parts) + "\n"


def as_json(result) -> str:
    return json.dumps(to_json(result), indent=2) + "\n"


RENDERERS = {
    "text": text,
    "json": as_json,
}
