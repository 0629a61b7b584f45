"""Self mode's judgement (verifier/judge/selfdiff.py, selfdir.py, selfhypothesis.py) on a small
function evaluated in this process: a correct gradient passes on one batch of directional
derivatives; a wrong one whose fix is a hypothesis (a factor, the sign, the transpose) is judged
entry by entry against the confirmed guess without per-entry evaluations; a wrong one no
hypothesis explains (one wrong entry, a tensor left at 0) falls back to per-entry evaluation
and finds exactly its wrong entries."""

from __future__ import annotations

import numpy as np
import pytest

from verifier.judge import selfdiff, selfdir, selfhypothesis

RNG = np.random.default_rng(3)
X = RNG.normal(size=(5, 4))
W0 = RNG.normal(size=(4, 4))
B0 = RNG.normal(size=4)


def f(W, b, real_only=False):
    """J = sum tanh(X W^T + b)^2 (complex-safe unless real_only)."""
    A = np.tanh(X @ W.T + b)
    J = np.sum(A**2)
    return float(np.real(J)) if real_only else J


def right():
    """dJ/dW, dJ/db: dJ/dZ = 2 A (1 - A^2)."""
    A = np.tanh(X @ W0.T + B0)
    dZ = 2 * A * (1 - A**2)
    return [dZ.T @ X, dZ.sum(axis=0)]


def evaluator(real_only=False, calls=None, fn=f, base=(W0, B0)):
    """evaluate(points, directions) as the sandbox does it: fn at base[k] + t v (or + t at one entry)."""

    def evaluate(points, dirs):
        if calls is not None:
            calls.append(len(points))
        rows = []
        for k, d, j, t in points:
            args = [a.astype(complex) if isinstance(t, complex) else a.copy() for a in base]
            if d >= 0:
                args[k] = args[k] + t * dirs[d]
            else:
                flat = args[k].reshape(-1).copy()
                flat[j] += t
                args[k] = flat.reshape(base[k].shape)
            rows.append([fn(*args, real_only=real_only)])
        return np.array(rows)

    return evaluate


def check(grads, real_only=False, calls=None, seed=0):
    return selfdiff.check(evaluator(real_only, calls), [W0, B0], grads, ["W", "b"], lambda r: r[:, 0], seed=seed)


@pytest.mark.parametrize("real_only", [False, True], ids=["complex_step", "central_diff"])
def test_a_right_gradient_passes_on_one_batch_of_directional_derivatives(real_only):
    calls = []
    res = check(right(), real_only, calls)
    assert res.method == ("central_diff" if real_only else "complex_step")
    assert [v.failed for v in res.verdicts] == [0, 0]
    assert res.how == {0: selfdiff.DIRECTIONAL, 1: selfdiff.DIRECTIONAL}
    assert calls == [2 + 2 * (selfdir.STEPS + selfdir.LADDER)]


@pytest.mark.parametrize(
    ("name", "wrong", "what"),
    [
        ("half", lambda g: [0.5 * g[0], 0.5 * g[1]], "2 times"),
        ("sign", lambda g: [-g[0], -g[1]], "-1 times"),
        ("n times", lambda g: [3 * g[0], 3 * g[1]], "1/3 times"),
    ],
)
@pytest.mark.parametrize("real_only", [False, True], ids=["complex_step", "central_diff"])
def test_a_confirmed_factor_judges_every_entry_without_per_entry_evaluations(name, wrong, what, real_only):
    calls = []
    g = wrong(right())
    res = check(g, real_only, calls)
    assert [v.failed for v in res.verdicts] == [16, 4], res.how
    for k in (0, 1):
        assert res.how[k].startswith(f"against {what} the returned gradient"), res.how[k]
        assert selfdiff.how_kind(res.how[k]) == "hypothesis"
        # the confirmed guess is the right gradient, entry by entry
        np.testing.assert_allclose(res.expected[k], right()[k], rtol=1e-7, atol=1e-9)
    # one batch of directional tests, one batch of fresh directions: no per-entry evaluation
    assert calls == [2 + 2 * (selfdir.STEPS + selfdir.LADDER), 2 * selfdir.STEPS]


def test_a_transposed_square_dW_is_confirmed_as_the_transpose():
    g = right()
    res = check([g[0].T, g[1]])
    assert res.verdicts[0].failed > 0 and res.verdicts[1].failed == 0
    assert res.how[0].startswith("against the transpose of"), res.how[0]
    np.testing.assert_allclose(res.expected[0], g[0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("real_only", [False, True], ids=["complex_step", "central_diff"])
def test_one_wrong_entry_rejects_the_guess_and_per_entry_evaluation_finds_it(real_only):
    calls = []
    g = right()
    g[0] = g[0].copy()
    g[0][2, 1] += 0.25
    res = check(g, real_only, calls)
    assert res.verdicts[1].failed == 0 and res.how[1] == selfdiff.DIRECTIONAL
    v = res.verdicts[0]
    assert v.failed == 1 and v.worst[0].index == (2, 1), v
    assert res.how[0].startswith("entry by entry"), res.how[0]
    assert len(calls) >= 3 and calls[1] == selfdir.STEPS  # the guess was tried, then the entries


def test_a_tensor_left_at_zero_names_no_guess_and_is_judged_per_entry():
    g = right()
    res = check([np.zeros_like(g[0]), g[1]])
    assert res.verdicts[0].failed == 16 and res.how[0].startswith("entry by entry")
    np.testing.assert_allclose(res.expected[0], g[0], rtol=1e-9, atol=1e-12)


def test_a_guess_is_taken_before_the_fresh_direction_and_can_fail_it():
    """The candidate fits the first direction by construction; a fresh direction rejects it."""
    g = right()
    wrong = g[0].copy()
    wrong[0, 0] += 1.0
    dirs = selfdir.directions([W0], np.random.default_rng(0))
    ev = evaluator()
    h = selfdir.points(0, 0, W0, ladder=False)
    vals = ev(h, dirs)[:, 0]
    est = selfdir.estimate(vals, W0, float(np.real(f(W0, B0))), 1e-14)
    cand = selfhypothesis.candidate(0, wrong, dirs[0], est, W0, True)
    assert cand is not None and selfdir.judge(cand.g_hat, dirs[0], est, W0, True).ok
    conf = selfhypothesis.confirm(ev, [W0, B0], lambda r: r[:, 0], [cand], est.cs, {0: 1e-14}, True, seed=0)
    assert conf.rejected and not conf.candidates


def test_a_small_error_is_not_excused_as_a_kink_where_f_is_smooth():
    """Central differences: the one-sided differences of a smooth f differ by about h f'', which
    is no kink (their gap halves with the step); a gradient 1.001 times the right one fails."""
    g = right()
    res = check([1.001 * g[0], 1.001 * g[1]], real_only=True)
    assert res.method == "central_diff"
    assert [v.failed for v in res.verdicts] == [16, 4] and all(v.excused == 0 for v in res.verdicts)


B_KINK = B0.copy()
B_KINK[0] = -(X[0] @ W0[0])  # z_00 = 0: every direction's line crosses relu's kink there


def f_relu(W, b, real_only=False):
    """J = sum relu(X W^T + b), not complex-safe (the comparison takes the real part)."""
    Z = X @ W.T + b
    return float(np.sum(np.where(np.real(Z) > 0, np.real(Z), 0.0)))


@pytest.mark.parametrize("at_zero", [0.0, 1.0], ids=["h'(0)=0", "h'(0)=1"])
def test_at_a_kink_any_one_sided_derivative_passes(at_zero):
    Z = X @ W0.T + B_KINK
    mask = np.where(np.abs(Z) < 1e-12, at_zero, (Z > 0) * 1.0)
    grads = [mask.T @ X, mask.sum(axis=0)]
    ev = evaluator(fn=f_relu, base=(W0, B_KINK))
    res = selfdiff.check(ev, [W0, B_KINK], grads, ["W", "b"], lambda r: r[:, 0], seed=0)
    assert res.method == "central_diff"
    assert [v.failed for v in res.verdicts] == [0, 0]
    assert all(v.excused for v in res.verdicts), "the kink was seen and judged as an interval"


X2 = RNG.normal(size=(6, 20))
W2 = RNG.normal(size=(30, 20)) / 4
B2 = RNG.normal(size=30) / 4


def f_wide(W, b, real_only=False):
    """J = sum tanh(X2 W^T + b)^2 with a 30 x 20 W: 600 entries, more than one block."""
    J = np.sum(np.tanh(X2 @ W.T + b) ** 2)
    return float(np.real(J)) if real_only else J


def right_wide():
    A = np.tanh(X2 @ W2.T + B2)
    dZ = 2 * A * (1 - A**2)
    return [dZ.T @ X2, dZ.sum(axis=0)]


def check_wide(grads, real_only=False, calls=None):
    ev = evaluator(real_only, calls, fn=f_wide, base=(W2, B2))
    return selfdiff.check(ev, [W2, B2], grads, ["W", "b"], lambda r: r[:, 0], seed=0)


@pytest.mark.parametrize("real_only", [False, True], ids=["complex_step", "central_diff"])
def test_one_wrong_entry_among_many_is_found_by_blocks_with_few_evaluations(real_only):
    calls = []
    g = right_wide()
    g[0] = g[0].copy()
    g[0][17, 4] *= 1.5
    res = check_wide(g, real_only, calls)
    v = res.verdicts[0]
    assert (v.failed, v.worst[0].index) == (1, (17, 4)), v
    assert res.verdicts[1].failed == 0
    assert "at " in res.how[0] and "of 600 entries" in res.how[0], res.how[0]
    assert sum(calls) < 600 / 2, calls  # per-entry evaluation of the whole tensor would be 600 (or 2400)
    np.testing.assert_allclose(v.worst[0].expected, right_wide()[0][17, 4], rtol=1e-6)


def test_the_right_wide_gradient_passes():
    res = check_wide(right_wide())
    assert [v.failed for v in res.verdicts] == [0, 0] and set(res.how.values()) == {selfdiff.DIRECTIONAL}


def test_a_bug_in_most_entries_that_no_hypothesis_explains_is_evaluated_entry_by_entry():
    g = right_wide()
    wrong = g[0] + 1e-3 * np.random.default_rng(1).normal(size=g[0].shape)
    res = check_wide([wrong, g[1]])
    assert res.verdicts[0].failed > 550, res.verdicts[0]
    assert res.how[0] == "entry by entry (complex step)", res.how[0]
