"""Loss conventions (DESIGN section 2a): parsing, canonical names, and every reference against
JAX on generated cases, one convention key at a time."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from nets import WORKED, Spec

from reference_impls import complex_step, conventions, delta_rule, finite_diff, jax_ref
from reference_impls.conventions import Convention


def test_presets_keep_their_names_and_values():
    assert conventions.parse("mse") == Convention("squared", over_outputs="mean", over_batch="mean")
    assert conventions.parse("softmax_ce") == Convention("ce", over_batch="mean")
    assert [conventions.name(c) for c in conventions.PRESETS.values()] == list(conventions.PRESETS)
    params, X, T, spec = WORKED
    for fn in (delta_rule.gradients, complex_step.gradients, jax_ref.gradients_reverse):
        assert fn(params, X, T, spec)[1][0][0][0, 0] == pytest.approx(0.0214695, abs=5e-8)
    spelled = spec._replace(loss=conventions.name({"kind": "squared", "over_outputs": "mean", "over_batch": "mean"}))
    assert delta_rule.gradients(params, X, T, spelled)[1][0][0][0, 0] == pytest.approx(0.0214695, abs=5e-8)


def test_the_three_spellings_are_one_convention():
    text = "squared,factor=0.5,over_outputs=mean,over_batch=mean,l2=1e-4,l2_factor=0.5,l2_over_batch=mean"
    mapping = {
        "kind": "squared",
        "factor": 0.5,
        "over_outputs": "mean",
        "over_batch": "mean",
        "l2": 1e-4,
        "l2_factor": 0.5,
        "l2_over_batch": "mean",
    }
    assert conventions.parse(text) == conventions.parse(mapping) == conventions.parse(conventions.parse(mapping))
    assert conventions.name(mapping) == text.replace("1e-4", "0.0001")  # numbers spelled by repr
    assert conventions.parse("squared") == conventions.PRESETS["sse"] and conventions.name("squared") == "sse"
    assert conventions.name("mse,l2=0.01") == "squared,over_outputs=mean,over_batch=mean,l2=0.01"


@pytest.mark.parametrize(
    "kind, factor, outputs, batch, l2, l2f, l2b, bias",
    list(
        itertools.product(
            conventions.KINDS,
            (1.0, 0.5, 3.0),
            ("sum", "mean"),
            ("sum", "mean"),
            (0.0, 0.1),
            (1.0, 0.5),
            ("none", "mean"),
            (False, True),
        )
    )[::7],
)
def test_every_name_parses_back_to_its_convention(kind, factor, outputs, batch, l2, l2f, l2b, bias):
    c = Convention(kind, factor, outputs, batch, l2, l2f, l2b, bias)
    assert conventions.parse(conventions.name(c)) == c
    assert conventions.parse(conventions.as_dict(c)) == c


@pytest.mark.parametrize(
    "loss, words",
    [
        ("l2", "unknown loss 'l2'; choose from the presets sse"),
        ("squared,factor=0", "factor='0': give a finite number > 0"),
        ("squared,factor=-1", "give a finite number > 0"),
        ("squared,over_batch=avg", "over_batch='avg': choose from sum, mean"),
        ("squared,l2=-1", "l2='-1': give a finite number >= 0"),
        ("squared,l2_factor=2", "give 1 (lambda sum W^2) or 0.5"),
        ("squared,l2_over_batch=sum", "choose from none, mean"),
        ("squared,l2_bias=maybe", "give true or false"),
        ("squared,lambda=1", "unknown loss key 'lambda'; the keys are kind, factor"),
        ("squared,l2", "write key=value"),
        ({"factor": 1}, "needs a kind"),
        (3, "give a name, a string or a mapping"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_a_bad_loss_says_the_fix(loss, words):
    with pytest.raises(ValueError) as e:
        conventions.parse(loss)
    assert words in str(e.value)


# --- every reference against JAX, one key at a time ----------------------------------------

BASE = {"squared": "sse", "bce": "bce", "ce": "softmax_ce"}
VARIANTS = {  # key -> the conventions that vary it (kind sets its output activation)
    "kind": ["squared", "bce,over_outputs=sum,over_batch=sum", "ce,over_batch=sum"],
    "factor": ["squared,factor=0.5", "bce,factor=3", "ce,factor=0.25"],
    "over_outputs": ["squared,over_outputs=mean", "bce,over_outputs=sum", "ce,over_outputs=mean"],
    "over_batch": ["squared,over_batch=mean", "bce,over_batch=sum", "ce,over_batch=sum"],
    "l2": ["squared,l2=0.3", "bce,l2=0.05", "ce,l2=1e-3"],
    "l2_factor": ["squared,l2=0.3,l2_factor=0.5", "bce,l2=0.2,l2_factor=0.5", "ce,l2=0.1,l2_factor=0.5"],
    "l2_over_batch": [
        "squared,l2=0.3,l2_over_batch=mean",
        "bce,l2=0.2,l2_over_batch=mean",
        "ce,l2=1,l2_over_batch=mean",
    ],
    "l2_bias": ["squared,l2=0.3,l2_bias=true", "bce,l2=0.2,l2_bias=true", "ce,l2=0.1,l2_bias=true,l2_over_batch=mean"],
}


def _case(rng, loss):
    kind = conventions.parse(loss).kind
    depth = int(rng.integers(1, 4))
    sizes = [int(n) for n in rng.integers(1, 6, size=depth + 1)]
    acts = [str(rng.choice(["tanh", "sigmoid", "softplus", "identity"])) for _ in range(depth)]
    if kind == "bce":
        acts[-1] = "sigmoid"
    if kind == "ce":
        acts[-1], sizes[-1] = "softmax", max(sizes[-1], 2)
    params = [(rng.normal(size=(m, n)) / np.sqrt(n), 0.5 * rng.normal(size=m)) for n, m in zip(sizes, sizes[1:])]
    B = int(rng.integers(1, 6))
    X = rng.normal(size=(B, sizes[0]))
    T = rng.dirichlet(np.ones(sizes[-1]), B) if kind == "ce" else rng.uniform(size=(B, sizes[-1]))
    return params, X, T, Spec(tuple(sizes), tuple(acts), conventions.name(loss))


def _close(a, b, tol):
    for (aW, ab), (bW, bb), (tW, tb) in zip(a, b, tol):
        np.testing.assert_array_less(np.abs(aW - bW), tW)
        np.testing.assert_array_less(np.abs(ab - bb), tb)


@pytest.mark.parametrize("key", list(VARIANTS))
def test_every_reference_agrees_with_jax_on_each_convention_key(key):
    rng = np.random.default_rng(abs(hash(key)) % 2**32)
    for loss in VARIANTS[key]:
        assert conventions.name(loss) != BASE[conventions.parse(loss).kind] or key == "kind"
        for _ in range(3):
            params, X, T, spec = _case(rng, loss)
            J, ref = jax_ref.gradients_reverse(params, X, T, spec)
            scale = max(1.0, abs(J))
            tight = [(1e-12 * scale + 1e-12 * np.abs(W), 1e-12 * scale + 1e-12 * np.abs(b)) for W, b in ref]
            for fn in (delta_rule.gradients, complex_step.gradients, jax_ref.gradients_forward):
                Jf, g = fn(params, X, T, spec)
                assert Jf == pytest.approx(J, rel=1e-12, abs=1e-14), (fn.__module__, loss)
                _close(g, ref, tight)
            fd = finite_diff.gradients_with_error(params, X, T, spec)
            assert fd.loss == pytest.approx(J, rel=1e-12, abs=1e-14)
            _close(fd.grads, ref, [(eW + 1e-13, eb + 1e-13) for eW, eb in fd.errors])


def test_the_penalty_changes_the_gradient_by_its_own_derivative():
    """Against the same network without the penalty: 2 c W on every weight, 2 c b on biases
    only with l2_bias, c = l2 l2_factor / B with l2_over_batch=mean."""
    rng = np.random.default_rng(5)
    params, X, T, spec = _case(rng, "squared,l2=0.4,l2_factor=0.5,l2_over_batch=mean,l2_bias=true")
    plain = spec._replace(loss="sse")
    c = 0.4 * 0.5 / len(X)
    for fn in (delta_rule.gradients, complex_step.gradients, jax_ref.gradients_reverse):
        (J, g), (J0, g0) = fn(params, X, T, spec), fn(params, X, T, plain)
        squares = sum(np.sum(W * W) + np.sum(b * b) for W, b in params)
        assert J - J0 == pytest.approx(c * squares, rel=1e-10)
        for (dW, db), (dW0, db0), (W, b) in zip(g, g0, params):
            np.testing.assert_allclose(dW - dW0, 2 * c * W, rtol=1e-9, atol=1e-13)
            np.testing.assert_allclose(db - db0, 2 * c * b, rtol=1e-9, atol=1e-13)


def test_the_finite_difference_error_bound_covers_a_large_penalty():
    """A penalty far larger than the data term rounds every evaluation at eps times it: the
    error estimate must grow with it (and still cover the truth)."""
    rng = np.random.default_rng(9)
    params, X, T, spec = _case(rng, "squared,l2=1e4")
    small = finite_diff.gradients_with_error(params, X, T, spec._replace(loss="sse"))
    big = finite_diff.gradients_with_error(params, X, T, spec)
    _, exact = delta_rule.gradients(params, X, T, spec)
    assert max(e.max() for e, _ in big.errors) > 10 * max(e.max() for e, _ in small.errors)
    _close(big.grads, exact, [(eW + 1e-13, eb + 1e-13) for eW, eb in big.errors])
