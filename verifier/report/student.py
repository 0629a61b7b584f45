"""What a student sees (`--audience student`): each failure's kind, where, its diagnosis label,
the smallest network that shows it (written out in full, since the grader's case file is not
theirs to open), and the worst entries. Never the harness's internals: no file paths of the
grader's machine, no replay commands, no reference names, no harness error wording; a run the
grader could not finish says so in words a student can act on.
"""

from __future__ import annotations

import json
import os

from ..records import CheckResult
from . import common

MINIMAL_CASE_CHARS = 2000  # a larger minimal case is summarised by its case line only
HARNESS_FAULT = (
    "The grader could not judge this submission because of a problem of the grader itself, not of "
    "your code. Your instructor has the details; submit again later or ask them."
)


def audience(r) -> str:
    """The audience a check result's reports are written for (set by `--audience`)."""
    return ((getattr(r, "extra", None) or {}).get("grading") or {}).get("audience", "instructor")


def clean(text, implementation: str | None = None) -> str:
    """A message with the grader's directories around the submission taken out: its own file
    name stays, the place it was unpacked to goes."""
    text = str(text)
    if implementation:
        where = os.path.dirname(os.path.abspath(implementation))
        for d in {where, os.path.dirname(implementation)}:
            if d and d != os.sep:
                text = text.replace(d + os.sep, "")
    return text


def _minimal_case(r: CheckResult, f) -> str:
    """The failure's minimal case in full, when the run kept it and it is small enough to read."""
    case = r.extra.get("minimal_case")
    if not case or not f.case:
        return ""
    same = {k: case.get(k) for k in ("sizes", "activations", "loss")} == {
        k: f.case.get(k) for k in ("sizes", "activations", "loss")
    } and len(case.get("X", ())) == f.case.get("batch")
    text = json.dumps(case)
    return text if same and len(text) <= MINIMAL_CASE_CHARS else ""


def error_message(r: CheckResult) -> str:
    """Why an "error" run could not be graded, for the student."""
    details = [f.detail for f in r.failures]
    if any(f.kind == "incomplete" for f in r.failures):
        return (
            f"The grader ran out of time before it could judge your code ({r.stopped or 'time limit'}). "
            "Make gradients() faster (vectorise the loops over samples and units), then submit again."
        )
    if not details or any("harness bug" in d or "references" in d.lower() for d in details):
        return HARNESS_FAULT
    return "Your submission could not be checked:\n" + "\n".join(clean(d, r.implementation) for d in details)


def failure_text(r: CheckResult, f, fmt="simple") -> str:
    """One failure row for the student: headline, case, minimal case, worst entries."""
    where = f"layer {f.layer} {'d' + f.param if f.param else ''}".rstrip() if f.layer is not None else "the call"
    label = f" [{f.diagnosis}]" if f.diagnosis else ""
    lines = [f"{f.kind.upper()} at {where}{label}: {clean(f.detail, r.implementation)}"]
    if f.case:
        lines.append("  " + common.case_line(f))
    full = _minimal_case(r, f)
    if full:
        lines.append(f"  the smallest network that shows it: {full}")
    if f.worst:
        lines += ["  " + ln for ln in common.worst_table(f.worst, fmt).splitlines()]
    return "\n".join(lines)


def headline(r: CheckResult) -> str:
    if r.verdict == "error":
        return "Not graded: " + error_message(r)
    if r.verdict == "pass":
        return f"All gradients right on {r.examples} generated networks."
    return f"{len(r.failures)} problem(s) found on {r.examples} generated networks."


def render(r: CheckResult, fmt="simple") -> str:
    """The whole check for the student, as text (`fmt` is the tables' tabulate format)."""
    parts = [headline(r)] + [f"Note: {n}" for n in common.notes(r)]
    g = (r.extra.get("grading") or {}) if r.verdict != "error" else {}
    if g.get("items"):
        lines = [f"Points: {g['score']:g} of {g['max_score']:g}"]
        lines += [f"  {it['name']}: {it['score']:g}/{it['max_score']:g} ({it['note']})" for it in g["items"]]
        parts.append("\n".join(lines))
    if r.verdict != "error":
        parts += [failure_text(r, f, fmt) for f in r.failures]
    return "\n\n".join(parts) + "\n"
