"""The terminal's report (the default format): a headline, each failure's block, and the
per-tensor table of a passing run."""

from __future__ import annotations

from ..records import CheckResult, CrosscheckResult, GradResult
from . import student
from .common import (
    PAIR_HEADERS,
    failure_block,
    grad_tables,
    isolation_line,
    layer_table_data,
    mode_words,
    note_lines,
    pair_rows,
    stopped_line,
    table,
    tensor_table_data,
)


def render(result) -> str:
    if isinstance(result, CrosscheckResult):
        return crosscheck_text(result)
    if isinstance(result, GradResult):
        return grad_text(result)
    if student.audience(result) == "student":
        return student.render(result)
    return check_text(result)


def crosscheck_text(r: CrosscheckResult, fmt="simple") -> str:
    head = (
        f"crosscheck {r.verdict.upper()}: {len(r.references)} references, {r.examples} cases, "
        f"seed {r.seed}, {r.disagreements} disagreements ({r.seconds:.1f} s)"
    )
    parts = [head, "", table(pair_rows(r.pairs), PAIR_HEADERS, fmt)]
    if r.failures:
        parts += ["", "References disagreeing is a harness error, not yours (exit 2):"]
        parts += [failure_block(f, fmt=fmt) for f in r.failures[:10]]
    return "\n".join(parts) + "\n"


def grad_text(d: GradResult, fmt="simple") -> str:
    parts = []
    for title, headers, rows in grad_tables(d):
        parts += ["", title, table(rows, headers, fmt)]
    return "\n".join(parts[1:]) + "\n"


def check_text(r: CheckResult, fmt="simple") -> str:
    dtype = f", judged to {r.dtype} accuracy" if r.dtype else ""
    head = (
        f"{r.verdict.upper()} {r.implementation}: {r.examples} cases, seed {r.seed}{mode_words(r)}, "
        f"{len(r.failures)} failure(s){dtype} ({r.seconds:.1f} s)"
    )
    parts = [head] + note_lines(r) + [line for line in (isolation_line(r), stopped_line(r)) if line]
    for f in r.failures:
        parts += ["", failure_block(f, r.implementation, fmt)]
    if r.tensors and not r.failures:
        headers, rows = tensor_table_data(r.tensors)
        parts += ["", table(rows, headers, fmt)]
    layers = layer_table_data(r)
    if layers:
        parts += ["", table(layers[1], layers[0], fmt)]
    return "\n".join(parts) + "\n"
