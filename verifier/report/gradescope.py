"""Gradescope: an autograder's results.json (Gradescope's "Autograder Specifications").

Top level: `score` (the points earned; Gradescope takes it over the tests' sum), `execution_time`
(seconds), `output` and its `output_format`, `visibility` and `stdout_visibility`, `tests`, and
`extra_data` (what the grader kept: verdict, seed, cases). Each test is one points item of the
rubric: `name`, `number`, `score`, `max_score`, `status` ("passed" at full marks, else "failed"),
`output` (the item's note and its failure rows, at the audience's level), `output_format`,
`visibility`, `tags`. A run the harness could not finish scores 0 and says why in `output`.
"""

from __future__ import annotations

import json

from . import graders

OUTPUT_FORMAT = "text"  # the failure tables are aligned text: Gradescope shows them in a <pre>


def document(r) -> dict:
    g = graders.grading(r, "gradescope")
    students = graders.for_students(g)
    output = graders.headline(r, g)
    rest = graders.leftover_text(r, g)
    if rest:
        output += "\n\n" + rest
    tests = [
        {
            "name": it["name"],
            "number": it["number"],
            "score": it["score"],
            "max_score": it["max_score"],
            "status": it["status"],
            "output": graders.item_output(r, it, students),
            "output_format": OUTPUT_FORMAT,
            "visibility": "visible",
            "tags": it["tags"],
        }
        for it in g["items"]
    ]
    return {
        "score": g["score"] if r.verdict != "error" else 0.0,
        "execution_time": round(r.seconds, 3),
        "output": output,
        "output_format": OUTPUT_FORMAT,
        "test_output_format": OUTPUT_FORMAT,
        "visibility": "visible",
        "stdout_visibility": "hidden",  # the harness's own progress lines are not the student's
        "tests": tests,
        "extra_data": {"verdict": r.verdict, "seed": r.seed, "examples": r.examples, "max_score": g["max_score"]},
    }


def render(result) -> str:
    return json.dumps(document(result), indent=2) + "\n"
