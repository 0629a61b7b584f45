"""The graders' formats against schemas written from their documentation, on a failing, a
passing and an ungradable run; and the student audience, which never shows harness internals.

The schemas are in tests/grader_schemas.py.
"""

import json
import os
import shutil

import jsonschema
import pytest
from conftest import EXAMPLES
from grader_schemas import GRADESCOPE, PRAIRIELEARN

from verifier import cli
from verifier.records import RunConfig
from verifier.report import render
from verifier.run.batch import run_one
from verifier.run.grading import parse_rubric, with_grading

RUBRIC = parse_rubric({"gradients": 60, "loss": 10, "train_step": 20, "misbehaviour": {"exception": 10}})
CONFIG = dict(examples=8, mode="fast")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("graders")
    syntax = tmp / "syntax_error.py"
    syntax.write_text("def gradients(params, X, T, spec)\n    return []\n")
    config = RunConfig(**CONFIG, cases_dir=str(tmp / "cases"))
    out = {
        "failing": run_one(str(EXAMPLES / "bug_sign_flip.py"), config),
        "passing": run_one(str(EXAMPLES / "correct_vectorized.py"), config),
        "ungradable": run_one(str(syntax), config),
    }
    assert [r.verdict for r in out.values()] == ["fail", "pass", "error"]
    return out


def _doc(r, fmt, audience="student"):
    return json.loads(render(with_grading(r, RUBRIC, audience), fmt))


@pytest.mark.parametrize("which", ["failing", "passing", "ungradable"])
def test_gradescope_results_validate(runs, which):
    doc = _doc(runs[which], "gradescope")
    jsonschema.validate(doc, GRADESCOPE)
    assert doc["score"] == pytest.approx(sum(t["score"] for t in doc["tests"]) if which != "ungradable" else 0)
    assert all(0 <= t["score"] <= t["max_score"] for t in doc["tests"])
    assert {"passing": 100, "failing": 10, "ungradable": 0}[which] == doc["score"]  # sign flip: only "no exception"


@pytest.mark.parametrize("which", ["failing", "passing", "ungradable"])
def test_prairielearn_results_validate(runs, which):
    doc = _doc(runs[which], "prairielearn")
    jsonschema.validate(doc, PRAIRIELEARN)
    if which == "ungradable":  # the student loses no attempt, and is told why
        assert doc["gradable"] is False and "SyntaxError" in doc["format_errors"][0]
    else:
        assert doc["gradable"] is True and doc["score"] == {"passing": 1.0, "failing": 0.1}[which]


@pytest.mark.parametrize(
    "fmt, broken",
    [
        ("gradescope", lambda d: d["tests"][0].update(status="partial")),
        ("gradescope", lambda d: d.update(visibility="students")),
        ("prairielearn", lambda d: d.update(score=30)),
        ("prairielearn", lambda d: d.pop("gradable")),
    ],
    ids=["gradescope status", "gradescope visibility", "prairielearn score over 1", "prairielearn no gradable"],
)
def test_the_schemas_catch_a_planted_error(runs, fmt, broken):
    doc = _doc(runs["failing"], fmt)
    broken(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, GRADESCOPE if fmt == "gradescope" else PRAIRIELEARN)


def _internals(r):
    """What a student must never see: the grader's paths, replay commands, reference names."""
    words = [os.path.dirname(str(EXAMPLES)), "replay", "backprop-verify check", "minimal case:"]
    words += list(r.references) + [f.case_file for f in r.failures if f.case_file]
    return words


def test_the_student_sees_minimal_case_worst_entries_and_label_never_internals(runs):
    r = runs["failing"]
    doc = _doc(r, "gradescope")
    text = json.dumps(doc) + render(with_grading(r, RUBRIC, "student"), "text")
    for word in _internals(r):
        assert word not in text, word
    layer1 = doc["tests"][0]["output"]
    assert "MISMATCH at layer 1 db [sign]" in layer1
    assert 'the smallest network that shows it: {"sizes": [1, 1]' in layer1
    assert "index    got    expected    abs err    rel err    tolerance" in layer1


def test_the_instructor_sees_the_usual_blocks(runs):
    r = runs["failing"]
    doc = _doc(r, "gradescope", audience="instructor")
    assert "replay: backprop-verify check" in doc["tests"][0]["output"]
    assert str(EXAMPLES / "bug_sign_flip.py") in doc["output"]


def test_a_harness_bug_is_not_blamed_on_the_student(runs):
    from dataclasses import replace

    from verifier.records import Failure

    r = replace(
        runs["ungradable"],
        failures=(Failure("error", "internal error KeyError: 'x': a harness bug, please report it"),),
    )
    doc = _doc(r, "prairielearn")
    assert doc["gradable"] is False and "not of your code" in doc["message"] and "KeyError" not in doc["message"]


def test_a_class_in_gradescope_format_writes_one_results_file_each(tmp_path, capsys):
    files = []
    for name in ("bug_sign_flip.py", "correct_vectorized.py"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
        files.append(str(tmp_path / name))
    code = cli.main(
        [
            "check",
            *files,
            "--examples",
            "4",
            "--mode",
            "fast",
            "--quiet",
            "--format",
            "gradescope",
            "--output",
            str(tmp_path / "out"),
            "--cases-dir",
            str(tmp_path / "cases"),
        ]
    )
    summary = capsys.readouterr().out
    assert code == 1 and "points" in summary.splitlines()[2]
    for name in ("bug_sign_flip.json", "correct_vectorized.json"):
        jsonschema.validate(json.loads((tmp_path / "out" / name).read_text()), GRADESCOPE)
    assert cli.main(["check", *files, "--format", "prairielearn"]) == 2  # several need a directory
    assert "--output DIR" in capsys.readouterr().err
