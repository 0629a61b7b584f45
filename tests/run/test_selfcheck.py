"""Self mode for networks (DESIGN 3, --against self|both): a gradient n_outputs times that of
its own loss fails with `scale` and the factor, passes in model mode under the convention its
gradient has; its correct twin passes in self mode; `both` names the forward's factor."""

from __future__ import annotations

import pytest
from conftest import EXAMPLES

from verifier.errors import ImplementationError
from verifier.records import RunConfig
from verifier.report import render
from verifier.run.contract import run_file

BUG = EXAMPLES / "bug_outputs_factor_self.py"
PINNED = dict(examples=15, cases_dir=None, sizes=(3, 4, 3))


def correct_twin(tmp_path):
    path = tmp_path / "twin.py"
    path.write_text(BUG.read_text().replace("((Y - T) ** 2).mean(axis=1).sum()", "((Y - T) ** 2).sum()"))
    return path


def test_n_outputs_times_its_own_gradient_fails_in_self_mode_with_the_factor():
    result = run_file(str(BUG), RunConfig(against="self", **PINNED))
    assert result.verdict == "fail"
    rows = [f for f in result.failures if f.kind == "mismatch"]
    assert rows and all(f.diagnosis == "scale" for f in rows), render(result, "text")
    assert all("the gradient is n_L" in f.detail for f in rows)
    assert result.references[0].startswith("self:")


def test_it_passes_in_model_mode_under_the_convention_its_gradient_has():
    result = run_file(str(BUG), RunConfig(examples=30, cases_dir=None))
    assert result.verdict == "pass", render(result, "text")


def test_the_correct_twin_passes_in_self_mode(tmp_path):
    result = run_file(str(correct_twin(tmp_path)), RunConfig(against="self", examples=40, cases_dir=None))
    assert result.verdict == "pass", render(result, "text")


def test_both_reports_the_forward_mismatch_and_its_factor():
    result = run_file(str(BUG), RunConfig(against="both", **PINNED))
    fm = [f for f in result.failures if f.kind == "forward_mismatch"]
    assert fm and "1/n_L" in fm[0].detail, render(result, "text")


def test_the_correct_twin_has_no_forward_mismatch(tmp_path):
    result = run_file(str(correct_twin(tmp_path)), RunConfig(against="both", **PINNED))
    assert result.verdict == "pass", render(result, "text")


def test_self_mode_without_loss_says_what_to_define():
    with pytest.raises(ImplementationError, match="defines no loss"):
        run_file(str(EXAMPLES / "correct_vectorized.py"), RunConfig(against="self", examples=5, cases_dir=None))


def test_a_loss_that_is_not_complex_safe_is_judged_by_central_differences(tmp_path):
    path = tmp_path / "real_only.py"
    text = BUG.read_text().replace("((Y - T) ** 2).mean(axis=1).sum()", "float(np.real(((Y - T) ** 2).sum()))")
    path.write_text(text)
    result = run_file(str(path), RunConfig(against="self", **PINNED))
    assert result.verdict == "pass" and result.references == ("self:central_diff",), render(result, "text")


def test_the_factor_is_confirmed_as_a_hypothesis_and_every_entry_judged_against_it():
    """The n_L-times gradient: its fix (1/n_L times it) passes a fresh directional test, so
    the entries are judged against it and no tensor is evaluated entry by entry."""
    result = run_file(str(BUG), RunConfig(against="self", **PINNED))
    rows = [f for f in result.failures if f.kind == "mismatch"]
    assert rows and all("entries judged against 1/3 times the returned gradient" in f.detail for f in rows), render(
        result, "text"
    )
    counts = result.extra["self_judged"]
    assert counts["hypothesis"] > 0 and counts["entries"] == 0, counts


def test_one_wrong_entry_rejects_every_hypothesis_and_is_found_entry_by_entry(tmp_path):
    path = tmp_path / "one_entry.py"
    old = "grads.append((delta.T @ A[l - 1], delta.sum(axis=0)))"
    new = "db = delta.sum(axis=0)\n        db[0] += 0.5 if l == 1 else 0.0\n        grads.append((delta.T @ A[l - 1], db))"
    path.write_text(correct_twin(tmp_path).read_text().replace(old, new))
    result = run_file(str(path), RunConfig(against="self", **PINNED))
    rows = [f for f in result.failures if f.kind == "mismatch"]
    assert [(f.layer, f.param, f.index) for f in rows] == [(1, "b", (0,))], render(result, "text")
    assert rows[0].detail.startswith("1 of ") and "entries judged entry by entry" in rows[0].detail, rows[0].detail
    assert result.extra["self_judged"]["entries"] > 0


def test_the_correct_twin_is_judged_by_directional_derivatives_alone(tmp_path):
    result = run_file(str(correct_twin(tmp_path)), RunConfig(against="self", **PINNED))
    assert result.verdict == "pass", render(result, "text")
    counts = result.extra["self_judged"]
    assert counts["direction"] > 0 and counts["hypothesis"] == counts["entries"] == 0, counts
