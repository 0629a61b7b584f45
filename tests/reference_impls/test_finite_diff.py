"""Finite differences: the worked example, the delta rule within the error estimate, a plain
per-entry loop, and kink flags checked against a plain per-entry forward."""

from __future__ import annotations

import numpy as np
import pytest
from nets import HIDDEN, KINKED, KINKED_FLAGS, LOSSES, WORKED, Spec, assert_flags, integer_case, random_case

from reference_impls import complex_step, delta_rule, finite_diff, model


def entries(params):
    """(layer, which, index) for every entry, which 0 = W, 1 = b."""
    for l, pair in enumerate(params):
        for which, P in enumerate(pair):
            for idx in np.ndindex(P.shape):
                yield l, which, idx


def perturbed(params, l, which, idx, delta):
    out = [[W.copy(), b.copy()] for W, b in params]
    out[l][which][idx] += delta
    return out


def step(w):
    """The documented step: cbrt(eps) max(|w|, 1) rounded to a power of two."""
    return 2.0 ** np.round(np.log2(np.cbrt(np.finfo(float).eps) * max(abs(w), 1.0)))


def test_worked_example():
    result = finite_diff.gradients_with_error(*WORKED)
    assert result.grads[0][0][0, 0] == pytest.approx(0.0214695, abs=1e-7)
    assert result.errors[0][0][0, 0] < 1e-9
    J, grads = delta_rule.gradients(*WORKED)
    assert result.loss == J
    assert abs(result.grads[0][0][0, 0] - grads[0][0][0, 0]) <= result.errors[0][0][0, 0]
    assert finite_diff.gradients(*WORKED)[1][0][0][0, 0] == result.grads[0][0][0, 0]


@pytest.mark.parametrize(
    "out,loss",
    [(o, l) for o in HIDDEN + ("softmax",) for l in LOSSES[:3]]
    + [("sigmoid", "bce"), ("softmax", "softmax_ce"), ("softmax", "bce"), ("sigmoid", "softmax_ce")],
)
def test_batched_loss_is_the_model_loss(out, loss):
    """The stacked loss reduction reproduces model.loss_from_output member by member."""
    rng = np.random.default_rng(3)
    T = rng.random((4, 3)) if loss in ("bce", "softmax_ce") else rng.normal(size=(4, 3))
    spec = Spec((2, 3), (out,), loss)
    ZL = 3 * rng.normal(size=(5, 4, 3))
    YL = model.ACTIVATIONS[out].h(ZL)
    got = finite_diff._sample_losses(ZL, YL, T, spec).sum(axis=-1)
    with np.errstate(all="ignore"):
        want = [model.loss_from_output(z, y, T, spec) for z, y in zip(ZL, YL)]
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_agrees_with_delta_rule_within_its_error():
    rng = np.random.default_rng(20240611)
    seen, ratio, rel = set(), [], []
    for _ in range(1000):
        params, X, T, spec = random_case(rng)
        seen.update(spec.activations + (spec.loss, len(params)))
        result = finite_diff.gradients_with_error(params, X, T, spec)
        J, exact = delta_rule.gradients(params, X, T, spec)
        assert result.loss == pytest.approx(J, rel=1e-14)
        for got, err, want in zip(result.grads, result.errors, exact):
            for g, e, w in zip(got, err, want):
                assert np.all(np.abs(g - w) <= e), (spec, np.max(np.abs(g - w) / e))
                ratio.extend(np.abs(g - w)[e > 0] / e[e > 0])
                if np.max(np.abs(w)) > 0:
                    rel.extend((e / np.max(np.abs(w))).ravel())
    assert seen >= set(HIDDEN + LOSSES + ("softmax", 1, 2, 3, 4, 5))
    assert np.median(rel) < 1e-6  # the estimate is a bound, not a shrug
    assert np.max(ratio) < 1  # restated, for the record of how tight it is


def plain_fd(params, X, T, spec):
    """Per entry: perturb W, call model.loss, Richardson on steps h and h/2."""
    out = [[np.empty(W.shape), np.empty(b.shape)] for W, b in params]
    for l, which, idx in entries(params):
        h = step(params[l][which][idx])
        J = [model.loss(perturbed(params, l, which, idx, s * h), X, T, spec) for s in (1, -1, 0.5, -0.5)]
        D1, D2 = (J[0] - J[1]) / (2 * h), (J[2] - J[3]) / h
        out[l][which][idx] = (4 * D2 - D1) / 3
    return out


def test_structure_aware_equals_plain_loop():
    rng = np.random.default_rng(7)
    for _ in range(100):
        params, X, T, spec = random_case(rng)
        result = finite_diff.gradients_with_error(params, X, T, spec)
        for got, err, want in zip(result.grads, result.errors, plain_fd(params, X, T, spec)):
            for g, e, w in zip(got, err, want):
                assert np.all(np.abs(g - w) <= e), spec


# --- kinks ------------------------------------------------------------------------------

# Z[1][0, 1] = 0 (W1 row 1 is blind to sample 0 but for input 2, which it weights 0) and
# Z[2][:, 0] = A1[:, 0] - A1[:, 2] = 0 (W1 rows 0 and 2 are equal); every value is an integer.


def kink_oracle(params, X, spec):
    """Per entry, by full forwards: does a kinked pre-activation change side, or leave an
    exact 0, at w +- h/256 or w +- h/512 (exact in these integer networks)."""
    kinked = [model.ACTIVATIONS[a].kink is not None for a in spec.activations]
    Z0, _ = model.forward(params, X, spec)
    flags = [[np.zeros(W.shape, bool), np.zeros(b.shape, bool)] for W, b in params]
    for l, which, idx in entries(params):
        h = step(params[l][which][idx]) / 256
        for s in (1, -1, 0.5, -0.5):
            Z, _ = model.forward(perturbed(params, l, which, idx, s * h), X, spec)
            for z, z0, k in zip(Z[1:], Z0[1:], kinked):
                if k and np.any(((z > 0) != (z0 > 0)) | ((z0 == 0) & (z != 0))):
                    flags[l][which][idx] = True
    return flags


def test_kink_flags_on_the_constructed_network():
    result = finite_diff.gradients_with_error(*KINKED)
    assert_flags(result.straddled, KINKED_FLAGS)
    assert_flags(kink_oracle(KINKED[0], KINKED[1], KINKED[3]), KINKED_FLAGS)


def test_kink_entries_cover_both_one_sided_differences():
    params, X, T, spec = KINKED
    result = finite_diff.gradients_with_error(*KINKED)
    _, exact = delta_rule.gradients(*KINKED)  # the z <= 0 side at every kink
    for l, which, idx in entries(params):
        v, e = result.grads[l][which][idx], result.errors[l][which][idx]
        assert abs(v - exact[l][which][idx]) <= e
        if result.straddled[l][which][idx]:
            for d in one_sided(params, X, T, spec, l, which, idx):
                assert v - e <= d <= v + e
            assert e > 0.1  # the two sides really differ here
        else:
            assert e < 1e-6


def one_sided(params, X, T, spec, l, which, idx, h=2.0**-30):
    J0 = model.loss(params, X, T, spec)
    return [s * (model.loss(perturbed(params, l, which, idx, s * h), X, T, spec) - J0) / h for s in (1, -1)]


def test_kink_flags_match_a_plain_forward():
    """Flags equal the plain forward's; flagged entries cover both one-sided differences,
    the others match the delta rule."""
    rng = np.random.default_rng(11)
    flagged = 0
    for _ in range(150):
        params, X, T, spec = integer_case(rng)
        result = finite_diff.gradients_with_error(params, X, T, spec)
        assert_flags(result.straddled, kink_oracle(params, X, spec))
        _, exact = delta_rule.gradients(params, X, T, spec)
        for l, which, idx in entries(params):
            v, e = result.grads[l][which][idx], result.errors[l][which][idx]
            if result.straddled[l][which][idx]:
                flagged += 1
                for d in one_sided(params, X, T, spec, l, which, idx):
                    assert v - e <= d <= v + e
            else:
                assert abs(v - exact[l][which][idx]) <= e
    assert flagged > 50


def test_kinks_in_two_samples_cover_the_backprop_convention():
    """J = (relu(w) - 1)^2 + (relu(-w) + 1)^2 at w = 0: both one-sided derivatives are -2,
    backprop's h'(0) = 0 gives 0; the per-sample interval [-4, 0] holds all three."""
    params = [(np.zeros((1, 1)), np.zeros(1))]
    X, T = np.array([[1.0], [-1.0]]), np.array([[1.0], [-1.0]])
    spec = Spec((1, 1), ("relu",), "sse")
    result = finite_diff.gradients_with_error(params, X, T, spec)
    v, e = result.grads[0][0][0, 0], result.errors[0][0][0, 0]
    assert result.straddled[0][0][0, 0]
    assert v == pytest.approx(-2) and e == pytest.approx(2)
    assert delta_rule.gradients(params, X, T, spec)[1][0][0][0, 0] == 0


def test_a_kink_near_but_not_at_w_is_resolved_by_a_smaller_step():
    """Z[1] = 2e-6: the first step (2^-17 ~ 7.6e-6) crosses 0, h/16 does not."""
    params = [(np.array([[2e-6]]), np.zeros(1)), (np.array([[3.0]]), np.zeros(1))]
    X, T = np.array([[1.0]]), np.array([[1.0]])
    spec = Spec((1, 1, 1), ("relu", "identity"), "sse")
    result = finite_diff.gradients_with_error(params, X, T, spec)
    _, exact = delta_rule.gradients(params, X, T, spec)
    assert not any(w.any() or b.any() for w, b in result.straddled)
    for got, err, want in zip(result.grads, result.errors, exact):
        for g, e, w in zip(got, err, want):
            assert np.all(np.abs(g - w) <= e) and np.all(e < 1e-7)


def test_inputs_are_not_mutated():
    params, X, T, spec = random_case(np.random.default_rng(5))
    copies = [(W.copy(), b.copy()) for W, b in params], X.copy(), T.copy()
    for W, b in params:
        W.flags.writeable = b.flags.writeable = False
    X.flags.writeable = T.flags.writeable = False
    finite_diff.gradients(params, X, T, spec)
    for (W, b), (W0, b0) in zip(params, copies[0]):
        assert np.array_equal(W, W0) and np.array_equal(b, b0)


def test_chunking_changes_nothing(monkeypatch):
    """One entry per chunk against everything in one chunk."""
    rng = np.random.default_rng(13)
    cases = [random_case(rng) for _ in range(20)] + [integer_case(rng) for _ in range(20)]
    whole = [finite_diff.gradients_with_error(*case) for case in cases]
    monkeypatch.setattr(finite_diff, "CHUNK_BYTES", 1)
    for case, want in zip(cases, whole):
        got = finite_diff.gradients_with_error(*case)
        assert_flags(got.straddled, want.straddled)
        for gs, es, ws in zip(got.grads, want.errors, want.grads):
            for g, e, w in zip(gs, es, ws):
                assert np.all(np.abs(g - w) <= e)


def test_public_api():
    assert finite_diff.__all__ == ["FDResult", "gradients", "gradients_with_error"]
    assert finite_diff.FDResult._fields == ("loss", "grads", "errors", "straddled")


def test_softmax_in_a_hidden_layer_is_refused():
    params, X, T, _ = WORKED
    with pytest.raises(ValueError, match="output-layer"):
        finite_diff.gradients(params, X, T, Spec((2, 2, 1), ("softmax", "sigmoid"), "mse"))


# --- rounding: the magnitudes the loss sums, not the value it comes to --------------------


def winning_case(rng, margin):
    """softmax_ce with a one-hot target on each row's largest logit, `margin` above the rest:
    the loss is about e^-margin, the log-sum-exp still sums an exp of 1 per row."""
    spec = Spec((3, 4, 5), ("tanh", "softmax"), "softmax_ce")
    params = [(rng.normal(size=(4, 3)), 0.5 * rng.normal(size=4)), (rng.normal(size=(5, 4)), rng.normal(size=5))]
    params[1][1][rng.integers(5)] += margin
    X = rng.normal(size=(int(rng.integers(1, 5)), 3))
    Z, _ = model.forward(params, X, spec)
    return params, X, np.eye(5)[np.argmax(Z[-1], axis=1)], spec


def near_target_case(rng):
    """sse on a saturated tanh output whose targets are 1e-6 off: the loss is ~1e-12, the
    output y ~ +-1 still rounds at eps |y|."""
    spec = Spec((2, 3), ("tanh",), "sse")
    W, b = 0.3 * rng.normal(size=(3, 2)), 8.0 * rng.choice([-1.0, 1.0], size=3)
    X = rng.normal(size=(int(rng.integers(1, 4)), 2))
    _, A = model.forward([(W, b)], X, spec)
    return [(W, b)], X, A[-1] + 1e-6 * rng.choice([-1.0, 1.0], size=A[-1].shape), spec


def worst_ratio(case, truth):
    """max over entries of |central difference - truth| / error estimate (0/0 counts as 0)."""
    result = finite_diff.gradients_with_error(*case)
    _, want = truth.gradients(*case)
    ratios = []
    for gs, es, ws in zip(result.grads, result.errors, want):
        for g, e, w in zip(gs, es, ws):
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios.append(np.max(np.where(g == w, 0.0, np.abs(g - w) / e)))
    return float(max(ratios))


def loss_scaled(monkeypatch):
    """The bound before it counted the loss's parts: the loss terms for everything the loss
    computes from Z[L], and no rounding of the output y."""

    def terms_only(net, UZ):
        terms, divisor = finite_diff._loss_terms(net.Z[-1], net.A[-1], net.T, net.spec)
        return float(np.sum(np.abs(terms)) / divisor)

    monkeypatch.setattr(finite_diff, "_loss_rounding", terms_only)
    monkeypatch.setattr(finite_diff, "_output_rounding", lambda net: None)


MARGINS = (10, 14, 20)
SMALL_CE = {m: [winning_case(rng, m) for _ in range(8)] for rng in [np.random.default_rng(41)] for m in MARGINS}
NEAR_TARGET = [near_target_case(rng) for rng in [np.random.default_rng(43)] for _ in range(20)]


def test_small_softmax_ce_losses_are_built_as_meant():
    losses = {m: [model.loss(*case) for case in cases] for m, cases in SMALL_CE.items()}
    assert max(losses[10]) < 0.1 and max(losses[14]) < 1e-3 and max(losses[20]) < 1e-6
    assert all(J > 0 for Js in losses.values() for J in Js)


@pytest.mark.parametrize("truth", [complex_step, delta_rule])
def test_small_softmax_ce_losses_are_covered(truth):
    ratios = [worst_ratio(case, truth) for cases in SMALL_CE.values() for case in cases]
    assert max(ratios) <= 1
    assert min(ratios) > 1e-3  # and not by a shrug: each case's worst entry is near its bound


def test_the_loss_scaled_bound_fails_on_small_softmax_ce_losses(monkeypatch):
    """The should-fail twin: bounding the log-sum-exp's rounding by the loss misses it, the
    more the smaller the loss."""
    loss_scaled(monkeypatch)
    ratios = {m: np.array([worst_ratio(case, complex_step) for case in cases]) for m, cases in SMALL_CE.items()}
    assert np.mean(ratios[10] > 1) > 0.5 and np.all(ratios[14] > 1) and np.all(ratios[20] > 100)


def test_a_near_target_output_is_covered():
    ratios = [worst_ratio(case, delta_rule) for case in NEAR_TARGET]
    assert max(ratios) <= 1 and min(ratios) > 1e-3


def test_the_loss_scaled_bound_fails_on_a_near_target_output(monkeypatch):
    """The should-fail twin: y's own rounding, eps |y|, is not scaled by the loss."""
    loss_scaled(monkeypatch)
    assert all(worst_ratio(case, delta_rule) > 1 for case in NEAR_TARGET)


def test_ordinary_softmax_ce_bound_stays_close_to_the_loss_scaled_one(monkeypatch):
    """Where the loss is of order 1 the two bounds are alike: counting the exp-sum, its log
    and the shift costs a small factor, not orders of magnitude; and a typical case's worst
    entry still comes within 100 x of its bound."""
    rng, cases = np.random.default_rng(47), []
    while len(cases) < 60:
        case = random_case(rng)
        if case[3].loss == "softmax_ce":
            cases.append(case)
    assert np.median([worst_ratio(case, delta_rule) for case in cases]) > 1e-2
    new = [finite_diff.gradients_with_error(*case).errors for case in cases]
    loss_scaled(monkeypatch)
    old = [finite_diff.gradients_with_error(*case).errors for case in cases]
    pairs = [(n, o) for a, b in zip(new, old) for pn, po in zip(a, b) for n, o in zip(pn, po)]
    ratio = np.concatenate([n[o > 0] / o[o > 0] for n, o in pairs])
    assert np.all(ratio >= 1) and np.median(ratio) < 4 and ratio.max() < 10
