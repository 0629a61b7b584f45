"""Bias gradients as code keeps them (DESIGN section 3): a db of shape (1, n) or (n, 1) is read
as (n,) and said in a note in every format, never a failure and never a cover for wrong
values; any other shape stays bad_output."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from verifier.report import render
from verifier.run.check import run_check

BASE = (ROOT / "examples" / "correct_vectorized.py").read_text()
DB = "delta.sum(axis=0)"


def _impl(tmp_path, db, extra="", train_step=False):
    impl = tmp_path / "impl.py"
    text = BASE.replace(DB, db, 1)
    text = text if train_step else text[: text.index("def train_step")]
    assert text != BASE
    impl.write_text(text.replace("    return J, grads[::-1]", extra + "    return J, grads[::-1]", 1))
    return impl


@pytest.mark.parametrize(
    "db", ["delta.sum(axis=0, keepdims=True)", "delta.sum(axis=0)[:, None]"], ids=["row", "column"]
)
def test_a_row_or_column_bias_gradient_passes_with_a_note_in_every_format(tmp_path, db):
    r = run_check(str(_impl(tmp_path, db)), examples=10, shrink=False)
    assert r.verdict == "pass" and r.failures == ()
    (note,) = r.notes
    assert "bias gradients of shape" in note and "are read as" in note
    for fmt in ("text", "markdown", "html", "junit"):
        assert "bias gradients of shape" in render(r, fmt), fmt
    assert json.loads(render(r, "json"))["notes"] == [note]


def test_the_correct_shape_carries_no_note(tmp_path):
    r = run_check(str(ROOT / "examples" / "correct_vectorized.py"), examples=5)
    assert r.verdict == "pass" and r.notes == ()


def test_a_row_bias_gradient_with_wrong_values_still_fails(tmp_path):
    extra = "    grads = [(dW, 2 * db) for dW, db in grads]\n"
    r = run_check(str(_impl(tmp_path, "delta.sum(axis=0, keepdims=True)", extra)), examples=10)
    assert r.verdict == "fail" and any(f.kind == "mismatch" and f.param == "b" for f in r.failures)


def test_a_train_step_that_broadcasts_a_column_bias_gradient_is_caught(tmp_path):
    # b (n,) - lr db (n, 1) broadcasts to (n, n): the update is wrong, whatever the gradients
    r = run_check(str(_impl(tmp_path, "delta.sum(axis=0)[:, None]", train_step=True)), examples=5, shrink=False)
    assert r.verdict == "fail" and r.failures[0].kind == "bad_output" and r.failures[0].detail.startswith("train_step")


def test_any_other_bias_shape_is_bad_output(tmp_path):
    r = run_check(str(_impl(tmp_path, "np.stack([delta.sum(axis=0)] * 2)")), examples=5, shrink=False)
    assert r.verdict == "fail" and r.failures[0].kind == "bad_output" and "db: shape (2," in r.failures[0].detail
