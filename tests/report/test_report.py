"""Every report format, for a passing and a failing result: real runs of run_check on the
examples (few cases) and hand-built records for what a short run does not reach (a hang, a
crash, references disagreeing, a gate). The JUnit XML is validated against tests/data/junit.xsd;
tests/test_report_html.py renders the HTML in a browser."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from reference_impls import delta_rule
from verifier import casefile, report
from verifier.errors import SpecError
from verifier.judge import rows as rows_of
from verifier.judge.full import judge_gradients
from verifier.judge.oracle import Oracle
from verifier.records import (
    Case,
    CheckResult,
    CrosscheckResult,
    EntryError,
    Failure,
    GradResult,
    NetworkSpec,
    PairStats,
    TensorVerdict,
)
from verifier.report import common
from verifier.report import html as report_html
from verifier.run.check import run_check

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
XSD = Path(__file__).resolve().parents[1] / "data" / "junit.xsd"
WORKED = casefile.from_dict(casefile.WORKED_EXAMPLE)
WORST_HEADER = "| index | got | expected | abs err | rel err | tolerance |"


# --- results --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def failing(tmp_path_factory):
    return run_check(
        str(EXAMPLES / "bug_sign_flip.py"), examples=8, seed=0, cases_dir=str(tmp_path_factory.mktemp("cases"))
    )


@pytest.fixture(scope="module")
def passing():
    return run_check(str(EXAMPLES / "correct_vectorized.py"), examples=5, seed=0)


SUMMARY = casefile.summary(WORKED)
ENTRY = EntryError((0, 1), -0.25, 0.25, 0.5, 2.0, 1e-15)


def misbehaving():
    """A hang, a crash whose message holds characters XML cannot carry, and a wrong tensor."""
    rows = (
        Failure("timeout", "gradients did not return within 10 s", case=SUMMARY),
        Failure(
            "exception", 'gradients raised ValueError: bad \x00 byte | pipe\n  File "<module>", line 3', case=SUMMARY
        ),
        Failure(
            "mismatch",
            "1 of 4 entries of layer 1 dW are wrong",
            layer=1,
            param="W",
            index=(0, 1),
            got=-0.25,
            expected=0.25,
            abs_error=0.5,
            rel_error=2.0,
            tolerance=1e-15,
            case=SUMMARY,
            worst=(ENTRY,),
            heatmap=((0.0, 2.0), (1e-16, float("inf"))),
        ),
    )
    tensors = tuple(TensorVerdict(l, p, 4, 0, int(l == 1 and p == "W"), 0.5, 2.0, ()) for l in (1, 2) for p in "Wb")
    return CheckResult(
        "fail",
        3,
        4,
        "hangs.py",
        ("delta_rule", "jax_reverse"),
        rows,
        "float64",
        tensors,
        extra={"minimal_case": casefile.WORKED_EXAMPLE},
    )


def crosscheck(fail=True):
    names = ("delta_rule", "central_diff", "complex_step")
    pairs = tuple(
        PairStats(a, b, 40, 0, int(fail and "complex_step" in (a, b)), 1e-9, 1e-6)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    )
    rows = (
        (
            Failure(
                "reference_disagreement",
                "complex_step disagrees with every other reference at layer 1 W",
                layer=1,
                param="W",
                index=(0, 0),
                got=1.0,
                expected=-1.0,
                abs_error=2.0,
                rel_error=2.0,
                tolerance=1e-12,
                case=SUMMARY,
                worst=(ENTRY,),
                subject="complex_step",
            ),
        )
        if fail
        else ()
    )
    rows = tuple(rows_of.with_step_curves(rows, WORKED))  # the judge draws the curve of the minimal case
    return CrosscheckResult(
        "error" if fail else "pass", 0, 6, names, len(rows), pairs, rows, 1.5, minimal_case=WORKED if fail else None
    )


def gate_result(passing):
    tensors = [
        {
            "layer": t.layer,
            "param": t.param,
            "baseline_max_rel": 1e-12,
            "max_rel": t.max_rel,
            "baseline_max_abs": 1e-15,
            "max_abs": t.max_abs,
            "ratio": 2.0,
            "regressed": False,
        }
        for t in passing.tensors
    ]
    return CheckResult(
        **{
            **passing.__dict__,
            "extra": {"gate": {"baseline": "baseline.json", "factor": 10.0, "tensors": tensors, "note": None}},
        }
    )


@pytest.fixture(scope="module")
def grad():
    from verifier.judge.agreement import run_references
    from verifier.judge.references import REFERENCES

    outputs, _ = run_references(WORKED, {n: REFERENCES[n] for n in ("delta_rule", "central_diff")})
    return GradResult(
        "worked.json", {n: float(o.loss) for n, o in outputs.items()}, {n: list(o.grads) for n, o in outputs.items()}
    )


@pytest.fixture(scope="module")
def results(failing, passing, grad):
    return {
        "fail": failing,
        "pass": passing,
        "misbehaving": misbehaving(),
        "crosscheck-fail": crosscheck(),
        "crosscheck-pass": crosscheck(False),
        "gate": gate_result(passing),
        "grad": grad,
    }


# --- every format, every result -------------------------------------------------------------


def test_every_command_line_format_is_registered():
    assert set(report.FORMATS) == set(report.FORMATS)


@pytest.mark.parametrize("fmt", report.FORMATS)
def test_every_format_renders_every_result(results, fmt):
    for name, result in results.items():
        if fmt in ("gradescope", "prairielearn") and not isinstance(result, CheckResult):
            with pytest.raises(SpecError, match=f"the {fmt} format is for check results"):
                report.render(result, fmt)  # a grader grades submissions, not the references
            continue
        out = report.render(result, fmt)
        assert isinstance(out, str) and out.endswith("\n") and len(out) > 50, (fmt, name)


def test_the_real_runs_are_what_the_reports_are_tested_on(failing, passing):
    assert failing.verdict == "fail" and passing.verdict == "pass"
    f = failing.failures[0]
    assert f.kind == "mismatch" and f.diagnosis == "sign" and f.worst and f.case_file and f.replay
    assert f.heatmap and failing.extra["minimal_case"]["sizes"] == f.case["sizes"]


# --- json: DESIGN section 6 -----------------------------------------------------------------

FAILURE_FIELDS = {
    "kind",
    "layer",
    "param",
    "index",
    "got",
    "expected",
    "abs_error",
    "rel_error",
    "tolerance",
    "diagnosis",
    "detail",
    "case",
    "case_file",
    "replay",
}


def test_json_check_has_every_design_field(results):
    for name in ("fail", "pass", "misbehaving", "gate"):
        d = json.loads(report.render(results[name], "json"))
        assert {"verdict", "seed", "examples", "implementation", "references", "failures"} <= set(d), name
        for f in d["failures"]:
            assert FAILURE_FIELDS <= set(f) and {"sizes", "activations", "loss", "batch"} <= set(f["case"])
            assert "heatmap" not in f  # a picture for the HTML report, not data
        assert "minimal_case" not in d.get("extra", {})
    d = json.loads(report.render(results["fail"], "json"))
    f = d["failures"][0]
    assert d["verdict"] == "fail" and f["kind"] == "mismatch" and f["diagnosis"] == "sign"
    assert isinstance(f["index"], list) and f["replay"].startswith("backprop-verify check ")


def test_json_crosscheck_and_grad(results):
    d = json.loads(report.render(results["crosscheck-fail"], "json"))
    assert {"verdict", "seed", "examples", "references", "disagreements", "pairs"} <= set(d)
    assert {"max_abs", "max_rel", "compared", "excused", "references"} <= set(d["pairs"][0])
    g = json.loads(report.render(results["grad"], "json"))
    assert set(g["loss"]) == {"delta_rule", "central_diff"}
    assert np.shape(g["grads"]["delta_rule"][0]["W"]) == (2, 2)


# --- text and markdown ----------------------------------------------------------------------


def _squash(text):
    return re.sub(r" +", " ", text)


def test_text_leads_with_the_headline_and_the_worst_entries(results, failing):
    out = report.render(failing, "text")
    assert out.startswith(f"FAIL {failing.implementation}: 8 cases, seed 0")
    assert "MISMATCH" in out and "[sign]" in out and "index    got" in out and "replay: " in out
    assert "layer 1 dW" in report.render(results["grad"], "text")  # numpy arrays in a grad result


def test_markdown_of_a_failure(failing):
    out = report.render(failing, "markdown")
    f = failing.failures[0]
    assert out.startswith(f"## backprop-verify check: **FAIL** `{failing.implementation}`")
    assert "8 cases, seed 0, dtype float64" in out
    assert f"### mismatch: layer {f.layer} {f.param}, diagnosis `sign`" in out
    assert WORST_HEADER in _squash(out) and "|-----" in out
    assert f"Minimal case: `{f.case_file}`" in out and f"Replay: `{f.replay}`" in out
    assert "### Largest errors per tensor" in out and "| wrong |" in _squash(out)


def test_markdown_of_a_pass_has_the_per_tensor_table(passing):
    out = _squash(report.render(passing, "markdown"))
    assert "**PASS**" in out and "| layer | param | entries | max abs err | max rel err | excused (kinks) |" in out
    assert "| 1 | W |" in out and "wrong" not in out


def test_markdown_escapes_pipes_and_shows_the_call_failures(results):
    out = report.render(results["misbehaving"], "markdown")
    assert "### timeout: the call" in out and "### exception: the call" in out
    assert "```text\ngradients raised ValueError" in out  # a traceback stays a block, <module> and all
    assert WORST_HEADER in _squash(out) and "| layer | param |" in _squash(out)
    assert "| a\\|b | 1 |" in _squash(common.table([["a|b", 1]], ["x", "y"], "github"))


def test_markdown_crosscheck_gate_and_grad(results):
    out = _squash(report.render(results["crosscheck-fail"], "markdown"))
    assert "## backprop-verify crosscheck: **ERROR**" in out and "| pair | entries compared |" in out
    assert "| delta_rule / complex_step |" in out and "### `complex_step`: reference_disagreement" in out
    assert "### Precision against the baseline `baseline.json`" in report.render(results["gate"], "markdown")
    assert "### layer 2 db" in report.render(results["grad"], "markdown")


# --- junit ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema():
    try:
        import xmlschema
    except ImportError:
        pytest.fail("xmlschema is missing: pip install -e '.[test]' installs it", pytrace=False)
    return xmlschema.XMLSchema(str(XSD))


@pytest.mark.parametrize("name", ["fail", "pass", "misbehaving", "crosscheck-fail", "crosscheck-pass", "gate", "grad"])
def test_junit_is_valid_against_the_schema(results, schema, name):
    schema.validate(report.render(results[name], "junit"))


def _cases(xml):
    root = ET.fromstring(xml)
    suite = root.find("testsuite")
    return root, suite, {c.get("name"): c for c in suite.findall("testcase")}


def test_junit_of_a_failure(failing):
    root, suite, cases = _cases(report.render(failing, "junit"))
    f = failing.failures[0]
    bad = cases[f"layer {f.layer} {f.param}"].find("failure")
    assert bad.get("type") == "mismatch" and "[sign]" in bad.get("message")
    assert "index    got" in bad.text and f.replay in bad.text
    names = list(cases)
    assert names[0] == "gradients() on 8 cases" and len(names) == 1 + len(failing.tensors)
    assert suite.get("tests") == str(len(names)) and root.get("failures") == suite.get("failures") != "0"
    # a tensor wrong on the generated cases fails even when the shrunk case shows another one
    assert all(c.find("failure") is not None for n, c in cases.items() if n.startswith("layer"))


def test_junit_of_a_pass(passing):
    root, suite, cases = _cases(report.render(passing, "junit"))
    assert suite.get("failures") == suite.get("errors") == "0"
    assert all(len(c) == 0 for c in cases.values()) and "layer 1 W" in cases
    assert {p.get("name"): p.get("value") for p in suite.iter("property")}["seed"] == "0"


def test_junit_misbehaviour_is_an_error_and_wrong_values_are_failures(results):
    root, suite, cases = _cases(report.render(results["misbehaving"], "junit"))
    call = cases["gradients() on 4 cases"]
    assert [e.get("type") for e in call.findall("error")] == ["timeout", "exception"]
    assert "\x00" not in ET.tostring(root, encoding="unicode")
    assert cases["layer 1 W"].find("failure").get("type") == "mismatch"
    assert suite.get("errors") == "1" and suite.get("failures") == "1" and suite.get("tests") == "5"


def test_junit_crosscheck_has_one_testcase_per_pair(results):
    r = results["crosscheck-fail"]
    _, suite, cases = _cases(report.render(r, "junit"))
    assert list(cases) == [f"{p.a} / {p.b}" for p in r.pairs]
    assert cases["delta_rule / central_diff"].find("failure") is None
    assert "complex_step disagrees" in cases["delta_rule / complex_step"].find("failure").text
    assert suite.get("failures") == "2"


def test_the_schema_rejects_what_ci_servers_would_not_read(schema):
    with pytest.raises(Exception):
        schema.validate('<testsuites><testsuite name="x"><testcase/></testsuite></testsuites>')


# --- html, without a browser ----------------------------------------------------------------


def test_html_is_self_contained_with_tables_and_pictures(failing):
    page = report.render(failing, "html")
    assert page.startswith("<!DOCTYPE html>") and 'data-rendered="pending"' in page
    assert not re.search(r"""(src|href)\s*=|@import|url\(|https?://(?!www\.w3\.org)""", page)
    f = failing.failures[0]
    cells = sum(len(row) for row in f.heatmap)
    assert page.count('<rect class="cell"') == cells and page.count('<polyline class="fd"') == 1
    assert page.count("<table>") == 2  # the worst entries, the per-tensor maxima
    expect = json.loads(re.search(r'data-expect="([^"]*)"', page).group(1).replace("&quot;", '"'))
    assert expect == {"tables": 2, "heatmaps": 1, "cells": cells, "curves": 1}


def test_html_escapes_what_it_shows(results):
    r = results["misbehaving"]
    evil = Failure("exception", "<script>alert(1)</script>", case=SUMMARY)
    page = report.render(CheckResult(**{**r.__dict__, "failures": (evil,)}), "html")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page


def test_step_curve_is_the_v_of_truncation_and_rounding():
    exact = delta_rule.gradients(list(WORKED.params), WORKED.X, WORKED.T, WORKED.spec)[1]
    points = rows_of.step_curve(WORKED, 1, "W", (0, 0), exact)
    errors = dict(points)
    assert tuple(h for h, _ in points) == rows_of.STEPS
    best = min(errors.values())
    assert best < 1e-9 < errors[1e-1] and errors[1e-13] > 100 * best  # falls, then rises


def test_heatmaps_of_large_tensors_are_pooled_to_64_cells_a_side():
    rng = np.random.default_rng(0)
    sizes = (130, 100)  # one layer: no compiling of a deeper network for the JAX reference
    params = tuple((rng.normal(size=(m, n)) / 10, rng.normal(size=m)) for n, m in zip(sizes, sizes[1:]))
    case = Case(NetworkSpec(sizes, ("tanh",), "half_sse"), params, rng.normal(size=(2, 130)), rng.normal(size=(2, 100)))
    oracle = Oracle(case, oracles=("delta_rule",))  # no JAX compile: the tensor is what matters
    wrong = [(-dW, -db) for dW, db in oracle.grads]
    failures, _, _ = judge_gradients(case, oracle, wrong, None)
    heat = {(f.layer, f.param): f.heatmap for f in failures}
    assert np.shape(heat[1, "W"]) == (50, 44) and np.min(heat[1, "W"]) > 1  # 100x130 in 2x3 blocks
    assert np.shape(heat[1, "b"]) == (1, 50)
    page = report.render(CheckResult("fail", 0, 1, "x.py", ("delta_rule",), tuple(failures), "float64"), "html")
    assert "Each cell is the largest over a block of 2 x 3 entries." in page


def test_the_step_curve_is_drawn_for_gradient_entries_only():
    row = Failure(
        "update_mismatch",
        "train_step is not W - lr dJ/dW",
        layer=1,
        param="W",
        index=(0, 0),
        abs_error=float("inf"),
        case=SUMMARY,
    )
    rows = tuple(rows_of.with_step_curves((row, Failure(**{**row.__dict__, "kind": "mismatch"})), WORKED))
    assert rows[0].step_curve is None and rows[1].step_curve is not None
    page = report.render(
        CheckResult(
            "fail", 0, 1, "x.py", ("delta_rule",), rows, "float64", extra={"minimal_case": casefile.WORKED_EXAMPLE}
        ),
        "html",
    )
    assert page.count('<polyline class="fd"') == 1 and 'class="own"' not in page  # no line at infinity


def test_fast_mode_reports_name_the_directions_seed(passing):
    # a fast run is replayed by its directions: every format a person or CI reads must say them
    fast = CheckResult(
        "pass",
        7,
        5,
        "x.py",
        ("complex_step_directional", "delta_rule"),
        (),
        "float64",
        mode="fast",
        extra={"directions_seed": 7},
    )
    assert "fast mode (directions seed 7)" in report.render(fast, "text")
    assert "fast mode (directions seed 7)" in report.render(fast, "markdown")
    assert "<dt>directions seed</dt><dd>7</dd>" in report_html.render(fast)
    props = {p.get("name"): p.get("value") for p in ET.fromstring(report.render(fast, "junit")).iter("property")}
    assert props["mode"] == "fast" and props["directions_seed"] == "7"
    for fmt in ("text", "markdown", "html", "junit"):  # and a full run does not pretend to have them
        assert "directions" not in report.render(passing, fmt).replace("complex_step_directional", "")
