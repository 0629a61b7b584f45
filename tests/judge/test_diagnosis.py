"""Each label for its signature, and no label without the evidence."""

import numpy as np
import pytest

from reference_impls import delta_rule
from verifier.judge import tolerance as error_model
from verifier.judge.diagnosis import _variant, diagnose
from verifier.records import NetworkSpec
from verifier.strategies import case_from_draw

SPEC = NetworkSpec((3, 3, 2), ("tanh", "sigmoid"), "sse")


def _setup(batch=3):
    case = case_from_draw(SPEC, batch, "normal", seed=5)
    _, g = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)
    return case, g, error_model.judgement(case).tol


def _map(grads, f):
    return [(f(W), f(b)) for W, b in grads]


CASES = {
    "sign": (lambda c, g: _map(g, lambda a: -a), "sign"),
    "scale 2": (lambda c, g: _map(g, lambda a: 2 * a), "scale"),
    "batch mean": (lambda c, g: _map(g, lambda a: a / c.X.shape[0]), "batch_reduction"),
    "zero": (lambda c, g: _map(g, np.zeros_like), "zero"),
    "transposed": (lambda c, g: [(g[0][0].T, g[0][1]), g[1]], "transposed"),
    "missing h'": (lambda c, g: _variant(c, no_dh=1), "activation_derivative"),
    "h' at A": (lambda c, g: _variant(c, dh_at_A=1), "activation_derivative"),
}


@pytest.mark.parametrize("make,label", CASES.values(), ids=CASES.keys())
def test_signature_gets_its_label(make, label):
    case, g, tol = _setup()
    got, _ = diagnose(case, make(case, g), g, tol)
    assert got == label


def test_factor_is_named():
    case, g, tol = _setup()
    assert "1/B" in diagnose(case, _map(g, lambda a: a / 3), g, tol)[1]
    assert "factor 2" in diagnose(case, _map(g, lambda a: 2 * a), g, tol)[1]


def test_random_noise_gets_no_label():
    case, g, tol = _setup()
    rng = np.random.default_rng(0)
    noisy = _map(g, lambda a: a + rng.normal(size=a.shape) * 0.1)
    assert diagnose(case, noisy, g, tol) == (None, None)


def test_precision_only_when_float32_accurate_but_float64_returned():
    case, g, tol = _setup()
    rough = _map(g, lambda a: a.astype(np.float32).astype(np.float64))
    tol32 = error_model.judgement(case, np.float32).tol
    assert diagnose(case, rough, g, tol, dtype_tol32=tol32, returned_dtype="float64")[0] == "precision"
    assert diagnose(case, rough, g, tol, dtype_tol32=tol32, returned_dtype="float32")[0] is None
