"""The second forward: the same loss value as the delta rule's forward (reference_impls/model.py)
and as JAX's, on generated cases of every activation, loss and regime, while sharing no code
with either; a planted wrong loss in it is a harness error, never the user's."""

import ast
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

from reference_impls import model, second_forward
from verifier import casefile
from verifier.errors import ReferenceDisagreement
from verifier.judge import references
from verifier.judge.agreement import losses_agree
from verifier.judge.fast import FastOracle
from verifier.judge.oracle import Oracle
from verifier.judge.tolerance import judgement
from verifier.records import NetworkSpec
from verifier.strategies import REGIMES, case_from_draw, cases, compatible

HIDDEN = model.HIDDEN_ACTIVATIONS
PAIRS = [(out, loss) for out in model.ACTIVATION_NAMES for loss in model.LOSS_NAMES if compatible(out, loss)]


def both(c):
    return float(model.loss(list(c.params), c.X, c.T, c.spec)), second_forward.loss_value(
        list(c.params), c.X, c.T, c.spec
    )


@given(cases())
def test_agrees_with_the_delta_rules_forward_on_generated_cases(c):
    a, b = both(c)
    assert losses_agree(a, b, judgement(c)), (a, b, c.spec)


@pytest.mark.parametrize("out, loss", PAIRS)
@pytest.mark.parametrize("regime", REGIMES)
def test_agrees_with_the_delta_rule_and_jax_for_every_activation_and_loss(out, loss, regime):
    from reference_impls import jax_ref

    for k, hidden in enumerate(HIDDEN):
        spec = NetworkSpec((3, 4, 4, 3), (hidden, HIDDEN[-1 - k], out), loss)
        c = case_from_draw(spec, 4, regime, seed=k, layer=1 if regime == "saturated" else 0)
        a, b = both(c)
        j = float(jax_ref.loss_value(list(c.params), c.X, c.T, c.spec))
        jd = judgement(c)
        assert losses_agree(a, b, jd) and losses_agree(j, b, jd), (a, b, j, spec, regime)


def test_every_activation_and_loss_of_the_model_has_its_own_formula_here():
    assert set(second_forward.UNITS) == set(model.ACTIVATION_NAMES)
    assert set(second_forward.CONVENTIONS) == set(model.LOSS_NAMES)


CONVENTION_CASES = [
    "squared,factor=0.5,over_outputs=mean,over_batch=mean,l2=1e-2,l2_factor=0.5,l2_over_batch=mean",
    "squared,over_batch=mean,l2=0.3,l2_bias=true",
    "bce,over_outputs=sum,over_batch=sum,l2=0.05",
    "ce,over_batch=sum,l2=1e-3,l2_factor=0.5,l2_bias=true",
]


@pytest.mark.parametrize("loss", CONVENTION_CASES)
@pytest.mark.parametrize("hidden", ["tanh", "leaky_relu:0.2"])
def test_agrees_with_the_delta_rule_on_conventions_with_l2_and_slopes(loss, hidden):
    out = {"squared": "identity", "bce": "sigmoid", "ce": "softmax"}[loss.split(",")[0]]
    for seed in range(3):
        spec = NetworkSpec((3, 4, 3), (hidden, out), loss)
        c = case_from_draw(spec, 5, "normal", seed=seed)
        a, b = both(c)
        assert model.penalty(list(c.params), c.spec, len(c.X)) > 0
        assert losses_agree(a, b, judgement(c)), (a, b, spec)


def test_a_missing_l2_term_here_would_be_caught():
    """The twin: the same case without its penalty in this forward is a disagreement."""
    spec = NetworkSpec((3, 4, 3), ("tanh", "identity"), CONVENTION_CASES[1])
    c = case_from_draw(spec, 5, "normal", seed=0)
    plain = NetworkSpec(spec.sizes, spec.activations, "squared,over_batch=mean")
    a = float(model.loss(list(c.params), c.X, c.T, c.spec))
    assert not losses_agree(a, second_forward.loss_value(list(c.params), c.X, c.T, plain), judgement(c))


def test_integer_labels_read_as_one_hot_rows():
    spec = NetworkSpec((3, 4, 3), ("tanh", "softmax"), "softmax_ce")
    c = case_from_draw(spec, 5, "normal", seed=1)
    labels = np.argmax(c.T, axis=1)
    onehot = np.eye(3)[labels]
    assert second_forward.loss_value(list(c.params), c.X, labels, spec) == second_forward.loss_value(
        list(c.params), c.X, onehot, spec
    )


def test_it_imports_numpy_only():
    """No code shared with the model, the delta rule, JAX or the harness: numpy, and the
    conventions' parser (DESIGN 2a's spelling, data only, no formula of a loss)."""
    tree = ast.parse(Path(second_forward.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "." for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert names <= {"numpy", "__future__", "."}
    relative = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module is None for a in n.names}
    assert relative <= {"conventions"}


def test_saturated_and_tiny_values_stay_accurate():
    z = np.array([-800.0, -40.0, -1e-300, 0.0, 1e-300, 40.0, 800.0])
    assert np.all(np.isfinite(second_forward.UNITS["sigmoid"](z)))
    np.testing.assert_allclose(second_forward.UNITS["tanh"](z), np.tanh(z), rtol=1e-15)
    np.testing.assert_allclose(second_forward.UNITS["softplus"](z), np.logaddexp(0, z), rtol=1e-15)
    assert second_forward.UNITS["tanh"](np.array(-0.0)) == 0.0


@pytest.mark.parametrize("oracle", [Oracle, lambda c: FastOracle(c, 0)], ids=["full", "fast"])
def test_a_planted_wrong_second_forward_is_a_harness_error(oracle, monkeypatch):
    """Off by 1e-9 relative: both modes refuse to judge; the right one lets them."""
    worked = casefile.from_dict(casefile.WORKED_EXAMPLE)
    oracle(worked)  # the should-pass twin
    right = references.second_forward.loss_value
    monkeypatch.setattr(references.second_forward, "loss_value", lambda *a: right(*a) * (1 + 1e-9))
    with pytest.raises(ReferenceDisagreement, match="loss values differ: delta_rule .*, second_forward"):
        oracle(worked)


def test_a_loss_that_overflows_in_both_forwards_is_not_a_disagreement():
    spec = NetworkSpec((2, 2, 1), ("identity", "identity"), "sse")
    c = case_from_draw(spec, 1, "normal", 0)
    c = casefile.from_dict({**casefile.to_dict(c), "X": [[1e200, 1e200]]})
    a, b = both(c)
    assert a == b == np.inf and losses_agree(a, b, judgement(c))
