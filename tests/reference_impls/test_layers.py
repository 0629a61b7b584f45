"""The numpy layer references against their JAX twins (jax.vjp of a forward written again),
on generated layer calls; and planted wrong references that the cross-check catches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from reference_impls import jax_layers
from reference_impls import layers as ref
from verifier.layer_strategies import KNOWN_LOSSES, KNOWN_PAIRS, layer_cases


def _agree(a, b, centre_radius=None):
    if centre_radius is not None:
        c, r = centre_radius
        return np.all(np.abs(b - c) <= r + 1e-12 * (1 + np.abs(c)))
    return np.allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", KNOWN_PAIRS)
def test_pair_references_agree_with_jax(name):
    @settings(max_examples=20)  # each new shape compiles again in JAX: seconds, not minutes
    @given(layer_cases(name, regimes=("normal", "saturated", "integers")))
    def run(case):
        x, *params = (a for _, a in case.args)
        out = ref.pair_forward(name, x, *params)
        dout = case.dout_pool[: out.size].reshape(out.shape)
        ours = ref.pair_grads(name, x, params, dout)
        theirs = jax_layers.pair_grads(name, x, params, dout)
        for (c, r), t in zip(ours, theirs):
            assert _agree(c, t, (c, r) if r.any() else None) or _agree(c, t)

    run()


@pytest.mark.parametrize("name", KNOWN_LOSSES)
def test_loss_references_agree_with_jax(name):
    @settings(max_examples=20)
    @given(layer_cases(name, loss=True))
    def run(case):
        x, y = (a for _, a in case.args)
        loss, [(c, r)] = ref.LOSSES[name](x, y)
        jloss, jdx = jax_layers.loss_grads(name, x, y)
        assert np.isclose(loss, jloss, rtol=1e-12, atol=1e-12)
        assert np.all(np.abs(jdx - c) <= r + 1e-12)

    run()


def test_a_planted_wrong_reference_is_caught():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    w, b = np.array([[1.0, 2.0], [3.0, -1.0]]), np.zeros(2)
    dout = np.ones((2, 2))
    wrong_dx = dout @ w  # not w.T
    assert not _agree(wrong_dx, jax_layers.pair_grads("affine", x, [w, b], dout)[0])
    wrong_svm = ref.svm_loss(x, np.array([0, 0]))[1][0][0] * 2
    assert not np.allclose(wrong_svm, jax_layers.loss_grads("svm_loss", x, np.array([0, 0]))[1])
