from typing import NamedTuple

import numpy as np
import pytest

from reference_impls import model

Z = np.concatenate([np.linspace(-40, 40, 161), [-1e-3, 1e-3, 0.5, -700, 700]])


@pytest.mark.parametrize("name", ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus"])
def test_derivative_sits_beside_its_function(name):
    """h' is the derivative of h: complex step through h itself, away from the kink."""
    act = model.ACTIVATIONS[name]
    z = Z[Z != 0]
    with np.errstate(all="ignore"):
        cs = np.imag(act.h(z + 1e-30j)) / 1e-30
    np.testing.assert_allclose(act.dh(z), cs, rtol=1e-13, atol=1e-300)


def test_textbook_forms_of_the_design_table():
    s = model.sigmoid(Z)
    np.testing.assert_allclose(model.d_sigmoid(Z), s * (1 - s), atol=4e-16)
    np.testing.assert_allclose(model.d_tanh(Z), 1 - np.tanh(Z) ** 2, atol=4e-16)
    np.testing.assert_allclose(model.d_softplus(Z), s)
    assert np.all(np.isfinite(model.softplus(Z))) and model.softplus(np.array(700.0)) == 700.0


def test_kink_conventions():
    assert model.d_relu(np.array(0.0)) == 0.0 and model.d_leaky_relu(np.array(0.0)) == 0.01
    assert model.ACTIVATIONS["relu"].kink == (0.0, 1.0)
    assert model.ACTIVATIONS["leaky_relu"].kink == (0.01, 1.0)
    assert model.ACTIVATIONS["tanh"].kink is None


@pytest.mark.parametrize("loss", ["sse", "half_sse", "mse", "bce", "softmax_ce"])
def test_loss_derivative_sits_beside_its_loss(loss):
    rng = np.random.default_rng(0)
    Y = rng.uniform(0.1, 0.9, (3, 4))
    T = rng.dirichlet(np.ones(4), 3) if loss == "softmax_ce" else rng.uniform(size=(3, 4))
    fn = model.LOSSES[loss]
    E = np.zeros(Y.shape, complex)
    E[1, 2] = 1e-30j
    cs = np.imag(fn.J(Y + E, T)) / 1e-30
    assert fn.dJ(Y, T)[1, 2] == pytest.approx(cs, rel=1e-12)


class _S(NamedTuple):
    activations: tuple
    loss: str


def test_fused_forms_equal_the_plain_ones_where_both_are_finite():
    rng = np.random.default_rng(1)
    Zl = rng.normal(size=(3, 4)) * 3
    T = rng.uniform(size=(3, 4))
    Y = model.sigmoid(Zl)
    bce = _S(("sigmoid",), "bce")
    assert model.fused_loss(Zl, T, bce) == pytest.approx(model.LOSSES["bce"].J(Y, T), rel=1e-13)
    np.testing.assert_allclose(
        model.fused_delta(Y, T, bce), model.LOSSES["bce"].dJ(Y, T) * model.d_sigmoid(Zl), rtol=1e-12
    )
    T = rng.dirichlet(np.ones(4), 3)
    Y = model.softmax(Zl)
    ce = _S(("softmax",), "softmax_ce")
    assert model.fused_loss(Zl, T, ce) == pytest.approx(model.LOSSES["softmax_ce"].J(Y, T), rel=1e-13)
    np.testing.assert_allclose(
        model.fused_delta(Y, T, ce),
        model.softmax_vjp(Y, model.LOSSES["softmax_ce"].dJ(Y, T)),
        rtol=1e-12,
        atol=1e-15,
    )


def test_saturated_bce_stays_finite():
    Zl = np.array([[60.0, -60.0]])
    T = np.array([[0.3, 0.7]])
    assert np.isfinite(model.fused_loss(Zl, T, _S(("sigmoid",), "bce")))


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softplus"])
def test_complex_step_through_h_at_exactly_zero(name):
    """The branch at Re z = 0 must pair matching halves; the cross-check caught a flipped
    softplus derivative there once."""
    act = model.ACTIVATIONS[name]
    assert np.imag(act.h(np.array(1e-30j))) / 1e-30 == pytest.approx(float(act.dh(np.array(0.0))), rel=1e-14)
