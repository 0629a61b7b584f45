"""Markdown: a CI job summary or a pull-request comment."""

from __future__ import annotations

from ..records import CrosscheckResult, GradResult
from . import student
from .common import (
    PAIR_HEADERS,
    case_line,
    failure_where,
    gate_table_data,
    grad_tables,
    isolation_line,
    layer_table_data,
    mode_words,
    note_lines,
    pair_rows,
    stopped_line,
    table,
    tensor_table_data,
    worst_table,
)


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
    where = failure_where(f)
    who = f"{_code(f.subject)}: " if f.subject else ""
    label = f", diagnosis {_code(f.diagnosis)}" if f.diagnosis else ""
    parts = [f"### {who}{f.kind}: {where}{label}", "", _prose(f.detail)]
    if f.case:
        parts += ["", "C" + case_line(f)[1:]]
    if f.worst:
        parts += ["", worst_table(f.worst, "github")]
    links = ([f"Minimal case: {_code(f.case_file)}"] if f.case_file else []) + (
        [f"Replay: {_code(f.replay)}"] if f.replay else []
    )
    if links:
        parts += ["", "  \n".join(links)]
    return "\n".join(parts)


def render(result) -> str:
    if isinstance(result, GradResult):
        parts = [f"## backprop-verify grad: {_code(result.case)}"]
        for title, headers, rows in grad_tables(result):
            parts += ["", f"### {title}", "", table(rows, headers, "github")]
        return "\n".join(parts) + "\n"
    r = result
    if student.audience(r) == "student":
        return "## Gradient check\n\n```text\n" + student.render(r).replace("```", "'''") + "```\n"
    refs = ", ".join(r.references)
    if isinstance(r, CrosscheckResult):
        parts = [
            f"## backprop-verify crosscheck: **{r.verdict.upper()}**",
            "",
            f"{len(r.references)} references ({refs}), {r.examples} cases, seed {r.seed}, "
            f"{r.disagreements} disagreements, {r.seconds:.1f} s",
            "",
            table(pair_rows(r.pairs), PAIR_HEADERS, "github"),
        ]
        if r.failures:
            parts += ["", "References disagreeing is a harness error, not the checked code's (exit 2)."]
        failures = r.failures[:10]
    else:
        command = "gate" if r.extra.get("gate") else "check"
        parts = [
            f"## backprop-verify {command}: **{r.verdict.upper()}** {_code(r.implementation)}",
            "",
            f"{r.examples} cases, seed {r.seed}{mode_words(r)}, dtype {r.dtype or 'n/a'}, references {refs}, "
            f"{len(r.failures)} failure(s), {r.seconds:.1f} s",
        ]
        parts += ["", isolation_line(r)] if isolation_line(r) else []
        note = (r.extra.get("gate") or {}).get("note")
        parts += ["", note] if note else []
        parts += [x for n in note_lines(r) for x in ("", n)]
        parts += ["", stopped_line(r)] if stopped_line(r) else []
        failures = r.failures
    parts += [x for f in failures for x in ("", markdown_failure(f))]
    if getattr(r, "tensors", None):
        headers, rows = tensor_table_data(r.tensors)
        parts += ["", "### Largest errors per tensor, over every case", "", table(rows, headers, "github")]
    layers = layer_table_data(r) if isinstance(getattr(r, "extra", None), dict) else None
    if layers:
        parts += ["", "### Layers", "", table(layers[1], layers[0], "github")]
    gate = gate_table_data(r)
    if gate:
        g = r.extra["gate"]
        parts += [
            "",
            f"### Precision against the baseline {_code(g['baseline'])} (allowed growth {g['factor']:g}x)",
            "",
            table(gate[1], gate[0], "github"),
        ]
    return "\n".join(parts) + "\n"
