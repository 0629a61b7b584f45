from typing import NamedTuple

import numpy as np
import pytest
from nets import Spec

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


# --- leaky_relu:SLOPE (DESIGN 2a): a parameter in the name, every reference honours it ------


@pytest.mark.parametrize(
    "name, canonical",
    [
        ("leaky_relu", "leaky_relu"),
        ("leaky_relu:0.01", "leaky_relu"),
        ("leaky_relu:.20", "leaky_relu:0.2"),
        ("leaky_relu:0", "leaky_relu:0.0"),
    ],
)
def test_a_slope_is_spelled_one_way(name, canonical):
    assert model.activation_name(name) == canonical


@pytest.mark.parametrize(
    "name, words",
    [
        ("leaky_relu:-1", "must be a number >= 0"),
        ("leaky_relu:x", "must be a number >= 0"),
        ("leaky_relu:inf", "must be a number >= 0"),
        ("relu:0.2", "only leaky_relu takes a parameter"),
        ("swish", "unknown activation 'swish'"),
    ],
)
def test_a_bad_activation_name_says_the_fix(name, words):
    with pytest.raises(ValueError) as e:
        model.activation_name(name)
    assert words in str(e.value)


def test_the_slope_is_the_derivative_below_zero_and_the_kink_interval():
    act = model.activation("leaky_relu:0.2")
    z = np.array([-2.0, 3.0])
    np.testing.assert_array_equal(act.h(z), [-0.4, 3.0])
    np.testing.assert_array_equal(act.dh(z), [0.2, 1.0])
    assert act.kink == (0.2, 1.0) and model.activation("leaky_relu").kink == (model.LEAKY_SLOPE, 1.0)


@pytest.mark.parametrize("slope", ["0.2", "0.3", "1.5"])
def test_every_reference_agrees_with_jax_on_a_leaky_slope(slope):
    from reference_impls import complex_step, delta_rule, finite_diff, jax_ref

    rng = np.random.default_rng(int(float(slope) * 10))
    name = f"leaky_relu:{slope}"
    sizes, acts = (3, 4, 4, 2), (name, name, "identity")
    params = [(rng.normal(size=(m, n)), 0.5 * rng.normal(size=m)) for n, m in zip(sizes, sizes[1:])]
    X, T = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    spec = Spec(sizes, acts, "sse")
    J, ref = jax_ref.gradients_reverse(params, X, T, spec)
    _, plain = jax_ref.gradients_reverse(
        params, X, T, spec._replace(activations=("leaky_relu", "leaky_relu", "identity"))
    )
    assert not np.allclose(ref[0][0], plain[0][0])  # the slope reaches the JAX program
    for fn in (delta_rule.gradients, complex_step.gradients, jax_ref.gradients_forward):
        Jf, g = fn(params, X, T, spec)
        assert Jf == pytest.approx(J, rel=1e-12)
        for (a, b), (c, d) in zip(g, ref):
            np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(b, d, rtol=1e-10, atol=1e-12)
    fd = finite_diff.gradients_with_error(params, X, T, spec)
    for (a, b), (c, d), (eW, eb) in zip(fd.grads, ref, fd.errors):
        assert np.all(np.abs(a - c) <= eW + 1e-12) and np.all(np.abs(b - d) <= eb + 1e-12)
