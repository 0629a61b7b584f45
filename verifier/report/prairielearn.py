"""PrairieLearn: an external grader's results (results.json under the grading job's results).

`gradable`, `score` (a fraction in [0, 1]: points earned over points possible), `message` (one
paragraph), `output` (the whole report as text), `tests` with `name`, `description`, `points`,
`max_points`, `message` and `output`. A run the harness could not finish is `gradable: false`
with `format_errors` saying why, so the student loses no attempt; its score is 0 and it has no
tests.
"""

from __future__ import annotations

import json

from . import graders


def document(r) -> dict:
    g = graders.grading(r, "prairielearn")
    students = graders.for_students(g)
    message = graders.headline(r, g)
    if r.verdict == "error":
        return {"gradable": False, "score": 0.0, "message": message, "output": "", "format_errors": [message]}
    tests = [
        {
            "name": it["name"],
            "description": it["note"],
            "points": it["score"],
            "max_points": it["max_score"],
            "message": "passed" if it["status"] == "passed" else "not all passed",
            "output": graders.item_output(r, it, students),
        }
        for it in g["items"]
    ]
    rest = graders.leftover_text(r, g)
    output = "\n\n".join([message] + [f"{t['name']}: {t['output']}" for t in tests] + ([rest] if rest else []))
    score = g["score"] / g["max_score"] if g["max_score"] > 0 else (1.0 if r.verdict == "pass" else 0.0)
    return {"gradable": True, "score": min(max(score, 0.0), 1.0), "message": message, "output": output, "tests": tests}


def render(result) -> str:
    return json.dumps(document(result), indent=2) + "\n"
