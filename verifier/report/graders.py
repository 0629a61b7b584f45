"""What the graders' formats (gradescope.py, prairielearn.py) share: the points items a check
carries (verifier/run/grading.py put them in extra["grading"]) with the text each shows, at the
audience's level (student.py for students, the usual failure blocks for instructors).

A result without points (a report rendered from an old JSON, or from the API) is graded as one
item of 1 point, earned by a pass, so every check result has a grader's report.
"""

from __future__ import annotations

from ..errors import SpecError
from ..records import CheckResult
from . import common, student

MAX_ROWS = 5  # failure rows shown per item; the rest are counted


def grading(r, fmt: str) -> dict:
    """The points of `r` (a CheckResult), or a SpecError for results no grader grades."""
    if not isinstance(r, CheckResult):
        raise SpecError(f"the {fmt} format is for check results (a grader's submission), not {type(r).__name__}")
    g = r.extra.get("grading")
    if g:
        return g
    passed = r.verdict == "pass"
    item = {
        "name": "gradients",
        "number": "1",
        "score": 1.0 if passed else 0.0,
        "max_score": 1.0,
        "status": "passed" if passed else "failed",
        "note": "every case judged right" if passed else "some cases judged wrong",
        "tags": ["gradients"],
        "failures": list(range(len(r.failures))),
    }
    return {"score": item["score"], "max_score": 1.0, "items": [item], "audience": "student"}


def for_students(g: dict) -> bool:
    return g.get("audience", "student") == "student"


def rows_text(r: CheckResult, indices, students: bool) -> str:
    """The failure rows at these indices, at the audience's level."""
    shown = [r.failures[i] for i in indices[:MAX_ROWS] if i < len(r.failures)]
    blocks = [student.failure_text(r, f) if students else common.failure_block(f, r.implementation) for f in shown]
    if len(indices) > MAX_ROWS:
        blocks.append(f"... and {len(indices) - MAX_ROWS} more row(s) like these")
    return "\n\n".join(blocks)


def item_output(r: CheckResult, item: dict, students: bool) -> str:
    text = item["note"] + "."
    rows = rows_text(r, item["failures"], students)
    return text + ("\n\n" + rows if rows else "")


def headline(r: CheckResult, g: dict) -> str:
    """One paragraph about the whole submission: its points and verdict, or why it was not graded."""
    if r.verdict == "error":
        if for_students(g):
            return student.headline(r)
        return "Not graded (harness error): " + "; ".join(f.detail for f in r.failures)
    words = student.headline(r) if for_students(g) else common_headline(r)
    said = "".join(f" Note: {n}." for n in common.notes(r))
    return f"{g['score']:g} of {g['max_score']:g} points. {words}{said}"


def common_headline(r: CheckResult) -> str:
    return f"{r.verdict.upper()} {r.implementation}: {r.examples} cases, seed {r.seed}, {len(r.failures)} failure(s)."


def leftover_text(r: CheckResult, g: dict) -> str:
    """Rows no item holds (a crash when the rubric gives misbehaviour no points): shown anyway."""
    held = {i for it in g["items"] for i in it["failures"]}
    rest = [i for i in range(len(r.failures)) if i not in held]
    return rows_text(r, rest, for_students(g)) if rest and r.verdict != "error" else ""
