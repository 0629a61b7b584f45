"""The diagnosis of a run's smallest failing case, on a larger case around it when that one is
too small to give evidence of more than one entry (verifier/run/diagnose.py); planted
implementations checked in process."""

import types
from pathlib import Path

import numpy as np
from planted import at, backprop, mapped, one

import verifier
from verifier.judge import factors
from verifier.records import NetworkSpec
from verifier.run.diagnose import larger_case
from verifier.strategies import case_from_draw

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _planted(fn, acts=("sigmoid", "tanh"), losses=("sse",)):
    fn.SUPPORTED_ACTIVATIONS, fn.SUPPORTED_LOSSES = acts, losses
    return fn


def _mismatches(result):
    return [f for f in result.failures if f.kind == "mismatch"]


def test_the_larger_case_holds_the_minimal_one_and_can_tell_the_factors_apart():
    small = case_from_draw(NetworkSpec((1, 1, 2), ("tanh", "softmax"), "softmax_ce"), 1, "integers", seed=3)
    big = larger_case(small, seed=0)
    assert big.spec.sizes == (3, 3, 3) and big.spec.activations == small.spec.activations
    assert factors.separates(big.X.shape[0], big.spec.sizes[-1])
    for (W, b), (W0, b0) in zip(big.params, small.params):
        assert np.array_equal(W[: W0.shape[0], : W0.shape[1]], W0) and np.array_equal(b[: b0.size], b0)
    assert np.array_equal(big.X[:1, :1], small.X) and np.array_equal(big.T[:1, :2], small.T)
    assert np.allclose(big.T.sum(axis=1), 1)  # the targets stay on the simplex
    # what the options pin does not grow
    pinned = larger_case(small, keep_sizes=True)
    assert pinned.spec.sizes == small.spec.sizes and pinned.X.shape[0] == factors.separating_batch(2)
    assert larger_case(small, keep_sizes=True, keep_batch=True) is None


def test_a_factor_seen_on_one_entry_is_named_from_a_larger_case():
    result = verifier.check(_planted(lambda *a: backprop(*a, dJ=lambda loss, Y, T: Y - T)), examples=50)
    rows = _mismatches(result)
    assert rows and all(f.diagnosis == "scale" for f in rows)
    assert "factor 1/2" in rows[0].detail and "half_sse" in rows[0].detail and "larger case" in rows[0].detail


def test_mean_over_the_batch_is_named_in_the_conventions_terms():
    result = verifier.check(_planted(lambda p, X, T, s: [(w / len(X), b / len(X)) for w, b in backprop(p, X, T, s)]))
    rows = _mismatches(result)
    assert rows[0].diagnosis == "batch_reduction" and "1/B" in rows[0].detail and "over_batch=mean" in rows[0].detail


def test_h_prime_bugs_are_named_end_to_end():
    tanh_for_sigmoid = _planted(lambda *a: backprop(*a, hp=at([1, 2], lambda n, Z, A: 1 - A**2)), acts=("sigmoid",))
    rows = _mismatches(verifier.check(tanh_for_sigmoid, examples=50))
    assert rows[0].diagnosis == "activation_derivative" and "1 - h^2" in rows[0].detail
    db_only = _planted(lambda *a: backprop(*a, hp_b=(1, one)), acts=("tanh",))
    rows = _mismatches(verifier.check(db_only, examples=50, sizes=(3, 4, 2)))
    assert {f.diagnosis for f in rows} == {"activation_derivative"} and "in db only" in rows[0].detail
    diagonal = _planted(lambda *a: backprop(*a, softmax_diag=True), acts=("tanh", "softmax"), losses=("mse",))
    rows = _mismatches(verifier.check(diagonal, examples=50))
    assert rows[0].diagnosis == "softmax_jacobian"


def test_a_label_from_the_larger_case_must_explain_the_minimal_one():
    # two bugs: the sign on small batches, a factor 1/2 on larger ones. The larger case sees a
    # factor, which the minimal case's gradient is not: no label rather than a guess.
    def two_bugs(params, X, T, spec):
        c = -1.0 if len(X) < 3 else 0.5
        return [(c * w, c * b) for w, b in backprop(params, X, T, spec)]

    result = verifier.check(_planted(two_bugs), examples=50)
    rows = _mismatches(result)
    assert rows and rows[0].case["batch"] < 3
    assert rows[0].diagnosis is None and "1/2" not in rows[0].detail


def test_a_correct_implementation_still_passes():
    assert verifier.check(_planted(backprop, acts=("sigmoid", "tanh", "relu")), examples=50).verdict == "pass"


def test_pinned_sizes_are_kept_and_the_batch_grows():
    result = verifier.check(_planted(mapped(lambda g: 2 * g)), examples=30, sizes=(2, 1), layer_activations=("tanh",))
    rows = _mismatches(result)
    assert rows[0].diagnosis == "scale" and "factor 2" in rows[0].detail and "sizes 2-1" in rows[0].detail


def test_a_train_step_ratio_is_named_from_a_larger_case():
    source = (EXAMPLES / "correct_vectorized.py").read_text()
    assert "(W - lr * dW, b - lr * db)" in source
    module = types.ModuleType("twice_the_step")
    exec(
        compile(source.replace("(W - lr * dW, b - lr * db)", "(W - 2 * lr * dW, b - 2 * lr * db)"), "twice", "exec"),
        module.__dict__,
    )
    rows = [f for f in verifier.check(module, examples=30).failures if f.kind == "update_mismatch"]
    assert rows and rows[0].diagnosis == "scale" and "it steps 2 lr" in rows[0].detail
