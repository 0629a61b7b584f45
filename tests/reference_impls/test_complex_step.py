"""Complex step: the worked example, the delta rule to ~1e-13, a plain per-entry complex
loop, and kink flags checked against a plain complex forward."""

from __future__ import annotations

import numpy as np
import pytest
from nets import HIDDEN, KINKED, KINKED_FLAGS, LOSSES, WORKED, Spec, assert_flags, integer_case, random_case

from reference_impls import complex_step, delta_rule, model


def entries(params):
    for l, pair in enumerate(params):
        for which, P in enumerate(pair):
            for idx in np.ndindex(P.shape):
                yield l, which, idx


def complex_perturbed(params, l, which, idx):
    out = [[W.astype(complex), b.astype(complex)] for W, b in params]
    out[l][which][idx] += 1j * complex_step.H
    return out


def plain_complex_step(params, X, T, spec):
    """Per entry: W + iH, the whole model.loss on complex input, Im / H."""
    out = [[np.empty(W.shape), np.empty(b.shape)] for W, b in params]
    for l, which, idx in entries(params):
        with np.errstate(all="ignore"):
            J = model.loss(complex_perturbed(params, l, which, idx), X, T, spec)
        out[l][which][idx] = np.imag(J) / complex_step.H
    return out


def assert_close(got, want, J):
    """1e-13 of the tensor's magnitude, above a floor of 1e-14 |J|: where a saturated softmax
    makes every gradient entry smaller than float64 can resolve in J, relative error means
    nothing (seen: tensors of 1e-14 with J ~ 1, all methods off by 1e-16)."""
    for gs, ws in zip(got, want):
        for g, w in zip(gs, ws):
            tol = 1e-13 * np.max(np.abs(w), initial=0) + 1e-14 * max(1.0, abs(J))
            assert np.max(np.abs(g - w), initial=0) <= tol, np.max(np.abs(g - w))


def test_worked_example():
    J, grads = complex_step.gradients(*WORKED)
    assert grads[0][0][0, 0] == pytest.approx(0.0214695, abs=1e-7)
    J_dr, exact = delta_rule.gradients(*WORKED)
    assert J == J_dr
    assert_close(grads, exact, J)
    assert not any(w.any() or b.any() for w, b in complex_step.gradients_with_flags(*WORKED).kink)


def test_agrees_with_delta_rule():
    rng = np.random.default_rng(20240611)
    seen = set()
    for _ in range(2000):
        params, X, T, spec = random_case(rng)
        seen.update(spec.activations + (spec.loss, len(params)))
        J, grads = complex_step.gradients(params, X, T, spec)
        J_dr, exact = delta_rule.gradients(params, X, T, spec)
        assert J == J_dr
        assert_close(grads, exact, J)
    assert seen >= set(HIDDEN + LOSSES + ("softmax", 1, 2, 3, 4, 5))


def test_structure_aware_equals_plain_complex_loop():
    rng = np.random.default_rng(7)
    for _ in range(150):
        params, X, T, spec = random_case(rng)
        J, grads = complex_step.gradients(params, X, T, spec)
        assert_close(grads, plain_complex_step(params, X, T, spec), J)


# --- kinks ------------------------------------------------------------------------------

# Z[1][0, 1] = 0 (W1 row 1 is blind to sample 0 but for input 2, which it weights 0) and
# Z[2][:, 0] = A1[:, 0] - A1[:, 2] = 0 (W1 rows 0 and 2 are equal); every value is an integer.


def kink_oracle(params, X, spec):
    """Per entry, by a complex forward: a kinked pre-activation with real part 0 and an
    imaginary part (exact in these integer networks)."""
    kinked = [model.ACTIVATIONS[a].kink is not None for a in spec.activations]
    flags = [[np.zeros(W.shape, bool), np.zeros(b.shape, bool)] for W, b in params]
    for l, which, idx in entries(params):
        Z, _ = model.forward(complex_perturbed(params, l, which, idx), X, spec)
        flags[l][which][idx] = any(k and np.any((z.real == 0) & (z.imag != 0)) for z, k in zip(Z[1:], kinked))
    return flags


def test_kink_flags_on_the_constructed_network():
    result = complex_step.gradients_with_flags(*KINKED)
    assert_flags(result.kink, KINKED_FLAGS)
    assert_flags(kink_oracle(KINKED[0], KINKED[1], KINKED[3]), KINKED_FLAGS)
    _, exact = delta_rule.gradients(*KINKED)  # the same z <= 0 convention
    assert_close(result.grads, exact, result.loss)


def test_kink_flags_match_a_plain_complex_forward():
    rng = np.random.default_rng(11)
    flagged = 0
    for _ in range(200):
        params, X, T, spec = integer_case(rng)
        result = complex_step.gradients_with_flags(params, X, T, spec)
        assert_flags(result.kink, kink_oracle(params, X, spec))
        flagged += sum(int(w.sum() + b.sum()) for w, b in result.kink)
        _, exact = delta_rule.gradients(params, X, T, spec)
        assert_close(result.grads, exact, result.loss)
        assert_close(result.grads, plain_complex_step(params, X, T, spec), result.loss)
    assert flagged > 50


def test_inputs_are_not_mutated():
    params, X, T, spec = random_case(np.random.default_rng(5))
    copies = [(W.copy(), b.copy()) for W, b in params]
    for W, b in params:
        W.flags.writeable = b.flags.writeable = False
    X.flags.writeable = T.flags.writeable = False
    complex_step.gradients(params, X, T, spec)
    for (W, b), (W0, b0) in zip(params, copies):
        assert np.array_equal(W, W0) and np.array_equal(b, b0)


def test_chunking_changes_nothing(monkeypatch):
    """One entry per chunk against everything in one chunk."""
    rng = np.random.default_rng(13)
    cases = [random_case(rng) for _ in range(20)] + [integer_case(rng) for _ in range(20)]
    whole = [complex_step.gradients_with_flags(*case) for case in cases]
    monkeypatch.setattr(complex_step, "CHUNK_BYTES", 1)
    for case, want in zip(cases, whole):
        got = complex_step.gradients_with_flags(*case)
        assert_flags(got.kink, want.kink)
        assert_close(got.grads, want.grads, want.loss)


def test_public_api():
    assert complex_step.__all__ == [
        "CSResult",
        "carry",
        "gradients",
        "gradients_by_layer",
        "gradients_with_flags",
        "output_gradient",
        "slopes",
    ]
    assert complex_step.CSResult._fields == ("loss", "grads", "kink")


def test_softmax_in_a_hidden_layer_is_refused():
    params, X, T, _ = WORKED
    with pytest.raises(ValueError, match="output-layer"):
        complex_step.gradients(params, X, T, Spec((2, 2, 1), ("softmax", "sigmoid"), "mse"))


def test_gradients_by_layer_are_the_same_values_a_layer_at_a_time():
    rng = np.random.default_rng(7)
    for _ in range(200):
        params, X, T, spec = random_case(rng)
        J, eager = complex_step.gradients(params, X, T, spec)
        J_lazy, lazy = complex_step.gradients_by_layer(params, X, T, spec)
        assert J_lazy == J and len(lazy) == len(eager)
        for l in [*range(len(eager)), -1, 0]:  # in order, from the end, and back to the start
            for got, want in zip(lazy[l], eager[l]):
                np.testing.assert_array_equal(got, want)
        assert [list(map(np.shape, g)) for g in lazy] == [list(map(np.shape, g)) for g in eager]
    with pytest.raises(IndexError):
        lazy[len(eager)]
