import json

import numpy as np
import pytest

from reference_impls import delta_rule, model
from verifier import cli
from verifier.judge.references import REFERENCES, RefOutput
from verifier.run import crosscheck


def test_references_agree_on_generated_networks():
    r = crosscheck.run_crosscheck(examples=60, seed=1)
    assert r.verdict == "pass", [f.detail for f in r.failures]
    assert r.disagreements == 0 and len(r.references) == 5
    assert len(r.pairs) == 10 and all(p.compared > 0 for p in r.pairs)


def _without_h_prime_in(layer):
    """The delta rule with h' dropped when propagating into hidden `layer` (1-based; 0: none),
    through the delta rule's own h' hook."""

    def dh(spec, l, Zl):
        return 1.0 if l == layer else delta_rule.h_prime(spec, l, Zl)

    def run(case):
        p = list(case.params)
        with np.errstate(all="ignore"):
            Z, A = model.forward(p, case.X, case.spec)
            J = model.loss_from_output(Z[-1], A[-1], case.T, case.spec)
            delta = delta_rule.output_delta(Z, A, case.T, case.spec)
            return RefOutput(float(J), delta_rule.backward(p, Z, A, delta, case.spec, dh=dh))

    return run


def test_planted_bug_in_a_reference_exits_2_naming_it_and_its_layer(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(REFERENCES, "delta_rule", _without_h_prime_in(1))
    code = cli.main(["crosscheck", "--examples", "40", "--seed", "1", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 2 and out["verdict"] == "error" and out["disagreements"] > 0
    blamed = {(f["subject"], f["layer"]) for f in out["failures"] if f["kind"] == "reference_disagreement"}
    assert ("delta_rule", 1) in blamed
    assert all(subject == "delta_rule" for subject, _ in blamed)
    # the shrunk case needs a hidden layer to show the bug, and no more than that
    assert all(len(f["case"]["sizes"]) == 3 for f in out["failures"])
    assert (tmp_path / "crosscheck-minimal-case.json").exists()


def test_correct_copy_of_the_same_reference_passes(monkeypatch):
    """The twin of the planted bug: the unmodified copy (dropping h' in no layer) passes."""
    monkeypatch.setitem(REFERENCES, "delta_rule", _without_h_prime_in(0))
    assert crosscheck.run_crosscheck(examples=30, seed=1).verdict == "pass"


def test_a_planted_wrong_second_forward_is_a_loss_mismatch_naming_it(monkeypatch):
    from verifier.judge import references

    right = references.second_forward.loss_value
    monkeypatch.setattr(references.second_forward, "loss_value", lambda *a: right(*a) + 1e-6)
    r = crosscheck.run_crosscheck(examples=5, seed=1)
    rows = [f for f in r.failures if f.kind == "loss_mismatch"]
    assert r.verdict == "error" and rows and {f.subject for f in rows} == {"second_forward"}


def test_kink_entries_are_counted_as_excused_not_hidden():
    r = crosscheck.run_crosscheck(examples=150, seed=2)
    assert r.verdict == "pass"
    assert any(p.excused > 0 for p in r.pairs)


def test_a_crashing_reference_is_a_harness_error(monkeypatch):
    def boom(case):
        raise RuntimeError("planted")

    monkeypatch.setitem(REFERENCES, "complex_step", boom)
    r = crosscheck.run_crosscheck(examples=5, seed=0, shrink=False)
    assert r.verdict == "error" and any(f.kind == "exception" and f.subject == "complex_step" for f in r.failures)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_crosscheck_command_reports_pairs(fmt, capsys):
    assert cli.main(["crosscheck", "--examples", "10", "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        d = json.loads(out)
        assert {"verdict", "seed", "examples", "references", "disagreements", "pairs"} <= set(d)
        assert {"max_abs", "max_rel", "compared", "excused"} <= set(d["pairs"][0])
    else:
        assert "delta_rule / jax_reverse" in out and "excused (kinks)" in out
