"""The HTML report, opened in headless Chromium: it renders offline with no script error, and
its own check (every table, heatmap cell and curve present and drawn) marks it data-rendered="ok".

Chromium comes from scripts/install-browser.sh. Without it these tests are skipped with a reason
that says how to install it; with BACKPROP_VERIFY_REQUIRE_BROWSER=1 (set by .ci/run) a missing
browser is a failure, so CI always renders the HTML in a real browser.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from verifier import casefile, report
from verifier.judge.rows import with_step_curves
from verifier.records import CrosscheckResult, EntryError, Failure, GradResult, PairStats
from verifier.run.check import run_check

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def browser_missing(path, required):
    """None when the browser tests can run; else what to do, and whether it is a failure."""
    if path:
        return None
    how = "run scripts/install-browser.sh (Debian: apt-get install chromium)"
    if required:
        return True, f"chromium is missing, and BACKPROP_VERIFY_REQUIRE_BROWSER=1 asks for it: {how}"
    return False, f"chromium is not installed, so the HTML report is not opened in a browser: {how}"


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = browser_missing(path, os.environ.get("BACKPROP_VERIFY_REQUIRE_BROWSER") == "1")
    if missing:
        fail, why = missing
        if fail:
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    return path


def test_a_missing_browser_is_a_skip_that_says_how_unless_ci_requires_it():
    assert browser_missing("/usr/bin/chromium", True) is None
    fail, why = browser_missing(None, False)
    assert not fail and "scripts/install-browser.sh" in why
    fail, why = browser_missing(None, True)
    assert fail and "BACKPROP_VERIFY_REQUIRE_BROWSER=1" in why


def open_pages(chromium, pages, tmp_path, screenshot=None):
    """{name: DOM after the page's scripts ran}, every page in its own browser, all at once."""
    procs = {}
    for name, page in pages.items():
        path = tmp_path / f"{name}.html"
        path.write_text(page, encoding="utf-8")
        extra = [f"--screenshot={screenshot}", "--window-size=1000,1400"] if name == "screenshot" else ["--dump-dom"]
        procs[name] = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={tmp_path / ('profile-' + name)}", *extra, path.as_uri()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    doms = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"chromium on {name}: exit {proc.returncode}\n{err[-2000:]}"
        doms[name] = out
    return doms


def rendered(dom):
    return re.search(r'<html[^>]*data-rendered="([a-z]+)"', dom).group(1)


def errors(dom):
    return re.search(r'<pre id="errors"[^>]*>(.*?)</pre>', dom, re.S).group(1)


@pytest.fixture(scope="module")
def failing(tmp_path_factory):
    return run_check(
        str(EXAMPLES / "bug_sign_flip.py"), examples=6, seed=0, cases_dir=str(tmp_path_factory.mktemp("cases"))
    )


def disagreeing_references():
    case = casefile.from_dict(casefile.WORKED_EXAMPLE)
    entry = EntryError((0, 0), 1.0, -1.0, 2.0, 2.0, 1e-12)
    row = Failure(
        "reference_disagreement",
        "complex_step disagrees with every other reference",
        layer=1,
        param="W",
        index=(0, 0),
        got=1.0,
        expected=-1.0,
        abs_error=2.0,
        rel_error=2.0,
        tolerance=1e-12,
        case=casefile.summary(case),
        worst=(entry,),
        subject="complex_step",
    )
    pairs = (
        PairStats("delta_rule", "complex_step", 9, 0, 1, 2.0, 2.0),
        PairStats("delta_rule", "central_diff", 9, 0, 0, 1e-10, 1e-8),
    )
    rows = tuple(with_step_curves((row,), case))  # the judge draws the minimal case's curve
    return CrosscheckResult(
        "error", 0, 3, ("delta_rule", "central_diff", "complex_step"), 1, pairs, rows, minimal_case=case
    )


def grad_result():
    from verifier.judge.agreement import run_references
    from verifier.judge.references import REFERENCES

    outputs, _ = run_references(casefile.from_dict(casefile.WORKED_EXAMPLE), {"delta_rule": REFERENCES["delta_rule"]})
    return GradResult(
        "worked.json", {n: o.loss for n, o in outputs.items()}, {n: list(o.grads) for n, o in outputs.items()}
    )


def test_reports_render_in_chromium_with_tables_heatmap_and_curve(chromium, failing, tmp_path):
    pass_result = failing.__class__(**{**failing.__dict__, "verdict": "pass", "failures": ()})
    pages = {
        "fail": report.render(failing, "html"),
        "pass": report.render(pass_result, "html"),
        "crosscheck": report.render(disagreeing_references(), "html"),
        "grad": report.render(grad_result(), "html"),
        "screenshot": report.render(failing, "html"),
    }
    png = tmp_path / "fail.png"
    doms = open_pages(chromium, pages, tmp_path, screenshot=png)
    for name, dom in doms.items():
        if name != "screenshot":
            assert rendered(dom) == "ok", f"{name}: {errors(dom)}"
            assert errors(dom) == "" and "<table>" in dom
    f = failing.failures[0]
    fail = doms["fail"]
    assert fail.count('<rect class="cell"') == sum(len(r) for r in f.heatmap) > 0
    assert '<svg class="fd-curve"' in fail and "<polyline" in fail and "worst entries" in fail
    assert "<svg" not in doms["pass"] and "largest errors per tensor" in doms["pass"]
    assert '<svg class="fd-curve"' in doms["crosscheck"] and "delta_rule / complex_step" in doms["crosscheck"]
    assert "layer 2 db" in doms["grad"]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # drawn, not a blank page


def test_the_page_reports_script_errors_and_missing_pictures(chromium, failing, tmp_path):
    """Test the test: a page that throws, and one that lost its heatmap, are not "ok"."""
    page = report.render(failing, "html")
    throws = page.replace("<table>", "<script>noSuchFunction()</script><table>", 1)
    lost = re.sub(r'<rect class="cell"[^>]*>.*?</rect>', "", page, count=1)
    doms = open_pages(chromium, {"throws": throws, "lost": lost}, tmp_path)
    assert rendered(doms["throws"]) == "error" and "noSuchFunction" in errors(doms["throws"])
    assert rendered(doms["lost"]) == "incomplete" and "cells: expected" in errors(doms["lost"])
